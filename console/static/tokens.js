import { $, api, confirmDialog, h, page, status, when } from './common.js';

let tokens = [];

page(async () => {
  await load();
  try {
    const keys = await api('/api/v1/keys');
    $('#keys tbody').replaceChildren(...keys.data.map(k => h('tr', {},
      h('td', {}, k.name), h('td', {}, h('code', {}, k.key_prefix)), h('td', {}, k.scopes && k.scopes.length ? k.scopes.join(' ') : 'full access'),
      h('td', {}, k.agent_id || '—'), h('td', {}, when(k.last_used_at)),
      h('td', {}, k.revoked_at ? h('span', { class: 'bad' }, 'revoked') : h('span', { class: 'ok' }, 'active')))));
  } catch (e) {
    $('#keys tbody').replaceChildren(h('tr', {}, h('td', { colspan: 6, class: 'meta' }, `Keys are not visible to this key: ${e.message}`)));
  }
});

async function load() {
  tokens = (await api('/api/v1/capability-tokens')).data;
  const ids = new Set(tokens.map(t => t.id));
  const roots = tokens.filter(t => !t.parent_id || !ids.has(t.parent_id));
  $('#tree').replaceChildren(...roots.map(node));
  if (!roots.length) $('#tree').append(h('li', { class: 'meta' }, 'No live capability tokens.'));
}

const children = t => tokens.filter(c => c.parent_id === t.id);
const subtree = t => [t, ...children(t).flatMap(subtree)];

function node(t) {
  const kids = children(t);
  return h('li', { 'data-token': t.id },
    h('div', { class: 'tok' },
      h('strong', {}, t.name), ' ', h('code', {}, t.key_prefix), ' ',
      h('span', { class: 'meta' }, `scopes ${t.scopes.join(' ')} · resources ${t.resources ? t.resources.join(' ') : 'all keys'}` +
        ` · agent ${t.agent_id || '—'} · expires ${when(t.expires_at)} · last used ${when(t.last_used_at)} · may delegate ${t.max_depth} more`),
      ' ', h('button', { type: 'button', class: 'danger', onclick: () => revoke(t), 'aria-label': `Revoke ${t.name} and its subtree` }, 'Revoke…')),
    kids.length ? h('ul', { class: 'tree' }, ...kids.map(node)) : null);
}

async function revoke(t) {
  const gone = subtree(t);
  $('#preview').replaceChildren(...gone.map(g => h('li', {}, h('strong', {}, g.name), ' ', h('code', {}, g.key_prefix),
    g.depth > t.depth ? h('span', { class: 'meta' }, ` (depth ${g.depth - t.depth} below)`) : '')));
  if (!await confirmDialog($('#confirm'))) return;
  try {
    await api(`/api/v1/capability-tokens/${encodeURIComponent(t.id)}`, { method: 'DELETE' });
    status(`Revoked ${gone.length} token(s): ${gone.map(g => g.name).join(', ')}.`);
  } catch (e) { status(e.message, true); }
  await load();
}
