import { $, api, h, page, status, watch, when } from './common.js';

const rows = new Map(); // state_key -> <tr>
let events = [];        // history of the open state, oldest first
let query = {};

page(async () => {
  $('#query-form').addEventListener('submit', ev => { ev.preventDefault(); load().catch(e => status(e.message, true)); });
  $('#travel-form').addEventListener('submit', ev => { ev.preventDefault(); travel().catch(e => status(e.message, true)); });
  $('#diff-form').addEventListener('submit', ev => { ev.preventDefault(); diff(); });
  const latest = await load();
  watch({ after: latest }, (type, ev) => {
    if (type === 'state.upsert' || type === 'state.delete') onEvent(ev);
  });
});

async function load() {
  const f = new FormData($('#query-form'));
  query = {};
  if (f.get('tag')) query.tags = [f.get('tag')];
  if (f.get('agent')) query.agent_id = f.get('agent');
  if (f.get('path')) {
    query.json_path = f.get('path');
    if (f.get('equals')) query.json_equals = JSON.parse(f.get('equals'));
  }
  const res = await api('/api/v1/states/query', { method: 'POST', body: { ...query, limit: 100 } });
  rows.clear();
  $('#states tbody').replaceChildren(...res.data.map(s => row(s)));
  status(`${res.data.length} state(s) match${res.pagination.next_cursor ? ' (first 100 shown)' : ''}; new writes appear as they happen.`);
  return Math.max(0, ...res.data.map(s => s.latest_sequence));
}

function row(s) {
  const tr = h('tr', { 'data-key': s.state_key },
    h('td', {}, h('button', { class: 'link', type: 'button', onclick: () => open(s.state_key) }, s.state_key)),
    h('td', {}, s.agent_id), h('td', {}, s.version), h('td', {}, (s.tags || []).join(', ')), h('td', {}, when(s.updated_at)));
  rows.set(s.state_key, tr);
  return tr;
}

// matches applies the query's tag and agent filters to a live event (the JSON path is
// checked by the server on the next query).
function matches(ev) {
  if (query.agent_id && ev.agent_id !== query.agent_id) return false;
  if (query.tags && !query.tags.every(t => (ev.tags || []).includes(t))) return false;
  return !query.json_path;
}

function onEvent(ev) {
  const old = rows.get(ev.state_key);
  if (ev.event_type === 'delete') { old && old.remove(); rows.delete(ev.state_key); }
  else if (matches(ev)) {
    const tr = row({ ...ev, updated_at: ev.created_at });
    tr.classList.add('fresh');
    old ? old.replaceWith(tr) : $('#states tbody').prepend(tr);
  }
  if ($('#detail-key').textContent === ev.state_key) { events.push(ev); timeline(); }
}

async function open(stateKey) {
  events = [];
  let after = 0;
  for (;;) { // every event of the key, a page at a time
    const res = await api(`/api/v1/states/${encodeURIComponent(stateKey)}/events?limit=500&after=${after}`);
    events.push(...res.data);
    if (!res.pagination.next_cursor) break;
    after = res.pagination.next_cursor;
  }
  $('#detail').hidden = false;
  $('#detail-key').textContent = stateKey;
  timeline();
  const last = events[events.length - 1];
  if (last) {
    $('#travel-seq').value = last.sequence;
    $('#diff-a').value = Math.max(1, last.version - 1);
    $('#diff-b').value = last.version;
  }
  $('#travel').textContent = '';
  $('#diff').replaceChildren();
  $('#detail-h').scrollIntoView({ block: 'nearest' });
}

function timeline() {
  $('#timeline').replaceChildren(...events.map(e => h('li', { class: e.event_type, 'data-seq': e.sequence },
    h('button', { class: 'link', type: 'button', onclick: () => { $('#travel-seq').value = e.sequence; travel(); } },
      `v${e.version} · seq ${e.sequence}`),
    ' ', h('span', { class: 'meta' }, `${e.event_type} by ${e.agent_id} at ${when(e.created_at)}`,
      e.fencing_token ? ` · fencing ${e.fencing_token}` : ''))));
}

async function travel() {
  const k = $('#detail-key').textContent, seq = $('#travel-seq').value;
  try {
    const s = await api(`/api/v1/states/${encodeURIComponent(k)}?at_sequence=${seq}`);
    $('#travel').textContent = `as of sequence ${seq}: version ${s.version}\n` + JSON.stringify(s.data, null, 2);
  } catch (e) {
    $('#travel').textContent = `as of sequence ${seq}: ${e.message}`;
  }
}

function diff() {
  const at = v => events.find(e => e.version === +v);
  const a = at($('#diff-a').value), b = at($('#diff-b').value);
  if (!a || !b) { $('#diff').textContent = 'No such version in the history.'; return; }
  const lines = e => JSON.stringify(e.data, null, 2)?.split('\n') ?? ['(deleted)'];
  $('#diff').replaceChildren(...lineDiff(lines(a), lines(b)).map(([op, l]) =>
    h('span', { class: op === '+' ? 'add' : op === '-' ? 'del' : '' }, `${op} ${l}\n`)));
}

// lineDiff is the longest-common-subsequence diff of two line arrays (states are small).
export function lineDiff(a, b) {
  const n = a.length, m = b.length, L = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--)
    L[i][j] = a[i] === b[j] ? L[i + 1][j + 1] + 1 : Math.max(L[i + 1][j], L[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push([' ', a[i]]); i++; j++; }
    else if (L[i + 1][j] >= L[i][j + 1]) out.push(['-', a[i++]]);
    else out.push(['+', b[j++]]);
  }
  while (i < n) out.push(['-', a[i++]]);
  while (j < m) out.push(['+', b[j++]]);
  return out;
}
