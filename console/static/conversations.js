import { $, APIError, api, h, page, status, when } from './common.js';

page(async () => {
  $('#search-form').addEventListener('submit', ev => { ev.preventDefault(); search().catch(e => status(e.message, true)); });
  const res = await api('/api/v1/conversations?limit=20');
  hits(res.data.map(c => ({ ...c, snippet: '' })), []);
  status(`${res.data.length} most recently updated conversation(s).`);
});

async function search() {
  const q = $('#q').value.trim();
  const res = await api('/api/v1/conversations/search?limit=50&q=' + encodeURIComponent(q));
  hits(res.data, q.split(/\s+/).filter(Boolean));
  status(`${res.data.length} conversation(s) hold every word of “${q}”.`);
}

function hits(list, words) {
  $('#hits').replaceChildren(...list.map(c => h('li', { 'data-conv': c.id },
    h('button', { type: 'button', class: 'link', onclick: () => open(c.id).catch(e => status(e.message, true)) }, c.title || c.id),
    h('span', { class: 'meta' }, ` · ${c.message_count} messages · ${when(c.updated_at)}`),
    c.snippet ? h('div', { class: 'snippet' }, ...highlight(c.snippet, words)) : null)));
}

// highlight marks every word of the query in the snippet; the text stays text (no HTML parsing).
export function highlight(text, words) {
  if (!words.length) return [text];
  const esc = words.map(w => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const re = new RegExp(`(${esc.join('|')})`, 'giu');
  return text.split(re).map((part, i) => i % 2 ? h('mark', {}, part) : part);
}

async function open(id) {
  const c = await api(`/api/v1/conversations/${encodeURIComponent(id)}`);
  $('#conv').hidden = false;
  $('#conv-h').textContent = c.title || c.id;
  $('#messages').replaceChildren(...(c.messages || []).map(m => h('li', {},
    h('span', { class: 'role' }, m.role), m.content, m.model ? h('span', { class: 'meta' }, ` · ${m.model}`) : '')));
  try {
    const t = await api(`/api/v1/conversations/traces/${encodeURIComponent(id)}`);
    const node = o => h('li', {}, h('strong', {}, o.observation_type || o.role), ' ', o.content,
      o.children && o.children.length ? h('ul', { class: 'tree' }, ...o.children.map(node)) : null);
    $('#trace').replaceChildren(...t.observations.map(node));
  } catch (e) {
    if (!(e instanceof APIError)) throw e;
    $('#trace').replaceChildren(h('li', { class: 'meta' }, 'No observations: this conversation is not a trace.'));
  }
}
