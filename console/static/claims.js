import { $, api, h, page, status, when } from './common.js';
import { verifyExport } from './claimlog.js';

page(async () => {
  $('#filter').addEventListener('submit', ev => { ev.preventDefault(); list().catch(e => status(e.message, true)); });
  $('#verify-browser').addEventListener('click', async () => show(await verifyExport(await api('/api/v1/claims/log/export'))));
  $('#verify-paste').addEventListener('click', async () => {
    let x;
    try { x = JSON.parse($('#paste').value); } catch (e) { show({ ok: false, reason: 'not JSON: ' + e.message }); return; }
    show(await verifyExport(x));
  });
  await Promise.all([checkpoint(), list()]);
});

function show(r) {
  const out = $('#verify-result');
  out.className = r.ok ? 'ok' : 'bad';
  out.textContent = r.ok ? `Verified in this browser: ${r.size} entries chain to the head signed by key ${r.keyId}.`
    : `Verification FAILED: ${r.reason}`;
}

async function checkpoint() {
  const [cp, head] = await Promise.all([api('/api/v1/claims/log/checkpoint'), api('/api/v1/claims/log?limit=1&after=0')]);
  const kv = [['Size', cp.size], ['Head hash', cp.head_hash], ['Signed at', when(cp.at)], ['Key id', cp.key_id],
    ['Signature', cp.signature], ['First entry', head.data && head.data[0] ? head.data[0].entry_hash : '—']];
  $('#checkpoint').replaceChildren(...kv.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

async function list() {
  const q = new URLSearchParams({ limit: '100' });
  if ($('#f-subject').value) q.set('subject_id', $('#f-subject').value);
  const st = $('#f-status').value;
  const res = await api('/api/v1/claims?' + q);
  const shown = res.data.filter(c => !st || c.status === st);
  $('#claims tbody').replaceChildren(...shown.map(c => h('tr', { 'data-claim': c.id },
    h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => open(c.id) }, c.statement)),
    h('td', {}, `${c.subject_type}/${c.subject_id}`), h('td', {}, badge(c.status)), h('td', {}, c.log_seq))));
  status(`${shown.length} claim(s).`);
}

const badge = s => h('span', { class: s === 'verified' ? 'ok' : s === 'failed' ? 'bad' : 'warn' }, s);

async function open(id) {
  const [c, runs] = await Promise.all([api(`/api/v1/claims/${encodeURIComponent(id)}`), api(`/api/v1/claims/${encodeURIComponent(id)}/verifications`)]);
  $('#claim').hidden = false;
  $('#claim-statement').replaceChildren(h('strong', {}, c.statement), ' ', badge(c.status),
    h('span', { class: 'meta' }, ` · issued by ${c.issuer.kind} ${c.issuer.credential_id} · log entry ${c.log_seq}`));
  $('#evidence').replaceChildren(...(c.evidence || []).map(e => h('li', {}, h('strong', {}, e.kind), ' ', h('code', {}, e.source),
    e.json_path ? ` ${e.json_path} = ${JSON.stringify(e.expected_value)}` : '', e.hash ? h('span', { class: 'meta' }, ` sha256 ${e.hash}`) : '')));
  const rs = runs.data || runs;
  $('#runs').replaceChildren(...rs.map(r => h('li', {}, badge(r.status), ` ${when(r.created_at)} `,
    h('ul', {}, ...r.details.results.map(x => h('li', {}, x.passed ? '✓ ' : '✗ ', `${x.kind} ${x.source}: ${x.message}`))))));
  if (!rs.length) $('#runs').append(h('li', { class: 'meta' }, 'Not verified yet.'));
}
