// One answer, as it streams in: the steps, the SQL, the grid, the chart,
// the summary, suggested follow-ups and feedback. Shared by Chat (live
// turns) and History (feedback).
import { h, errorText, toast } from './dom.js';
import { api } from './api.js';
import { sqlBlock } from './sql.js';
import { grid } from './grid.js';
import { chart } from './chart.js';

const STAGES = { retrieving: 'Retrieving context', generating: 'Writing SQL', validating: 'Checking SQL', executing: 'Running query' };

// liveAnswer returns an element and an onEvent(name, data) that fills it as
// the stream's events arrive; onSuggest runs when a suggestion is clicked.
// question is the question as typed (a follow-up's resolved question is
// shown when it reads differently).
export function liveAnswer(onSuggest, question) {
  const steps = h('ol', { class: 'steps', 'aria-label': 'Progress' });
  const body = h('div', { class: 'answer-body' });
  const el = h('div', { class: 'answer', 'aria-busy': 'true' }, steps, body);
  const st = { columns: [], rows: [], sqlEl: null };
  const step = (label) => {
    for (const li of steps.children) li.classList.add('done');
    steps.append(h('li', { text: label }));
  };
  const handlers = {
    status: (d) => step(STAGES[d.stage] || d.stage),
    sql: (d) => { st.sqlEl = replaceOrAppend(body, st.sqlEl, sqlBlock(d.sql)); },
    rows: (d) => { st.columns = d.columns; st.rows.push(...d.rows); },
    chart: (d) => {
      body.append(grid(st.columns, st.rows, { filename: 'answer.csv' }));
      if (d.chart) body.append(chart(d.chart));
    },
    summary: (d) => { if (d.summary) body.append(h('p', { class: 'summary', text: d.summary })); },
    suggestions: (d) => { if (d.suggestions && d.suggestions.length) body.append(suggestions(d.suggestions, onSuggest)); },
    done: (d) => {
      step('Done');
      for (const li of steps.children) li.classList.add('done');
      st.sqlEl = replaceOrAppend(body, st.sqlEl, sqlBlock(d.sql));
      if (d.interpretation) st.sqlEl.after(h('p', { class: 'muted interpretation', text: d.interpretation }));
      if (d.resolved_question && d.resolved_question !== question) st.sqlEl.before(h('p', { class: 'muted resolved', text: `Read as: ${d.resolved_question}` }));
      body.append(feedback(d.history_id, d.sql));
      el.setAttribute('aria-busy', 'false');
    },
    error: (d) => {
      const e = (d && d.error) || {};
      body.append(h('p', { class: 'error', role: 'alert', text: e.message || 'The question failed' }));
      // A refused question is in history: answering it with SQL teaches
      // the model, so the same question is answered next time.
      if (e.details && e.details.history_id) body.append(feedback(e.details.history_id, ''));
      el.setAttribute('aria-busy', 'false');
    },
  };
  return { el, onEvent: (name, data) => (handlers[name] || (() => {}))(data) };
}

function replaceOrAppend(parent, old, next) {
  if (old && old.isConnected) old.replaceWith(next);
  else parent.prepend(next);
  return next;
}

function suggestions(list, onSuggest) {
  return h('div', {}, h('h4', { class: 'muted', text: 'Ask next' }),
    h('ul', { class: 'suggestions' }, ...list.map((q) => h('li', {},
      h('button', { type: 'button', on: { click: () => onSuggest && onSuggest(q) } }, q)))));
}

// feedback is 👍 / 👎 with a corrected SQL box; an admin's trains the
// model, a member's waits for review.
export function feedback(historyId, sql) {
  const out = h('span', { class: 'muted', role: 'status' });
  const fix = h('textarea', { 'aria-label': 'Corrected SQL', rows: 4 });
  fix.value = sql || '';
  const send = async (body) => {
    try {
      const r = await api('POST', `/v1/history/${historyId}/feedback`, body);
      out.textContent = r && r.trained ? 'Thanks: the model learned this pair.' : r && r.review ? 'Thanks: sent for an admin\u2019s review.' : 'Thanks: feedback recorded.';
      toast(out.textContent);
    } catch (err) {
      out.textContent = errorText(err);
    }
  };
  const form = h('form', { class: 'fix', hidden: true }, fix,
    h('button', { type: 'submit' }, 'Send corrected SQL'));
  form.addEventListener('submit', (e) => { e.preventDefault(); send({ correct: false, sql: fix.value.trim() || undefined }); });
  return h('div', { class: 'feedback-wrap' }, h('div', { class: 'feedback' },
    h('button', { type: 'button', class: 'ghost thumbs-up', on: { click: () => send({ correct: true }) } }, h('span', { 'aria-hidden': 'true', text: '👍 ' }), 'Right'),
    h('button', { type: 'button', class: 'ghost thumbs-down', 'aria-expanded': 'false', on: { click: (e) => { form.hidden = false; e.currentTarget.setAttribute('aria-expanded', 'true'); fix.focus(); } } },
      h('span', { 'aria-hidden': 'true', text: '👎 ' }), 'Wrong: correct the SQL'),
    out), form);
}
