// End-to-end test of the console in headless Chromium, run by console/e2e_test.go against a
// real in-process http-server. Env: BASE (server URL), KEY (a full-access API key of a fresh
// project), SHOTS (directory for the page screenshots), CHROMIUM (browser binary).
// Exits non-zero on the first failed step; every step writes its state over REST and checks
// what the browser shows, or acts in the browser and checks the result over REST.
import { chromium } from 'playwright-core';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { BASE, KEY, SHOTS } = process.env;
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const T = 15000; // bound of every wait

async function rest(method, path, body, token = KEY) {
  const res = await fetch(BASE + path, {
    method, headers: { Authorization: 'Bearer ' + token, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}
async function must(method, path, body, token) {
  const r = await rest(method, path, body, token);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}
function expect(cond, msg) { if (!cond) throw new Error(msg); }

const profile = mkdtempSync(join(tmpdir(), 'console-e2e-'));
// A persistent context on a fresh profile directory is Playwright's way of passing --user-data-dir.
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
  viewport: { width: 1366, height: 820 }, colorScheme: 'light',
});
const problems = []; // CSP violations and script errors anywhere, checked at the end
let step = 'launch';
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(T);
  // The deliberately wrong key at sign-in is the one expected failed request.
  const expected = m => page.url().endsWith('/console/signin') && m.text().includes('status of 401');
  page.on('console', m => { if (m.type() === 'error' && !expected(m)) problems.push(`${page.url()}: ${m.text()}`); });
  page.on('pageerror', e => problems.push(`${page.url()}: ${e.message}`));
  const run = async (name, fn) => { step = name; const t0 = Date.now(); await fn(); console.log(`ok   ${name} (${Date.now() - t0} ms)`); };
  const shot = async name => page.screenshot({ path: join(SHOTS, name + '.png') });
  // axe checks the page as it is now; every violation fails the run.
  const axe = async () => {
    await page.evaluate(axeSource); // evaluated by the debugger protocol, so the page's strict CSP still holds
    const r = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'best-practice'] }));
    const v = r.violations.map(x => `${x.id}: ${x.help} (${x.nodes.map(n => n.target.join(' ')).join(', ')})`);
    expect(v.length === 0, `axe on ${page.url()}:\n  ${v.join('\n  ')}`);
  };

  await run('sign-in', async () => {
    await page.goto(BASE + '/console/states');
    await page.waitForURL('**/console/signin');
    await axe();
    await shot('signin');
    await page.getByLabel('API key', { exact: true }).fill('as_live_' + 'x'.repeat(40));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#status.error').filter({ hasText: 'not valid' }).waitFor();
    await page.getByLabel('API key', { exact: true }).fill(KEY);
    await page.getByLabel('API key', { exact: true }).press('Enter'); // the keyboard submits the form
    await page.waitForURL('**/console/states');
    expect(await page.evaluate(() => sessionStorage.getItem('agentstate.console.key')) === KEY, 'key not kept in sessionStorage');
  });

  await run('keyboard: skip link first, then the navigation', async () => {
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement.textContent) === 'Skip to content', 'first Tab is not the skip link');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement.textContent) === 'Overview', 'second Tab is not the navigation');
  });

  await run('states: a write over REST appears live', async () => {
    await page.locator('#live.on').waitFor();
    await must('PUT', '/api/v1/states/jobs-build-42', { agent_id: 'planner', data: { step: 1, status: 'queued' }, tags: ['ci'] });
    await page.locator('tr[data-key="jobs-build-42"]').waitFor();
    await must('PUT', '/api/v1/states/jobs-build-42', { agent_id: 'builder', data: { step: 2, status: 'running', runner: 'r-7' }, tags: ['ci'] });
    await page.locator('tr[data-key="jobs-build-42"] td:nth-child(3)').filter({ hasText: /^2$/ }).waitFor();
    await must('PUT', '/api/v1/states/jobs-deploy-7', { agent_id: 'deployer', data: { env: 'staging' }, tags: ['cd'] });
    await page.locator('tr[data-key="jobs-deploy-7"]').waitFor();
  });

  await run('states: history, time travel and diff', async () => {
    await page.locator('tr[data-key="jobs-build-42"] button').focus();
    await page.keyboard.press('Enter');
    await page.locator('#timeline li').nth(1).waitFor();
    expect(await page.locator('#timeline li').count() === 2, 'timeline should hold two events');
    await page.locator('#timeline li').first().getByRole('button').click();
    await page.locator('#travel').filter({ hasText: '"status": "queued"' }).waitFor();
    const v1 = await page.locator('#travel').textContent();
    expect(!v1.includes('running'), 'time travel to v1 shows v2 data');
    await page.getByLabel('From version').fill('1');
    await page.getByLabel('to version').fill('2');
    await page.getByRole('button', { name: 'Diff' }).click();
    await page.locator('#diff .del').filter({ hasText: '"queued"' }).waitFor();
    await page.locator('#diff .add').filter({ hasText: '"runner": "r-7"' }).waitFor();
    await axe();
    await shot('states');
  });

  await run('states: query by tag, agent and JSON path', async () => {
    await page.getByLabel('Tag').fill('cd');
    await page.getByRole('button', { name: 'Query' }).click();
    await page.locator('tr[data-key="jobs-build-42"]').waitFor({ state: 'detached' });
    expect(await page.locator('#states tbody tr').count() === 1, 'tag query should match one state');
    expect(await page.locator('tr[data-key="jobs-deploy-7"]').count() === 1, 'tag query should match the deploy');
    await page.getByLabel('Tag').fill('');
    await page.getByLabel('JSON path').fill('$.status');
    await page.getByLabel('equals (JSON)').fill('"running"');
    await page.getByRole('button', { name: 'Query' }).click();
    // The tag query also matched one state, so wait for the rows to change, not the count.
    await page.locator('tr[data-key="jobs-build-42"]').waitFor();
    await page.locator('tr[data-key="jobs-deploy-7"]').waitFor({ state: 'detached' });
    expect(await page.locator('#states tbody tr').count() === 1, 'JSON path query should match the build only');
  });

  await run('states: dark mode', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await axe(); // contrast in the dark palette too
    await shot('states-dark');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  await run('leases: agent and waiter queue shown; a lease counts down and expires on screen; release asks first', async () => {
    const keep = await must('POST', '/api/v1/states/jobs-deploy-7/lease', { holder: 'deployer-1', ttl_ms: 600000 });
    await page.getByRole('link', { name: 'Leases' }).click();
    await page.waitForURL('**/console/leases');
    await page.locator(`tr[data-lease="${keep.id}"]`).waitFor();
    expect((await page.locator(`tr[data-lease="${keep.id}"] td.agent`).textContent()) === '—', 'a key\'s lease shows no agent');
    // A token bound to an agent queues for the held key; the queue shows it with its agent.
    const bot = await must('POST', '/api/v1/capability-tokens', { name: 'queue-bot', scopes: ['lease:write', 'state:read'], agent_id: 'bot-3' });
    const waiting = rest('POST', '/api/v1/states/jobs-deploy-7/lease', { holder: 'bot-3', wait_ms: 60000 }, bot.token);
    await page.locator(`tr[data-lease="${keep.id}"] .waiters li[data-holder="bot-3"]`).filter({ hasText: 'agent bot-3' }).waitFor();
    await page.locator('#live.on').waitFor(); // lease events are delivered from the moment the stream opens
    const short = await must('POST', '/api/v1/states/jobs-build-42/lease', { holder: 'builder-7', ttl_ms: 3000 });
    const row = page.locator(`tr[data-lease="${short.id}"]`);
    await row.filter({ hasText: 'builder-7' }).waitFor(); // live: the acquire event refreshed the table
    await page.locator('#lease-events li[data-type="acquired"]').filter({ hasText: 'builder-7' }).waitFor();
    await axe();
    await shot('leases');
    // The countdown reaches zero, then the sweeper's expired event arrives and the row goes.
    await page.locator('#lease-events li[data-type="expired"]').filter({ hasText: 'builder-7' }).waitFor();
    await row.waitFor({ state: 'detached' });
    // Release, cancelled once, then confirmed.
    await page.locator(`tr[data-lease="${keep.id}"] button`).click();
    await page.getByRole('button', { name: 'Cancel' }).click();
    expect((await must('GET', `/api/v1/leases/${keep.id}`)).status === 'active', 'cancel must not release');
    await page.locator(`tr[data-lease="${keep.id}"] button`).click();
    await page.locator('#confirm-text').filter({ hasText: 'deployer-1' }).waitFor();
    await page.locator('#confirm-ok').click();
    await page.locator(`tr[data-lease="${keep.id}"]`).waitFor({ state: 'detached' });
    expect((await must('GET', `/api/v1/leases/${keep.id}`)).status === 'released', 'confirmed release did not release');
    // The release served the waiter: its lease appears with the bound agent, and its queue is empty.
    const served = await waiting;
    expect(served.status === 201, `the waiter was not served: ${served.status} ${JSON.stringify(served.body)}`);
    const servedRow = page.locator(`tr[data-lease="${served.body.id}"]`);
    await servedRow.locator('td.agent').filter({ hasText: 'bot-3' }).waitFor();
    await servedRow.locator('td.waiters').filter({ hasText: 'nobody' }).waitFor();
    await must('DELETE', `/api/v1/leases/${served.body.id}`);
  });

  await run('tokens: revoke a subtree with a preview; its child then fails over REST', async () => {
    const root = await must('POST', '/api/v1/capability-tokens', { name: 'fleet-root', scopes: ['state:read', 'state:write'], max_depth: 2 });
    const child = await must('POST', '/api/v1/capability-tokens', { name: 'worker-child', scopes: ['state:read'], max_depth: 1, resources: ['jobs-*'] }, root.token);
    const grand = await must('POST', '/api/v1/capability-tokens', { name: 'tool-grandchild', scopes: ['state:read'], max_depth: 0, resources: ['jobs-build-*'] }, child.token);
    const other = await must('POST', '/api/v1/capability-tokens', { name: 'auditor', scopes: ['state:read'], agent_id: 'auditor-1' });
    const probe = t => rest('POST', '/api/v1/states/query', { limit: 1 }, t);
    expect((await probe(child.token)).status === 200, 'child token should work before the revoke');
    await page.getByRole('link', { name: 'Tokens and keys' }).click();
    await page.locator(`li[data-token="${root.id}"] li[data-token="${child.id}"] li[data-token="${grand.id}"]`).waitFor();
    await axe();
    await shot('tokens');
    await page.getByRole('button', { name: 'Revoke worker-child and its subtree' }).click();
    const preview = await page.locator('#preview').textContent();
    expect(preview.includes('worker-child') && preview.includes('tool-grandchild') && !preview.includes('fleet-root'),
      `preview should list the child and grandchild only: ${preview}`);
    await page.locator('#confirm-ok').click();
    await page.locator('#status').filter({ hasText: 'Revoked 2 token(s)' }).waitFor();
    await page.locator(`li[data-token="${child.id}"]`).waitFor({ state: 'detached' });
    expect((await probe(child.token)).status === 401, 'revoked child still works');
    expect((await probe(grand.token)).status === 401, 'grandchild of a revoked token still works');
    expect((await probe(root.token)).status === 200, 'the parent of the revoked subtree stopped working');
    expect((await probe(other.token)).status === 200, 'an unrelated token stopped working');
  });

  await run('claims: verify the log in the browser; a tampered export fails', async () => {
    const text = 'build 42 passed 1,204 tests';
    const claim = await must('POST', '/api/v1/claims', {
      subject_type: 'build', subject_id: 'build-42', statement: 'Build 42 is green',
      evidence: [{ kind: 'text_hash', source: 'ci-report', data: text, hash: createHash('sha256').update(text).digest('hex') },
        { kind: 'json_value', source: 'ci-summary', data: { failed: 0 }, json_path: '$.failed', expected_value: 0 }],
    });
    await must('POST', `/api/v1/claims/${claim.id}/verify`);
    await must('POST', '/api/v1/claims', { subject_type: 'deploy', subject_id: 'deploy-7', statement: 'Staging runs 7 <b>&</b>',
      evidence: [{ kind: 'text_hash', source: 'notes', data: 'x', hash: createHash('sha256').update('x').digest('hex') }] });
    await page.getByRole('link', { name: 'Claims' }).click();
    await page.locator(`tr[data-claim="${claim.id}"]`).waitFor();
    await page.getByRole('button', { name: 'Build 42 is green' }).click();
    await page.locator('#runs li li').filter({ hasText: 'ci-summary' }).waitFor();
    await page.getByRole('button', { name: 'Verify the exported log in the browser' }).click();
    await page.locator('#verify-result.ok').filter({ hasText: '3 entries' }).waitFor();
    await axe();
    await shot('claims');
    const exp = await must('GET', '/api/v1/claims/log/export');
    const tampered = structuredClone(exp);
    tampered.entries[1].at += 1; // a changed entry
    await page.locator('summary').click();
    await page.getByLabel('Export JSON').fill(JSON.stringify(tampered));
    await page.getByRole('button', { name: 'Verify pasted export' }).click();
    await page.locator('#verify-result.bad').filter({ hasText: 'entry 2: entry_hash does not match' }).waitFor();
    const dropped = structuredClone(exp);
    dropped.entries.pop(); // a removed entry
    await page.getByLabel('Export JSON').fill(JSON.stringify(dropped));
    await page.getByRole('button', { name: 'Verify pasted export' }).click();
    await page.locator('#verify-result.bad').filter({ hasText: 'checkpoint says 3' }).waitFor();
    const forged = structuredClone(exp);
    forged.checkpoint.at += 1; // a checkpoint the key did not sign
    await page.getByLabel('Export JSON').fill(JSON.stringify(forged));
    await page.getByRole('button', { name: 'Verify pasted export' }).click();
    await page.locator('#verify-result.bad').filter({ hasText: 'signature does not verify' }).waitFor();
    await page.getByLabel('Export JSON').fill(JSON.stringify(exp)); // and the untouched export passes
    await page.getByRole('button', { name: 'Verify pasted export' }).click();
    await page.locator('#verify-result.ok').waitFor();
  });

  await run('conversations: search with highlights, messages and trace tree', async () => {
    await must('POST', '/api/v1/conversations', { title: 'Canary review', messages: [
      { role: 'user', content: 'Is the canary deployment of build 42 healthy?' },
      { role: 'assistant', content: 'Yes: the canary has served 2% of traffic for an hour with no errors.' }] });
    const trace = await must('POST', '/api/v1/conversations/traces/ingest', { trace: { title: 'Deploy agent run' }, observations: [
      { observation_type: 'agent', content: 'deploy build 42 to the canary' },
      { observation_type: 'tool', content: 'kubectl rollout status', parent_message_id: '$1' },
      { observation_type: 'generation', content: 'summarise the rollout', parent_message_id: '$1' }] });
    await page.getByRole('link', { name: 'Conversations' }).click();
    // The page lists the conversations once its script runs; an Enter before that submits the
    // form natively (a reload, no search): seen once in CI.
    await page.locator('#hits li').first().waitFor();
    await page.getByLabel('Words').fill('canary');
    await page.getByLabel('Words').press('Enter');
    await page.locator('#hits mark').first().waitFor();
    expect((await page.locator('#hits mark').first().textContent()).toLowerCase() === 'canary', 'the word is not highlighted');
    await page.getByRole('button', { name: 'Deploy agent run' }).click();
    await page.locator('#trace .tree li').filter({ hasText: 'kubectl rollout status' }).waitFor();
    expect(trace.conversation.id, 'trace ingest returned no conversation');
    await axe();
    await shot('conversations');
  });

  await run('overview: counts, watchers connected, requests per credential and rate-limit use', async () => {
    // A watcher of our own (not the console's), open while the overview reads the count.
    const stop = new AbortController();
    const stream = await fetch(BASE + '/api/v1/states/watch', { headers: { Authorization: `Bearer ${KEY}` }, signal: stop.signal });
    let tiles;
    try {
      expect(stream.status === 200, `watch: ${stream.status}`);
      await page.getByRole('link', { name: 'Overview' }).click();
      await page.locator('#counts dd').first().waitFor();
      tiles = await page.locator('#counts').textContent();
    } finally { stop.abort(); } // a failed run must not hang on the open stream
    expect(/States\s*2/.test(tiles) && /Claims\s*2/.test(tiles), `counts wrong: ${tiles}`);
    expect(/Watchers connected\s*[1-9]/.test(tiles), `watchers connected not counted: ${tiles}`);
    // The key signed in has made every request of this run: its row is the busiest.
    await page.locator('#usage tbody tr').first().waitFor();
    // (This minute and the last: the run may straddle a window's end.)
    const first = page.locator('#usage tbody tr').first();
    const busiest = +(await first.locator('td.requests').textContent()) + +(await first.locator('td.previous').textContent());
    expect(busiest > 10, `requests per credential: busiest row counts ${busiest}`);
    await page.locator('#usage tr', { hasText: 'queue-bot' }).filter({ hasText: 'bot-3' }).waitFor();
    await page.locator('#rate').filter({ hasText: /\d+ of 6000 requests used/ }).waitFor();
    await page.locator('#live.on').waitFor();
    await must('PUT', '/api/v1/states/jobs-build-43', { agent_id: 'planner', data: { step: 1 } });
    await page.locator('#activity li').filter({ hasText: 'jobs-build-43' }).waitFor();
    await axe();
    await shot('overview');
  });

  await run('sign out forgets the key', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL('**/console/signin');
    expect(await page.evaluate(() => sessionStorage.getItem('agentstate.console.key')) === null, 'key kept after sign-out');
  });

  step = 'no CSP violations or script errors';
  expect(problems.length === 0, problems.join('\n'));
  console.log('ok   ' + step);
} catch (e) {
  console.error(`FAIL ${step}: ${e.message}`);
  if (problems.length) console.error('browser errors:\n  ' + problems.join('\n  '));
  process.exitCode = 1;
} finally {
  await ctx.close();
  rmSync(profile, { recursive: true, force: true });
}
