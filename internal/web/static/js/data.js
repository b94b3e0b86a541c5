// Data: the tenant's tables with descriptions and row counts; create a
// table; a table's columns (add, describe); CSV/JSON upload with a
// progress bar and the server's line-and-column error next to the file;
// a preview of the rows.
import { h, replace, field, errorText, toast } from './dom.js';
import { api, upload } from './api.js';
import { grid } from './grid.js';

const TYPES = ['text', 'integer', 'bigint', 'numeric', 'double precision', 'boolean', 'date', 'timestamptz', 'uuid', 'jsonb'];

export async function render(main, session, params) {
  const isAdmin = session.user.role === 'admin';
  const list = h('ul', { class: 'list', 'aria-label': 'Tables' });
  const detail = h('section', { class: 'detail', 'aria-live': 'polite' });
  const show = (id) => {
    history.replaceState(null, '', `#/data?t=${encodeURIComponent(id)}`);
    return tableDetail(detail, id, isAdmin, () => loadList(list, show));
  };
  replace(main, h('h1', { text: 'Data' }),
    h('div', { class: 'split' },
      h('nav', { 'aria-label': 'Tables' }, h('h2', { text: 'Tables' }), list, isAdmin ? createForm(show, () => loadList(list, show)) : null),
      detail));
  const tables = await loadList(list, show);
  const want = params.get('t');
  if (want) await show(want);
  else if (!tables.length) replace(detail, h('p', { class: 'muted', text: isAdmin ? 'No tables yet: create one.' : 'No tables yet.' }));
}

// loadList lists the tables with their row counts (each from its table).
async function loadList(list, show) {
  const { tables } = await api('GET', '/v1/tables');
  const counts = await Promise.all(tables.map((t) => api('GET', `/v1/tables/${t.id}`).then((d) => d.row_count).catch(() => null)));
  replace(list, ...tables.map((t, i) => h('li', { 'data-table': t.name },
    h('button', { type: 'button', class: 'link', on: { click: () => show(t.id) } }, t.name),
    h('br'),
    h('small', { class: 'muted', text: `${counts[i] ?? '?'} rows · ${t.column_count} columns${t.description ? ' · ' + t.description : ''}` }))));
  if (!tables.length) list.append(h('li', { class: 'muted', text: 'No tables.' }));
  return tables;
}

function columnRow() {
  const name = h('input', { type: 'text', 'aria-label': 'Column name', pattern: '[a-z_][a-z0-9_]*', required: true, class: 'col-name' });
  const type = h('select', { 'aria-label': 'Column type', class: 'col-type' }, ...TYPES.map((t) => h('option', { value: t }, t)));
  const nullable = h('input', { type: 'checkbox', checked: true, class: 'col-null' });
  const desc = h('input', { type: 'text', 'aria-label': 'Column description', class: 'col-desc', placeholder: 'Description' });
  const row = h('div', { class: 'row colspec' }, name, type, h('label', { class: 'inline' }, nullable, 'nullable'), desc);
  row.spec = () => ({ name: name.value.trim(), type: type.value, nullable: nullable.checked, description: desc.value.trim() || undefined });
  return row;
}

function createForm(show, reload) {
  const name = h('input', { type: 'text', id: 'new-table-name', required: true, pattern: '[a-z_][a-z0-9_]*', autocomplete: 'off' });
  const desc = h('input', { type: 'text', id: 'new-table-desc' });
  const cols = h('div', { class: 'cols' }, columnRow());
  const out = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'card', id: 'create-table', 'aria-labelledby': 'create-title' },
    h('h2', { id: 'create-title', text: 'Create a table' }),
    field('Name', name, 'Lowercase letters, digits and _.'), field('Description', desc),
    h('fieldset', {}, h('legend', { text: 'Columns' }), cols,
      h('button', { type: 'button', class: 'ghost', on: { click: () => cols.append(columnRow()) } }, 'Add a column')),
    h('p', {}, h('button', { type: 'submit' }, 'Create table')), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.textContent = '';
    try {
      const t = await api('POST', '/v1/tables', { name: name.value.trim(), description: desc.value.trim(), columns: [...cols.children].map((r) => r.spec()) });
      toast(`Table ${t.name} created`);
      form.reset();
      replace(cols, columnRow());
      await reload();
      await show(t.id);
    } catch (err) {
      out.textContent = errorText(err);
    }
  });
  return form;
}

// tableDetail shows one table: columns, upload, preview.
async function tableDetail(detail, id, isAdmin, reload) {
  let t;
  try {
    t = await api('GET', `/v1/tables/${id}`);
  } catch (err) {
    return replace(detail, h('p', { class: 'error', role: 'alert', text: errorText(err) }));
  }
  const preview = h('div', { class: 'preview' });
  const about = (x) => `${x.description || 'No description.'} · ${x.row_count ?? 0} rows`;
  const info = h('p', { class: 'muted', id: 'table-info', text: about(t) });
  // After an import: the preview, the count here and in the list.
  const refresh = async () => {
    const [fresh] = await Promise.all([api('GET', `/v1/tables/${id}`), showPreview(preview, id), reload()]);
    info.textContent = about(fresh);
  };
  replace(detail, h('h2', { id: 'table-title', text: t.name }), info,
    columnsTable(t, isAdmin),
    isAdmin ? addColumnForm(t, () => tableDetail(detail, id, isAdmin, reload)) : null,
    isAdmin ? uploadForm(t, refresh) : null,
    h('h3', { text: 'Preview' }), preview);
  await showPreview(preview, id);
}

