// Chat: the conversation list, a conversation's turns, and the question
// box. Each question is answered as a stream of events (api.stream), so
// the steps, SQL, rows and chart appear as they are ready.
import { h, replace, errorText, fmtTime } from './dom.js';
import { api, stream } from './api.js';
import { liveAnswer } from './answer.js';
import { sqlBlock } from './sql.js';
import { grid } from './grid.js';

// render draws the chat screen into main; session is the signed-in session.
export async function render(main, session, params) {
  const list = h('ul', { 'aria-label': 'Conversations' });
  const turns = h('ol', { class: 'turns', 'aria-live': 'polite' });
  const title = h('h2', { text: 'New conversation', id: 'thread-title' });
  const input = h('input', { type: 'text', id: 'question', name: 'question', autocomplete: 'off', maxlength: '2000', placeholder: 'How many customers per country?' });
  const sendBtn = h('button', { type: 'submit' }, 'Ask');
  const form = h('form', { class: 'ask', 'aria-label': 'Ask a question' }, h('label', { for: 'question', class: 'sr-only', text: 'Question' }), input, sendBtn);
  const state = { conv: params.get('c') || null, busy: false };

  const ask = async (question) => {
    if (!question || state.busy) return;
    state.busy = true;
    sendBtn.disabled = true;
    try {
      if (!state.conv) {
        const c = await api('POST', '/v1/conversations', { title: question.slice(0, 200) });
        state.conv = c.id;
        title.textContent = c.title;
        history.replaceState(null, '', `#/chat?c=${encodeURIComponent(c.id)}`);
        loadList();
      }
      const live = liveAnswer((q) => { input.value = q; ask(q); }, question);
      turns.append(h('li', { class: 'turn' }, h('h3', { text: question }), live.el));
      input.value = '';
      await stream(`/v1/conversations/${state.conv}/messages`, { question }, live.onEvent);
    } catch (err) {
      turns.append(h('li', { class: 'turn' }, h('h3', { text: question }), h('p', { class: 'error', role: 'alert', text: errorText(err) })));
    } finally {
      state.busy = false;
      sendBtn.disabled = false;
      input.focus();
    }
  };
  form.addEventListener('submit', (e) => { e.preventDefault(); ask(input.value.trim()); });

  const open = async (id, preloaded) => {
    state.conv = id;
    history.replaceState(null, '', id ? `#/chat?c=${encodeURIComponent(id)}` : '#/chat');
    markCurrent(list, id);
    replace(turns);
    if (!id) { title.textContent = 'New conversation'; input.focus(); return; }
    try {
      const c = preloaded || await api('GET', `/v1/conversations/${id}`);
      title.textContent = c.title || 'Conversation';
      for (const m of c.messages) turns.append(pastTurn(m));
    } catch (err) {
      turns.append(h('li', { class: 'error', text: errorText(err) }));
    }
  };

  const showList = (page) => {
    replace(list, ...page.items.map((c) => h('li', {}, h('button', {
      type: 'button', 'data-id': c.id, 'aria-current': c.id === state.conv ? 'true' : 'false',
      on: { click: () => open(c.id) },
    }, h('span', { text: c.title || 'Untitled' }), h('br'), h('small', { class: 'muted', text: fmtTime(c.last_activity_at) })))));
    if (!page.items.length) list.append(h('li', { class: 'muted', text: 'No conversations yet.' }));
  };
  const listPage = () => api('GET', '/v1/conversations?limit=50');
  const loadList = () => listPage().then(showList, (err) => replace(list, h('li', { class: 'error', text: errorText(err) })));

  // Both fetches finish before the first paint of the screen, so nothing
  // moves once it shows.
  const [page, conv] = await Promise.all([listPage().catch((err) => err),
    state.conv ? api('GET', `/v1/conversations/${state.conv}`).catch(() => null) : null]);
  const newBtn = h('button', { type: 'button', on: { click: () => open(null) } }, 'New conversation');
  replace(main,
    h('h1', { class: 'sr-only', text: 'Chat' }),
    h('div', { class: 'chat' },
      h('nav', { class: 'convs', 'aria-label': 'Conversations' }, newBtn, list),
      h('section', { class: 'thread', 'aria-labelledby': 'thread-title' }, title, turns, form)));
  if (page instanceof Error) replace(list, h('li', { class: 'error', text: errorText(page) }));
  else showList(page);
  if (state.conv) await open(state.conv, conv);
  input.focus();
}

function markCurrent(list, id) {
  for (const b of list.querySelectorAll('button[data-id]')) b.setAttribute('aria-current', b.dataset.id === id ? 'true' : 'false');
}

// pastTurn is a turn loaded from the conversation: its question, SQL or
// refusal. Turns keep no rows, so "Show the rows" runs the SQL again.
function pastTurn(m) {
  const parts = [h('h3', { text: m.question })];
  if (m.resolved_question && m.resolved_question !== m.question) parts.push(h('p', { class: 'muted', text: `Read as: ${m.resolved_question}` }));
  if (m.sql) parts.push(sqlBlock(m.sql, false), rerun(m.sql));
  if (m.error) parts.push(h('p', { class: 'error', text: m.error }));
  return h('li', { class: 'turn' }, ...parts);
}

function rerun(sql) {
  const out = h('div', { class: 'rerun' });
  const btn = h('button', { type: 'button', class: 'ghost rerun-btn' }, 'Show the rows');
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    try {
      const r = await api('POST', '/v1/sql', { sql });
      replace(out, grid(r.columns, r.rows, { filename: 'answer.csv' }));
    } catch (err) {
      replace(out, h('p', { class: 'error', role: 'alert', text: errorText(err) }));
    } finally {
      btn.disabled = false;
    }
  });
  return h('div', {}, btn, out);
}
