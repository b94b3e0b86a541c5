// History: the questions asked and SQL run, newest first, with filters,
// more pages and feedback on each entry.
import { h, replace, field, errorText, fmtTime } from './dom.js';
import { api } from './api.js';
import { highlight } from './sql.js';
import { feedback } from './answer.js';

export async function render(main) {
  const status = h('select', { id: 'h-status' }, h('option', { value: '' }, 'Any'),
    ...['success', 'error', 'rejected', 'pending'].map((s) => h('option', { value: s }, s)));
  const model = h('input', { type: 'text', id: 'h-model', placeholder: 'default' });
  const since = h('input', { type: 'date', id: 'h-since' });
  const list = h('ol', { class: 'list', id: 'history-list' });
  const more = h('button', { type: 'button', class: 'ghost', hidden: true }, 'Load more');
  let cursor = null;
  const load = async (reset) => {
    const q = new URLSearchParams({ limit: '25' });
    if (status.value) q.set('status', status.value);
    if (model.value.trim()) q.set('model', model.value.trim());
    if (since.value) q.set('since', new Date(since.value + 'T00:00:00').toISOString());
    if (!reset && cursor) q.set('cursor', cursor);
    try {
      const page = await api('GET', `/v1/history?${q}`);
      if (reset) replace(list);
      for (const it of page.items) list.append(entry(it));
      if (reset && !page.items.length) list.append(h('li', { class: 'muted', text: 'Nothing matches.' }));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (err) {
      replace(list, h('li', { class: 'error', role: 'alert', text: errorText(err) }));
    }
  };
  more.addEventListener('click', () => load(false));
  const form = h('form', { class: 'row card', 'aria-label': 'Filters' }, field('Status', status), field('Model', model), field('Since', since),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (e) => { e.preventDefault(); load(true); });
  replace(main, h('h1', { text: 'History' }), form, list, more);
  await load(true);
}

function entry(it) {
  return h('li', { class: 'card history-item', 'data-status': it.status },
    h('p', {}, h('strong', { text: it.question || '(SQL)' })),
    h('p', { class: 'muted', text: `${it.status} · ${it.model || 'no model'} · ${fmtTime(it.created_at)}${it.row_count !== null ? ` · ${it.row_count} rows` : ''}` }),
    it.generated_sql ? highlight(it.generated_sql) : null,
    it.error ? h('p', { class: 'error', text: it.error }) : null,
    it.generated_sql || it.question ? feedback(it.id, it.generated_sql) : null);
}
