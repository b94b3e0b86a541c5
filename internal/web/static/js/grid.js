// The result grid: sortable columns (buttons in the headers, aria-sort),
// pages of rows, and a CSV download built in the browser from every row.
import { h, replace, cellText, download } from './dom.js';

const NUMERIC = /^(smallint|integer|bigint|numeric|real|double precision|int\d?|float\d?|decimal)$/;

// grid renders columns ([{name, type}]) and rows (arrays) as a table.
export function grid(columns, rows, opts = {}) {
  const state = { sort: -1, dir: 1, page: 0, size: opts.pageSize || 10 };
  const wrap = h('div', { class: 'grid' });
  const render = () => replace(wrap, table(columns, ordered(rows, columns, state), state, render), pager(rows.length, state, render),
    opts.csv === false ? null : csvButton(columns, rows, opts.filename || 'result.csv'));
  render();
  return wrap;
}

function isNumeric(col) { return NUMERIC.test(String(col.type || '').toLowerCase()); }

function ordered(rows, columns, state) {
  if (state.sort < 0) return rows;
  const i = state.sort;
  const num = isNumeric(columns[i]);
  const key = (r) => (r[i] === null || r[i] === undefined ? null : num ? Number(r[i]) : cellText(r[i]));
  return [...rows].sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === y) return 0;
    if (x === null) return 1;
    if (y === null) return -1;
    return (num ? x - y : String(x).localeCompare(String(y))) * state.dir;
  });
}

function table(columns, rows, state, render) {
  const head = columns.map((c, i) => {
    const sorted = state.sort === i;
    const btn = h('button', { type: 'button', title: `Sort by ${c.name}` }, c.name, sorted ? (state.dir > 0 ? ' ▲' : ' ▼') : '');
    btn.addEventListener('click', () => {
      state.dir = sorted ? -state.dir : 1;
      state.sort = i;
      state.page = 0;
      render();
    });
    return h('th', { scope: 'col', 'aria-sort': sorted ? (state.dir > 0 ? 'ascending' : 'descending') : 'none' }, btn);
  });
  const start = state.page * state.size;
  const body = rows.slice(start, start + state.size).map((r) =>
    h('tr', {}, ...columns.map((c, i) => h('td', { class: isNumeric(c) ? 'num' : false, text: cellText(r[i]) }))));
  const t = h('table', {}, h('thead', {}, h('tr', {}, ...head)), h('tbody', {}, ...body));
  return h('div', { class: 'grid-wrap', tabindex: '0', role: 'region', 'aria-label': 'Result rows' }, t);
}

function pager(total, state, render) {
  const pages = Math.max(1, Math.ceil(total / state.size));
  const from = total ? state.page * state.size + 1 : 0;
  const to = Math.min(total, (state.page + 1) * state.size);
  const go = (d) => () => { state.page += d; render(); };
  return h('div', { class: 'pager' },
    h('button', { type: 'button', class: 'ghost', disabled: state.page === 0, on: { click: go(-1) } }, 'Previous'),
    h('span', { class: 'count', text: `Rows ${from}–${to} of ${total}` }),
    h('button', { type: 'button', class: 'ghost', disabled: state.page >= pages - 1, on: { click: go(1) } }, 'Next'));
}

// csv quotes every field that needs it (RFC 4180).
export function toCSV(columns, rows) {
  const q = (v) => {
    const s = v === null || v === undefined ? '' : cellText(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [columns.map((c) => q(c.name)), ...rows.map((r) => r.map(q))].map((l) => l.join(',')).join('\r\n') + '\r\n';
}

function csvButton(columns, rows, filename) {
  return h('button', { type: 'button', class: 'ghost', on: { click: () => download(filename, toCSV(columns, rows), 'text/csv') } }, 'Download CSV');
}
