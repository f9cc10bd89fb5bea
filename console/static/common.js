// Shared by every page: the signed-in key, REST calls with it, a server-sent-events reader and
// small DOM helpers. Everything the console does goes through api() or watch(), i.e. the
// public REST API with the operator's own key.

const KEY = 'agentstate.console.key';

export const key = () => sessionStorage.getItem(KEY);
export function signIn(k) { sessionStorage.setItem(KEY, k); }
export function signOut() { sessionStorage.removeItem(KEY); location.href = '/console/signin'; }

// The last rate-limit headers seen, for the overview.
export const rate = { limit: 0, remaining: 0, reset: 0 };

export class APIError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.error && body.error.code;
  }
}

// api calls the REST API with the signed-in key; it resolves to the parsed body (null for 204).
export async function api(path, { method = 'GET', body, token } = {}) {
  const headers = { Authorization: 'Bearer ' + (token || key()) };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.headers.has('X-RateLimit-Limit')) {
    rate.limit = +res.headers.get('X-RateLimit-Limit');
    rate.remaining = +res.headers.get('X-RateLimit-Remaining');
    rate.reset = +res.headers.get('X-RateLimit-Reset');
  }
  if (res.status === 401 && !token) { signOut(); throw new APIError(401); }
  const text = await res.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!res.ok) throw new APIError(res.status, parsed);
  return parsed;
}

// parseSSE feeds a text stream into onFrame({event, data, id}) following the EventSource rules.
export async function parseSSE(stream, onFrame) {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '', frame = { event: 'message', data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i;
    while ((i = buf.search(/\r?\n/)) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(buf[i] === '\r' ? i + 2 : i + 1);
      if (line === '') {
        if (frame.data.length) onFrame({ event: frame.event, data: frame.data.join('\n'), id: frame.id });
        frame = { event: 'message', data: [], id: frame.id };
        continue;
      }
      if (line.startsWith(':')) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'data') frame.data.push(val);
      else if (field === 'event') frame.event = val;
      else if (field === 'id') frame.id = val;
    }
  }
}

// watch follows /api/v1/states/watch. EventSource cannot send the bearer header an API key
// needs (the route takes ?token= for capability tokens only), so it is fetch() with a stream
// reader, resuming after the last frame's id when the connection drops.
export function watch(params, onEvent, onLive = showLive) {
  const ctl = new AbortController();
  let after = params.after;
  (async () => {
    while (!ctl.signal.aborted) {
      try {
        const q = new URLSearchParams(params);
        if (after !== undefined) q.set('after', after);
        const res = await fetch('/api/v1/states/watch?' + q, { headers: { Authorization: 'Bearer ' + key() }, signal: ctl.signal });
        if (!res.ok) throw new APIError(res.status);
        onLive(true);
        await parseSSE(res.body, f => {
          if (f.id) after = f.id;
          if (f.event === 'ping') return;
          onEvent(f.event, JSON.parse(f.data));
        });
      } catch (e) {
        if (ctl.signal.aborted) return;
      }
      onLive(false);
      await new Promise(r => setTimeout(r, 2000));
    }
  })();
  return () => ctl.abort();
}

// showLive reflects the stream's state in the page's #live badge.
function showLive(on) {
  const b = $('#live');
  if (!b) return;
  b.textContent = on ? 'live' : 'reconnecting…';
  b.classList.toggle('on', on);
}

// h builds an element: h('td', {class: 'x'}, 'text', child). Text is always text, never HTML.
export function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
  return e;
}

export const $ = sel => document.querySelector(sel);
export const when = ms => ms ? new Date(ms).toLocaleString() : '—';

export function status(msg, error = false) {
  const s = $('#status');
  s.textContent = msg;
  s.classList.toggle('error', error);
}

// page runs a page's start function once signed in; without a key it goes to sign-in.
export function page(start) {
  addEventListener('DOMContentLoaded', () => {
    if (!key()) { location.href = '/console/signin'; return; }
    const out = $('#signout');
    out.hidden = false;
    out.addEventListener('click', signOut);
    start().catch(e => status(e.message, true));
  });
}

// confirm shows a <dialog> and resolves true when its OK button was pressed.
export function confirmDialog(dialog) {
  return new Promise(resolve => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.returnValue = '';
    dialog.showModal();
  });
}

// latestSequence is a recent state sequence of the project, to start a watch near "now"
// rather than replaying the whole backlog (a few events more are harmless: pages apply
// events idempotently).
export async function latestSequence() {
  const res = await api('/api/v1/states/query', { method: 'POST', body: { limit: 100 } });
  return Math.max(0, ...res.data.map(s => s.latest_sequence));
}
