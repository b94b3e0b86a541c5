// Admin: users (admins add and remove them), API keys (a new key is shown
// once, never stored by the page) and where the isolation report lives.
import { h, replace, field, errorText, toast, fmtTime } from './dom.js';
import { api } from './api.js';

export async function render(main, session) {
  const isAdmin = session.user.role === 'admin';
  const users = h('section', { 'aria-labelledby': 'users-title' });
  const keys = h('section', { 'aria-labelledby': 'keys-title' });
  replace(main, h('h1', { text: 'Admin' }), users, keys, auditNote());
  await Promise.all([showUsers(users, isAdmin, session), showKeys(keys)]);
}

async function showUsers(el, isAdmin, session) {
  const { users } = await api('GET', '/v1/users');
  const rows = users.map((u) => h('tr', {}, h('td', { text: u.email }), h('td', { text: u.name || '' }), h('td', { text: u.role }),
    h('td', {}, isAdmin && u.id !== session.user.id ? h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${u.email}`, on: { click: async () => {
      try { await api('DELETE', `/v1/users/${u.id}`); toast(`Deleted ${u.email}`); await showUsers(el, isAdmin, session); } catch (err) { toast(errorText(err)); }
    } } }, 'Delete') : '')));
  replace(el, h('h2', { id: 'users-title', text: 'Users' }), table(['Email', 'Name', 'Role', ''], rows, 'Users'),
    isAdmin ? userForm(() => showUsers(el, isAdmin, session)) : null);
}

function table(head, rows, label) {
  return h('div', { class: 'grid-wrap', tabindex: '0', role: 'region', 'aria-label': label },
    h('table', {}, h('thead', {}, h('tr', {}, ...head.map((x) => h('th', { scope: 'col' }, x || h('span', { class: 'sr-only', text: 'Actions' }))))), h('tbody', {}, ...rows)));
}

function userForm(reload) {
  const email = h('input', { type: 'email', id: 'user-email', required: true, autocomplete: 'off' });
  const name = h('input', { type: 'text', id: 'user-name' });
  const role = h('select', { id: 'user-role' }, h('option', { value: 'member' }, 'member'), h('option', { value: 'admin' }, 'admin'));
  const out = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'card row', 'aria-label': 'Add a user' }, field('Email', email), field('Name', name), field('Role', role),
    h('button', { type: 'submit' }, 'Add user'), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try { await api('POST', '/v1/users', { email: email.value.trim(), name: name.value.trim(), role: role.value }); toast('User added'); await reload(); } catch (err) { out.textContent = errorText(err); }
  });
  return form;
}

async function showKeys(el) {
  const { api_keys: keys } = await api('GET', '/v1/api-keys');
  const rows = keys.map((k) => h('tr', {}, h('td', { text: k.name }), h('td', { text: `${k.prefix}…` }), h('td', { text: fmtTime(k.created_at) }),
    h('td', { text: k.revoked_at ? `revoked ${fmtTime(k.revoked_at)}` : k.last_used_at ? `used ${fmtTime(k.last_used_at)}` : 'never used' }),
    h('td', {}, k.revoked_at ? '' : h('button', { type: 'button', class: 'danger', 'aria-label': `Revoke key ${k.name}`, on: { click: async () => {
      try { await api('DELETE', `/v1/api-keys/${k.id}`); toast(`Revoked ${k.name}`); await showKeys(el); } catch (err) { toast(errorText(err)); }
    } } }, 'Revoke'))));
  const name = h('input', { type: 'text', id: 'key-name', required: true, autocomplete: 'off' });
  const shown = h('div', { id: 'new-key', 'aria-live': 'polite' });
  const form = h('form', { class: 'card row', 'aria-label': 'Create an API key' }, field('Key name', name), h('button', { type: 'submit' }, 'Create key'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const k = await api('POST', '/v1/api-keys', { name: name.value.trim() });
      await showKeys(el);
      el.querySelector('#new-key').replaceChildren(h('div', { class: 'card' },
        h('p', { class: 'ok', text: `Key ${k.name} created. Copy it now: it is shown only once.` }),
        h('p', { class: 'secret', id: 'new-key-value', text: k.api_key }),
        h('button', { type: 'button', class: 'ghost', on: { click: () => navigator.clipboard.writeText(k.api_key).then(() => toast('Key copied'), () => toast('Copy failed')) } }, 'Copy key')));
    } catch (err) { toast(errorText(err)); }
  });
  replace(el, h('h2', { id: 'keys-title', text: 'API keys' }), table(['Name', 'Prefix', 'Created', 'Status', ''], rows, 'API keys'), form, shown);
}

function auditNote() {
  return h('section', { 'aria-labelledby': 'audit-title', class: 'card' }, h('h2', { id: 'audit-title', text: 'Isolation report' }),
    h('p', { text: 'The isolation report (every tenant table\u2019s row-level security, checked from the catalog) is the platform operator\u2019s: it covers all tenants. An operator opens it with `dbchat audit --format html` or at /v1/admin/audit with the operator token. Each answer in Chat carries this tenant\u2019s own receipt: the policies PostgreSQL applied.' }));
}
