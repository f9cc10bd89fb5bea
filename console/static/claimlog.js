// Browser re-check of an exported claims log, the same rules as core.VerifyLog (cmd/verify):
// entry_hash = SHA-256(prev_hash || canonical entry) in hex, where the canonical entry is the
// compact JSON of seq, type, claim_id, run_id (left out when empty), at, content_hash and
// prev_hash in that order, escaped as Go's encoding/json escapes; and the checkpoint's Ed25519
// signature over "agentstate-claimlog-checkpoint/v1\n<project>\n<size>\n<head>\n<at>".

const GENESIS = '0'.repeat(64);
const enc = new TextEncoder();
const hex = buf => [...new Uint8Array(buf)].map(b => b.toString(16).padStart(2, '0')).join('');
const unb64 = s => Uint8Array.from(atob(s), c => c.charCodeAt(0));

// goJSON matches encoding/json's HTML-safe escaping of <, >, & and U+2028/9.
const goJSON = v => JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, c => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));

export function canonical(e) {
  const o = { seq: e.seq, type: e.type, claim_id: e.claim_id };
  if (e.run_id) o.run_id = e.run_id;
  Object.assign(o, { at: e.at, content_hash: e.content_hash, prev_hash: e.prev_hash });
  return goJSON(o);
}

export async function entryHash(e) {
  return hex(await crypto.subtle.digest('SHA-256', enc.encode(e.prev_hash + canonical(e))));
}

class Failure extends Error {}
const fail = (seq, msg) => { throw new Failure(seq ? `entry ${seq}: ${msg}` : msg); };

// verifyExport resolves to {ok: true, size} or {ok: false, reason}.
export async function verifyExport(x) {
  try {
    const { entries, checkpoint: cp, public_key: pk } = x;
    if (!pk || pk.algorithm !== 'Ed25519' || !cp) fail(0, 'the export has no Ed25519 public key or checkpoint');
    const raw = unb64(pk.public_key);
    if (raw.length !== 32) fail(0, 'public key is not a base64 Ed25519 key');
    const kid = hex(await crypto.subtle.digest('SHA-256', raw)).slice(0, 16);
    if (kid !== pk.key_id || cp.key_id !== pk.key_id) fail(0, `checkpoint key id ${cp.key_id} does not match the public key`);
    const key = await crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
    const msg = `agentstate-claimlog-checkpoint/v1\n${cp.project_id}\n${cp.size}\n${cp.head_hash}\n${cp.at}`;
    if (!await crypto.subtle.verify({ name: 'Ed25519' }, key, unb64(cp.signature), enc.encode(msg))) {
      fail(0, 'checkpoint signature does not verify');
    }
    let prev = GENESIS, next = 1;
    for (const e of entries) {
      if (e.seq !== next) fail(e.seq, `expected entry ${next} here: an entry is missing or out of order`);
      if (e.prev_hash !== prev) fail(e.seq, "prev_hash does not match the previous entry's hash");
      if (await entryHash(e) !== e.entry_hash) fail(e.seq, 'entry_hash does not match its contents (changed after it was written)');
      prev = e.entry_hash; next = e.seq + 1;
    }
    if (next - 1 !== cp.size || prev !== cp.head_hash) {
      fail(next - 1, `the log ends at entry ${next - 1} but the signed checkpoint says ${cp.size}: entries were removed or added`);
    }
    return { ok: true, size: cp.size, keyId: pk.key_id };
  } catch (e) {
    return { ok: false, reason: e instanceof Failure ? e.message : `malformed export: ${e.message}` };
  }
}
