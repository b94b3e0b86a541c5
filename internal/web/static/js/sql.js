// SQL display: highlighted by splitting the text into tokens and wrapping
// each in a span built with textContent, so the statement is never parsed
// as HTML.
import { h, toast } from './dom.js';

const KEYWORDS = new Set(('select from where group by order having limit offset join left right inner outer full cross on as and or not in is null ' +
  'like ilike between case when then else end distinct with union all except intersect asc desc nulls first last count sum avg min max ' +
  'cast interval date timestamp true false filter over partition coalesce extract values exists any').split(' '));

const TOKEN = /(--[^\n]*)|('(?:[^']|'')*')|("(?:[^"]|"")*")|(\b\d+(?:\.\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)|(\s+)|([^\sA-Za-z0-9_'"-]+|-)/g;

// highlight returns a <pre><code> holding sql as spans of text.
export function highlight(sql) {
  const code = h('code');
  for (const m of sql.matchAll(TOKEN)) {
    const [text, comment, str, , num, word] = m;
    let cls = '';
    if (comment) cls = 'tok-cm';
    else if (str) cls = 'tok-str';
    else if (num) cls = 'tok-num';
    else if (word && KEYWORDS.has(word.toLowerCase())) cls = 'tok-kw';
    code.append(cls ? h('span', { class: cls, text }) : document.createTextNode(text));
  }
  return h('pre', { class: 'code' }, code);
}

// sqlBlock is the collapsible, copyable SQL of an answer.
export function sqlBlock(sql, open = true) {
  const copy = h('button', { type: 'button', class: 'ghost', text: 'Copy SQL' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(sql);
      toast('SQL copied');
    } catch {
      toast('Copy failed: select the SQL and copy it by hand');
    }
  });
  return h('details', { class: 'sql', open }, h('summary', { text: 'SQL' }), highlight(sql), copy);
}
