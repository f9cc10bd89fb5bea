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
  const [states, leases, tokens, claims, convs] = await Promise.all([
    count('/api/v1/states/query', 'POST', { limit: 100 }), count('/api/v1/leases?limit=100'),
    count('/api/v1/capability-tokens'), count('/api/v1/claims?limit=100'), count('/api/v1/conversations?limit=100')]);
  const tiles = [['States', states], ['Live leases', leases], ['Capability tokens', tokens], ['Claims', claims], ['Conversations', convs]];
  $('#counts').replaceChildren(...tiles.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))));
  status('');
}

function meter() {
  $('#rate-meter').hidden = !rate.limit;
  if (!rate.limit) { $('#rate').textContent = 'This server has no rate limit.'; return; }
  const used = rate.limit - rate.remaining;
  $('#rate').textContent = `${used} of ${rate.limit} requests used in this window (resets ${when(rate.reset * 1000)}).`;
  $('#rate-meter').max = rate.limit;
  $('#rate-meter').value = used;
}
