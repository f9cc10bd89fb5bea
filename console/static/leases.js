import { $, api, confirmDialog, h, latestSequence, page, status, watch, when } from './common.js';

const leases = new Map(); // id -> lease

page(async () => {
  await refresh();
  const ev = await api('/api/v1/leases/events?limit=500');
  ev.data.slice(-30).forEach(addEvent);
  watch({ after: await latestSequence(), leases: 'true' }, (type, e) => {
    if (!type.startsWith('lease.')) return;
    addEvent(e);
    refresh().catch(err => status(err.message, true));
  });
  setInterval(tick, 250);
  setInterval(() => refresh().catch(() => {}), 2000);
});

async function refresh() {
  const res = await api('/api/v1/leases?limit=100');
  // Joining a queue is no lease event, so the queues are read on every refresh (one request
  // per live lease; a key this console may not read shows no queue rather than failing).
  const queues = await Promise.all(res.data.map(l =>
    api(`/api/v1/states/${encodeURIComponent(l.state_key)}/lease/waiters`).then(r => r.data, () => [])));
  leases.clear();
  res.data.forEach(l => leases.set(l.id, l));
  $('#leases tbody').replaceChildren(...res.data.map((l, i) => h('tr', { 'data-lease': l.id, 'data-key': l.state_key },
    h('td', {}, h('code', {}, l.state_key)), h('td', {}, l.holder), h('td', { class: 'agent' }, l.agent_id || '—'),
    h('td', {}, l.fencing_token),
    h('td', { class: 'countdown', 'data-expires': l.expires_at }, ''),
    h('td', { class: 'waiters' }, waiters(queues[i])),
    h('td', {}, h('button', { type: 'button', class: 'quiet', onclick: () => release(l) }, 'Release')))));
  if (!res.data.length) $('#leases tbody').append(h('tr', {}, h('td', { colspan: 7, class: 'meta' }, 'No live leases.')));
  tick();
}

// waiters is a key's queue, front first: who waits, for which agent, until when.
function waiters(queue) {
  if (!queue.length) return h('span', { class: 'meta' }, 'nobody');
  return h('ol', { class: 'queue' }, ...queue.map(w => h('li', { 'data-holder': w.holder },
    w.holder, w.agent_id ? ` (agent ${w.agent_id})` : '', ' · gives up ',
    h('span', { class: 'countdown', 'data-expires': w.waits_until }, ''))));
}

// tick counts every expiry down; a lease past its expiry shows as expired until the sweeper's
// lease.expired event (or the next refresh) removes it.
function tick() {
  for (const td of document.querySelectorAll('.countdown')) {
    const left = +td.dataset.expires - Date.now();
    td.textContent = left > 0 ? `${(left / 1000).toFixed(1)} s` : 'expired';
    td.className = 'countdown ' + (left <= 0 ? 'bad' : left < 5000 ? 'warn' : '');
  }
}

function addEvent(e) {
  const list = $('#lease-events');
  list.prepend(h('li', { 'data-type': e.type },
    h('strong', {}, e.type), ' ', h('code', {}, e.state_key), ` by ${e.holder} · fencing ${e.fencing_token} · ${when(e.at)}`));
  while (list.children.length > 50) list.lastChild.remove();
}

async function release(l) {
  $('#confirm-text').textContent = `Release the lease on ${l.state_key} held by ${l.holder} (fencing token ${l.fencing_token})? ` +
    'Its holder\'s next write with this lease will be refused.';
  if (!await confirmDialog($('#confirm'))) return;
  try {
    await api(`/api/v1/leases/${encodeURIComponent(l.id)}`, { method: 'DELETE' });
    status(`Released the lease on ${l.state_key}.`);
  } catch (e) { status(e.message, true); }
  await refresh();
}