function columnsTable(t, isAdmin) {
  const rows = t.columns.map((c) => {
    const desc = h('input', { type: 'text', 'aria-label': `Description of ${c.name}`, value: c.description || '', disabled: !isAdmin });
    desc.addEventListener('change', async () => {
      try {
        await api('PATCH', `/v1/tables/${t.id}/columns/${c.id}`, { description: desc.value });
        toast(`Described ${c.name}`);
      } catch (err) {
        toast(errorText(err));
      }
    });
    return h('tr', {}, h('td', { text: c.name }), h('td', { text: c.data_type }), h('td', { text: c.is_nullable ? 'yes' : 'no' }), h('td', {}, desc));
  });
  return h('div', { class: 'grid-wrap', tabindex: '0', role: 'region', 'aria-label': `Columns of ${t.name}` },
    h('table', {}, h('caption', { class: 'sr-only', text: `Columns of ${t.name}` }),
      h('thead', {}, h('tr', {}, ...['Column', 'Type', 'Nullable', 'Description'].map((x) => h('th', { scope: 'col', text: x })))),
      h('tbody', {}, ...rows)));
}

function addColumnForm(t, done) {
  const row = columnRow();
  const out = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'card', 'aria-label': 'Add a column' }, h('h3', { text: 'Add a column' }), row,
    h('p', {}, h('button', { type: 'submit' }, 'Add column')), out);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const c = await api('POST', `/v1/tables/${t.id}/columns`, row.spec());
      toast(`Column ${c.name} added`);
      await done();
    } catch (err) {
      out.textContent = errorText(err);
    }
  });
  return form;
}

// uploadForm sends a CSV or JSON file; the server imports all rows or none
// and names the line (CSV) or index (JSON) and column of a bad value.
function uploadForm(t, refresh) {
  const file = h('input', { type: 'file', id: 'upload-file', accept: '.csv,.json,text/csv,application/json', 'aria-describedby': 'upload-error' });
  const bar = h('progress', { class: 'progress', max: '1', value: '0', 'aria-label': 'Upload progress', hidden: true });
  const out = h('p', { class: 'error', role: 'alert', id: 'upload-error' });
  const ok = h('p', { class: 'ok', role: 'status', id: 'upload-ok' });
  const form = h('form', { class: 'card', id: 'upload', 'aria-labelledby': 'upload-title' },
    h('h3', { id: 'upload-title', text: 'Upload rows' }),
    h('p', { class: 'muted', text: 'CSV with a header row of column names, or a JSON array of objects. All rows go in, or none do.' }),
    h('div', { class: 'row' }, h('div', {}, h('label', { for: 'upload-file', text: 'File' }), file), h('button', { type: 'submit' }, 'Upload')),
    bar, out, ok);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    out.textContent = '';
    ok.textContent = '';
    const f = file.files[0];
    if (!f) { out.textContent = 'Choose a CSV or JSON file first.'; return; }
    const json = /\.json$/i.test(f.name) || f.type === 'application/json';
    bar.hidden = false;
    bar.value = 0;
    try {
      const r = await upload(`/v1/tables/${t.id}/rows`, f, json ? 'application/json' : 'text/csv', (p) => { bar.value = p; });
      bar.value = 1;
      ok.textContent = `${f.name}: imported ${r.inserted} rows.`;
      await refresh();
    } catch (err) {
      const d = err.details || {};
      const where = d.line ? `line ${d.line}` : d.index ? `item ${d.index}` : '';
      out.textContent = `${f.name}: ${errorText(err)}${where && !errorText(err).includes(where) ? ` (${where})` : ''}. Nothing was imported.`;
    }
  });
  return form;
}

async function showPreview(el, id) {
  try {
    const page = await api('GET', `/v1/tables/${id}/rows?limit=100`);
    // A page holds at most 4 MiB of values; truncated says the cap ended it.
    const cut = page.truncated && h('p', { class: 'muted', text: page.rows.length
      ? `Only the first ${page.rows.length} rows fit in the preview (4 MiB at most); read the rest with SQL.`
      : 'The first row is too large for the preview (4 MiB at most); read it with SQL.' });
    replace(el, page.rows.length ? grid(page.columns, page.rows, { filename: 'rows.csv' }) : !cut && h('p', { class: 'muted', text: 'No rows yet.' }), cut);
  } catch (err) {
    replace(el, h('p', { class: 'error', text: errorText(err) }));
  }
}
