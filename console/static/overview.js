import { $, api, h, latestSequence, page, rate, status, watch, when } from './common.js';

const seen = []; // times of events seen in the last minute

page(async () => {
  await counts();
  meter();
  watch({ after: await latestSequence(), leases: 'true' }, (type, e) => {
    seen.push(Date.now());
    $('#activity').prepend(h('li', {}, h('strong', {}, type), ' ', h('code', {}, e.state_key), ` · ${when(e.created_at || e.at)}`));
    while ($('#activity').children.length > 30) $('#activity').lastChild.remove();
  });
  setInterval(() => {
    while (seen.length && seen[0] < Date.now() - 60000) seen.shift();
    $('#rate-events').textContent = seen.length;
  }, 1000);
  setInterval(() => counts().then(meter).catch(() => {}), 15000);
});

// count reads a list and says how many it holds ("100+" when there is another page); a list the
// key may not read shows as "—" rather than failing the page.
async function count(path, method = 'GET', body) {
  try {
    const r = await api(path, { method, body });
    const more = r.next_cursor || r.has_more || (r.pagination && r.pagination.next_cursor);
    return `${r.data.length}${more ? '+' : ''}`;
  } catch { return '—'; }
}

async function counts() {
  const [usage, states, leases, tokens, claims, convs] = await Promise.all([api('/api/v1/usage').catch(() => null),
    count('/api/v1/states/query', 'POST', { limit: 100 }), count('/api/v1/leases?limit=100'),
    count('/api/v1/capability-tokens'), count('/api/v1/claims?limit=100'), count('/api/v1/conversations?limit=100')]);
  const tiles = [['States', states], ['Live leases', leases], ['Capability tokens', tokens], ['Claims', claims], ['Conversations', convs],
    ['Watchers connected', usage ? usage.watchers_connected : '—']];
  $('#counts').replaceChildren(...tiles.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))));
  perCredential(usage);
  status('');
}

// perCredential shows the rate limiter's counters: busiest first, the first 20. An API key's
// count includes the requests of the tokens it minted (they count against it too).
function perCredential(u) {
  const note = $('#usage-note');
  if (!u) { note.textContent = 'This key may not read usage (it needs keys:read).'; return; }
  note.textContent = u.rate_limit
    ? `Counted by the rate limit of ${u.rate_limit} requests per credential per minute; watchers are counted by the server replica that answered.`
    : 'This server has no rate limit, so requests are not counted per credential.';
  const rows = u.credentials.slice().sort((a, b) => b.requests - a.requests || b.previous_window - a.previous_window).slice(0, 20);
  $('#usage tbody').replaceChildren(...rows.map(c => h('tr', { 'data-credential': c.id },
    h('td', {}, c.name || h('code', {}, c.id)), h('td', {}, c.kind === 'api_key' ? 'API key' : 'token'),
    h('td', {}, c.agent_id || '—'), h('td', { class: 'requests' }, c.requests), h('td', { class: 'previous' }, c.previous_window),
    h('td', {}, u.rate_limit ? `${Math.round(100 * c.requests / u.rate_limit)} %` : '—'))));
}

function meter() {
  $('#rate-meter').hidden = !rate.limit;
  if (!rate.limit) { $('#rate').textContent = 'This server has no rate limit.'; return; }
  const used = rate.limit - rate.remaining;
  $('#rate').textContent = `${used} of ${rate.limit} requests used in this window (resets ${when(rate.reset * 1000)}).`;
  $('#rate-meter').max = rate.limit;
  $('#rate-meter').value = used;
}
