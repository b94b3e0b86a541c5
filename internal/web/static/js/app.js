// The app shell: sign-in, the theme toggle and the hash router (#/chat,
// #/data, #/training, #/history, #/admin). Screens are modules with a
// render(main, session, params) function.
import { h, replace, field, errorText, toast } from './dom.js';
import { signIn, signOut, restore, onSignedOut } from './api.js';
import * as chat from './chat.js';

const screens = {
  chat: { title: 'Chat', load: async () => chat },
  data: { title: 'Data', load: () => import('./data.js') },
  training: { title: 'Training', load: () => import('./training.js') },
  history: { title: 'History', load: () => import('./history.js') },
  admin: { title: 'Admin', load: () => import('./admin.js') },
};

const main = document.getElementById('main');
let routing = 0; // counts route() calls: one finishing after a newer one leaves aria-busy alone
let session = null;

// The theme: the system's unless the toggle chose one (kept in
// localStorage; nothing else is).
function setupTheme() {
  const btn = document.getElementById('theme');
  const dark = () => (document.documentElement.dataset.theme || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light')) === 'dark';
  const sync = () => {
    btn.setAttribute('aria-pressed', String(dark()));
    btn.textContent = dark() ? 'Light theme' : 'Dark theme';
  };
  const saved = localStorage.getItem('dbchat-theme');
  if (saved === 'dark' || saved === 'light') document.documentElement.dataset.theme = saved;
  btn.addEventListener('click', () => {
    const next = dark() ? 'light' : 'dark';
    document.documentElement.dataset.theme = next;
    localStorage.setItem('dbchat-theme', next);
    sync();
  });
  sync();
}

function showShell(signedIn) {
  // Hidden but keeping their place, so the header does not grow (and the
  // page shift) once signed in.
  document.getElementById('nav').classList.toggle('off', !signedIn);
  document.getElementById('signout').classList.toggle('off', !signedIn);
  const who = document.getElementById('who');
  who.textContent = signedIn ? `${session.user.email} · ${session.tenant.name} (${session.user.role})` : '';
}

function signInScreen(message) {
  routing++;
  main.setAttribute('aria-busy', 'false');
  showShell(false);
  document.title = 'Sign in · dbchat';
  const key = h('input', { type: 'password', id: 'api-key', name: 'api_key', autocomplete: 'off', required: true, spellcheck: 'false' });
  const out = h('p', { class: 'error', role: 'alert', id: 'signin-error', text: message || '' });
  const form = h('form', { class: 'card signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title', text: 'Sign in to dbchat' }),
    field('API key', key, 'Your tenant\u2019s API key (dbc_…). It is exchanged for a session and not stored by the browser.'),
    h('p', {}, h('button', { type: 'submit' }, 'Sign in')), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.textContent = '';
    try {
      session = await signIn(key.value.trim());
      key.value = '';
      if (!location.hash.startsWith('#/')) history.replaceState(null, '', '#/chat');
      route();
    } catch (err) {
      out.textContent = errorText(err);
      key.focus();
    }
  });
  replace(main, form, providerForm());
  key.focus();
}

// providerForm signs in through the tenant's identity provider (OpenID
// Connect): the browser goes to GET /v1/sessions/oidc, which sends it to
// the provider and, once signed in there, back to #/chat with a session.
function providerForm() {
  const issuer = h('input', { type: 'url', id: 'issuer', name: 'issuer', required: true, autocomplete: 'url', placeholder: 'https://login.example.com/' });
  const form = h('form', { class: 'card signin', 'aria-labelledby': 'idp-title' },
    h('h2', { id: 'idp-title', text: 'Or with your identity provider' }),
    field('Issuer', issuer, 'The issuer your tenant admin registered (OpenID Connect).'),
    h('p', {}, h('button', { type: 'submit', class: 'ghost' }, 'Continue to your provider')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    location.assign(`/v1/sessions/oidc?issuer=${encodeURIComponent(issuer.value.trim())}`);
  });
  return form;
}

async function route() {
  if (!session) return signInScreen();
  showShell(true);
  const [path, query] = (location.hash.slice(2) || 'chat').split('?');
  const name = screens[path] ? path : 'chat';
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === `#/${name}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${screens[name].title} · dbchat`;
  // aria-busy says the screen is still loading (its lists arrive after its
  // form): assistive technology waits, and so do the browser tests.
  const token = ++routing;
  main.setAttribute('aria-busy', 'true');
  try {
    const mod = await screens[name].load();
    await mod.render(main, session, new URLSearchParams(query || ''));
  } catch (err) {
    replace(main, h('h1', { text: screens[name].title }), h('p', { class: 'error', role: 'alert', text: errorText(err) }));
  } finally {
    if (token === routing) main.setAttribute('aria-busy', 'false');
  }
}

async function start() {
  setupTheme();
  document.getElementById('skip').addEventListener('click', (e) => { e.preventDefault(); main.focus(); });
  document.getElementById('signout').addEventListener('click', async () => {
    try { await signOut(); } catch (err) { toast(errorText(err)); }
    session = null;
    history.replaceState(null, '', '#/');
    signInScreen('');
    toast('Signed out');
  });
  onSignedOut(() => { session = null; signInScreen('Your session has ended; sign in again.'); });
  window.addEventListener('hashchange', () => { if (location.hash.startsWith('#/')) route(); });
  try {
    session = await restore();
  } catch (err) {
    session = null;
    return signInScreen(errorText(err));
  }
  route();
}

start();
