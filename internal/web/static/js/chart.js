// Charts: the server's Vega-Lite spec rendered with vega-embed. The
// libraries (about 800 KB) load only when the first chart is shown, as
// UMD builds through dynamic import (each sets its global). Vega's default
// expression compiler builds functions from strings, which the CSP forbids, so specs
// are parsed to ASTs and evaluated by vega-interpreter.
import { h, replace } from './dom.js';

let loading;

function load() {
  if (!loading) {
    const url = (f) => new URL(`../vendor/${f}`, import.meta.url).href;
    loading = (async () => {
      await import(url('vega.min.js'));
      await import(url('vega-lite.min.js'));
      await import(url('vega-interpreter.min.js'));
      await import(url('vega-embed.min.js'));
      return globalThis.vegaEmbed;
    })();
    loading.catch(() => { loading = undefined; });
  }
  return loading;
}

// MARKS are the types a chart with x and y encodings can switch between.
const MARKS = [['bar', 'Bar'], ['line', 'Line'], ['point', 'Scatter'], ['area', 'Area']];

function markOf(spec) { return typeof spec.mark === 'string' ? spec.mark : spec.mark && spec.mark.type; }

function switchable(spec) {
  return spec.encoding && spec.encoding.x && spec.encoding.y && MARKS.some(([m]) => m === markOf(spec));
}

function withMark(spec, mark) {
  const old = typeof spec.mark === 'object' ? spec.mark : {};
  return { ...spec, mark: { ...old, type: mark } };
}

async function render(box, spec) {
  const embed = await load();
  const vega = globalThis.vega;
  const result = await embed(box, { ...spec, width: 'container', autosize: { type: 'fit-x', contains: 'padding' } }, {
    renderer: 'svg', actions: false, tooltip: false, defaultStyle: false,
    ast: true, expr: vega.expressionInterpreter,
  });
  const svg = box.querySelector('svg');
  if (svg) {
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', spec.description || spec.title || 'Chart of the result');
  }
  return result;
}

// chart shows spec with a chart type switch when the spec has axes.
export function chart(spec) {
  const box = h('div', { class: 'chart-box', 'data-chart': 'pending' });
  const status = h('p', { class: 'muted', text: 'Loading chart…' });
  const wrap = h('figure', { class: 'chart' }, status, box);
  let view;
  const show = async (s) => {
    try {
      if (view) view.finalize();
      replace(box);
      view = (await render(box, s)).view;
      status.remove();
      box.setAttribute('data-chart', 'rendered');
    } catch (err) {
      status.textContent = `The chart could not be drawn: ${err.message}`;
      box.setAttribute('data-chart', 'error');
    }
  };
  if (switchable(spec)) {
    const sel = h('select', { 'aria-label': 'Chart type', class: 'chart-type' },
      ...MARKS.map(([m, label]) => h('option', { value: m, selected: m === markOf(spec) }, label)));
    sel.addEventListener('change', () => show(withMark(spec, sel.value)));
    wrap.prepend(h('label', { class: 'inline' }, 'Chart type ', sel));
  }
  show(spec);
  return wrap;
}
