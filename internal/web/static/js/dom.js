// DOM helpers. Every value from the database, an LLM or a user goes into
// the page as a text node (never parsed as HTML), so markup in a cell stays
// text.

// h builds an element: attrs are attributes (false/null skip one, true sets
// it empty), except "on" (event listeners), "text" (textContent) and
// "props" (DOM properties); children are nodes or strings (text nodes).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'props') Object.assign(el, v);
    else if (k === 'style') throw new Error('inline style attributes break the CSP; use a class');
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, ...children);
  return el;
}

// append adds children, turning strings and numbers into text nodes.
export function append(el, ...children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// clear removes every child and appends the given ones.
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, ...children);
}

let uid = 0;
// id returns a page-unique id for label/for and aria references.
export function id(prefix = 'f') {
  uid += 1;
  return `${prefix}-${uid}`;
}

// field is a labelled control: a label, the control and an optional hint.
export function field(labelText, control, hint) {
  if (!control.id) control.id = id();
  const parts = [h('label', { for: control.id, text: labelText }), control];
  if (hint) {
    const hintEl = h('p', { class: 'muted', id: id('hint'), text: hint });
    control.setAttribute('aria-describedby', hintEl.id);
    parts.push(hintEl);
  }
  return h('div', { class: 'field' }, ...parts);
}

// toast announces a short message in the live region for a few seconds.
let toastTimer;
export function toast(message) {
  const el = document.getElementById('toast');
  el.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.textContent = ''; }, 5000);
}

// errorText is what to show for a failed call: the server's message (safe
// to show a person), naming the field or line when it says which.
export function errorText(err) {
  if (err && err.message) return err.message;
  return String(err);
}

// fmtTime renders an RFC 3339 time in the user's locale.
export function fmtTime(s) {
  if (!s) return '—';
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? String(s) : d.toLocaleString();
}

// cellText is a JSON value as a grid cell shows it.
export function cellText(v) {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// download saves text as a file through a Blob URL (no server round trip).
export function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
