// Training: a model's DDL, documentation and question→SQL pairs (list,
// add, delete), train from the catalog, import a Vanna export, and the
// model's stats.
import { h, replace, field, errorText, toast, fmtTime } from './dom.js';
import { api, upload } from './api.js';
import { highlight } from './sql.js';

export async function render(main, session, params) {
  const isAdmin = session.user.role === 'admin';
  const { models } = await api('GET', '/v1/models');
  let model = params.get('m') || 'default';
  if (!models.some((m) => m.name === model) && models.length) model = models[0].name;
  const pick = h('select', { id: 'model' }, ...models.map((m) => h('option', { value: m.name, selected: m.name === model }, m.name)));
  const body = h('div', { class: 'training' });
  pick.addEventListener('change', () => {
    history.replaceState(null, '', `#/training?m=${encodeURIComponent(pick.value)}`);
    show(body, pick.value, isAdmin);
  });
  replace(main, h('h1', { text: 'Training' }), field('Model', pick), body);
  await show(body, model, isAdmin);
}

async function show(body, model, isAdmin) {
  const stats = h('section', { 'aria-labelledby': 'stats-title' });
  const items = h('section', { 'aria-labelledby': 'items-title' });
  const reload = () => Promise.all([showStats(stats, model), showItems(items, model, isAdmin, reload)]);
  replace(body, stats, isAdmin ? actions(model, reload) : null, items);
  await reload();
}

async function showStats(el, model) {
  try {
    const s = await api('GET', `/v1/models/${encodeURIComponent(model)}/stats`);
    const pct = s.success_rate === null ? '—' : `${Math.round(s.success_rate * 100)}%`;
    const ms = (v) => (v === null || v === undefined ? '—' : `${Math.round(v)} ms`);
    const stat = (k, v) => h('div', {}, h('dt', { text: k }), h('dd', { text: String(v) }));
    replace(el, h('h2', { id: 'stats-title', text: 'Stats' }), h('dl', { class: 'stats' },
      stat('Pairs', s.training.sql), stat('DDL', s.training.ddl), stat('Documentation', s.training.documentation),
      stat('Questions', s.questions), stat('Succeeded', s.succeeded), stat('Success rate', pct),
      stat('Generation p50', ms(s.latency.generation_p50_ms)), stat('Execution p50', ms(s.latency.execution_p50_ms)),
      stat('Last trained', fmtTime(s.training.last_trained))));
  } catch (err) {
    replace(el, h('p', { class: 'error', text: errorText(err) }));
  }
}

async function showItems(el, model, isAdmin, reload) {
  try {
    const page = await api('GET', `/v1/models/${encodeURIComponent(model)}/training-data?limit=200`);
    const rows = page.items.map((it) => h('li', { class: 'card training-item', 'data-kind': it.kind },
      h('p', {}, h('strong', { text: it.kind === 'sql' ? 'Question → SQL' : it.kind === 'ddl' ? 'DDL' : 'Documentation' }),
        h('span', { class: 'muted', text: ` · ${it.source} · ${fmtTime(it.created_at)}` })),
      it.question ? h('p', { class: 'question', text: it.question }) : null,
      it.kind === 'documentation' ? h('p', { text: it.content }) : highlight(it.content),
      isAdmin ? h('button', { type: 'button', class: 'danger', 'aria-label': `Delete ${it.kind} item`, on: { click: async () => {
        try { await api('DELETE', `/v1/models/${encodeURIComponent(model)}/training-data/${it.id}`); toast('Deleted'); await reload(); } catch (err) { toast(errorText(err)); }
      } } }, 'Delete') : null));
    replace(el, h('h2', { id: 'items-title', text: `Training data (${page.items.length}${page.next_offset ? '+' : ''})` }),
      rows.length ? h('ul', { class: 'list' }, ...rows) : h('p', { class: 'muted', text: 'No training data yet.' }));
  } catch (err) {
    replace(el, h('p', { class: 'error', text: errorText(err) }));
  }
}

// actions: add an item, train from the catalog, import a Vanna export.
function actions(model, reload) {
  const path = `/v1/models/${encodeURIComponent(model)}`;
  const kind = h('select', { id: 'td-kind' }, h('option', { value: 'sql' }, 'Question → SQL'), h('option', { value: 'ddl' }, 'DDL'), h('option', { value: 'documentation' }, 'Documentation'));
  const question = h('input', { type: 'text', id: 'td-question' });
  const content = h('textarea', { id: 'td-content', rows: 4 });
  const qField = field('Question', question);
  kind.addEventListener('change', () => { qField.hidden = kind.value !== 'sql'; });
  const out = h('p', { class: 'error', role: 'alert' });
  const add = h('form', { class: 'card', 'aria-labelledby': 'add-title' }, h('h2', { id: 'add-title', text: 'Add training data' }),
    field('Kind', kind), qField, field('SQL, DDL or text', content), h('button', { type: 'submit' }, 'Add'), out);
  add.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.textContent = '';
    const body = kind.value === 'sql' ? { kind: 'sql', question: question.value.trim(), sql: content.value.trim() } : { kind: kind.value, content: content.value.trim() };
    try { await api('POST', `${path}/training-data`, body); add.reset(); qField.hidden = false; toast('Added'); await reload(); } catch (err) { out.textContent = errorText(err); }
  });
  const catalogOut = h('span', { role: 'status', class: 'muted' });
  const fromCatalog = h('button', { type: 'button', class: 'ghost', on: { click: async () => {
    try {
      const r = await api('POST', `${path}/train-from-catalog`, {});
      catalogOut.textContent = `Trained on ${r.tables} tables: ${r.ddl} DDL, ${r.documentation} documentation (${r.replaced} replaced).`;
      await reload();
    } catch (err) { catalogOut.textContent = errorText(err); }
  } } }, 'Train from catalog');
  fromCatalog.classList.add('train-catalog');
  const file = h('input', { type: 'file', id: 'vanna-file', accept: '.csv,.json' });
  const vannaOut = h('p', { role: 'status', class: 'muted', id: 'vanna-out' });
  const vanna = h('form', { class: 'row', id: 'vanna' }, h('div', {}, h('label', { for: 'vanna-file', text: 'Vanna export (CSV or JSON)' }), file), h('button', { type: 'submit' }, 'Import'));
  vanna.addEventListener('submit', async (e) => {
    e.preventDefault();
    const f = file.files[0];
    if (!f) { vannaOut.textContent = 'Choose a file first.'; return; }
    const json = /\.json$/i.test(f.name);
    try {
      const r = await upload(`${path}/training-data/import?format=${json ? 'json' : 'csv'}`, f, json ? 'application/json' : 'text/csv', () => {});
      vannaOut.textContent = `Imported ${r.imported.total} (${r.imported.sql} pairs, ${r.imported.ddl} DDL, ${r.imported.documentation} documentation), skipped ${r.skipped}.`;
      await reload();
    } catch (err) { vannaOut.textContent = errorText(err); }
  });
  return h('div', {}, add, h('div', { class: 'card' }, h('h2', { text: 'Train in bulk' }), h('p', {}, fromCatalog, ' ', catalogOut), vanna, vannaOut));
}
