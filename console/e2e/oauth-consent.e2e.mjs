// The OAuth consent page (/api/oauth/authorize) in headless Chromium, run by
// oauth/consent_browser_test.go against a real in-process http-server. Env: BASE (server URL),
// KEY (a full-access API key of a fresh project), CHROMIUM (browser binary), SHOT (optional
// path for a screenshot of the page).
// A client registers, the page is opened as a host would open it, a person signs in with a
// wrong key (refused on the page), then the right one, narrows the scopes and approves; the
// browser follows the redirect to the client's loopback callback, whose code is exchanged.
// Also: Deny, the page's accessibility (axe), no CSP violation or script error, and that
// another site cannot frame it. Exits non-zero on the first failed step.
import { chromium } from 'playwright-core';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const { BASE, KEY, SHOT } = process.env;
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const T = 15000;
function expect(cond, msg) { if (!cond) throw new Error(msg); }

// The client's loopback redirect target, and a page of another origin that tries to frame the
// consent page.
const callback = createServer((req, res) => {
  if (req.url.startsWith('/frame')) {
    res.setHeader('Content-Type', 'text/html');
    res.end(`<!doctype html><title>framer</title><iframe id="f" src="${decodeURIComponent(req.url.slice('/frame?u='.length))}"></iframe>`);
    return;
  }
  res.setHeader('Content-Type', 'text/html');
  res.end('<!doctype html><title>callback</title><p>done</p>');
});
await new Promise((r) => callback.listen(0, '127.0.0.1', r));
const cbBase = `http://127.0.0.1:${callback.address().port}`;
const redirectUri = `${cbBase}/callback`;

const reg = await (await fetch(`${BASE}/api/oauth/register`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
  body: JSON.stringify({ client_name: 'Browser host', redirect_uris: [redirectUri], token_endpoint_auth_method: 'none' }) })).json();
expect(reg.client_id, `registration: ${JSON.stringify(reg)}`);

function authorizeURL(state) {
  const verifier = randomBytes(48).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const q = new URLSearchParams({ response_type: 'code', client_id: reg.client_id, redirect_uri: redirectUri, state,
    code_challenge: challenge, code_challenge_method: 'S256', scope: 'state:read state:write lease:write' });
  return { url: `${BASE}/api/oauth/authorize?${q}`, verifier };
}

const profile = mkdtempSync(join(tmpdir(), 'oauth-e2e-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
  viewport: { width: 1000, height: 900 }, colorScheme: 'light',
});
const problems = [];
let step = 'launch';
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(T);
  // The wrong key's 401 page and the framing attempt are the expected failures.
  const expected = (m) => /status of 401|Refused to display|frame-ancestors/.test(m.text());
  page.on('console', (m) => { if (m.type() === 'error' && !expected(m)) problems.push(`${page.url()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`${page.url()}: ${e.message}`));
  const run = async (name, fn) => { step = name; const t0 = Date.now(); await fn(); console.log(`ok   ${name} (${Date.now() - t0} ms)`); };

  const { url, verifier } = authorizeURL('browser-state');
  await run('consent page', async () => {
    const resp = await page.goto(url);
    expect(resp.status() === 200, `status ${resp.status()}`);
    const h = resp.headers();
    expect(h['x-frame-options'] === 'DENY', `X-Frame-Options: ${h['x-frame-options']}`);
    expect(/frame-ancestors 'none'/.test(h['content-security-policy']), `CSP: ${h['content-security-policy']}`);
    await page.getByRole('heading', { name: 'Authorize Browser host' }).waitFor();
    for (const s of ['state:read', 'state:write', 'lease:write']) expect(await page.getByLabel(s).isChecked(), `${s} is offered, ticked`);
    if (SHOT) await page.screenshot({ path: SHOT });
  });
  await run('accessibility (axe)', async () => {
    await page.evaluate(axeSource);
    const r = await page.evaluate(() => window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'best-practice'] }));
    const v = r.violations.map((x) => `${x.id}: ${x.help} (${x.nodes.map((n) => n.target.join(' ')).join(', ')})`);
    expect(v.length === 0, `axe:\n  ${v.join('\n  ')}`);
  });
  await run('a wrong key is refused on the page', async () => {
    await page.getByLabel('API key of the project').fill('as_live_' + 'A'.repeat(40));
    await page.getByRole('button', { name: 'Approve' }).click();
    const err = page.locator('#consent-error');
    await err.waitFor();
    expect(/not a valid API key/.test(await err.textContent()), await err.textContent());
    expect(page.url().startsWith(BASE), `stayed on the server: ${page.url()}`);
  });
  let code;
  await run('approve with the key, narrowed to two scopes', async () => {
    await page.getByLabel('API key of the project').fill(KEY);
    await page.getByLabel('lease:write').uncheck();
    await page.getByLabel('Access ends').selectOption('7d');
    await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.getByRole('button', { name: 'Approve' }).click()]);
    const back = new URL(page.url());
    expect(back.searchParams.get('state') === 'browser-state', `state: ${back}`);
    expect(back.searchParams.get('iss') === BASE, `iss: ${back}`);
    code = back.searchParams.get('code');
    expect(code, `code: ${back}`);
  });
  await run('the code buys a token with exactly the approved scopes', async () => {
    const r = await fetch(`${BASE}/api/oauth/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier, client_id: reg.client_id }) });
    const t = await r.json();
    expect(r.status === 200 && t.scope === 'state:read state:write', `token: ${r.status} ${JSON.stringify(t)}`);
  });
  await run('deny sends access_denied back', async () => {
    await page.goto(authorizeURL('deny-state').url);
    await Promise.all([page.waitForURL((u) => u.href.startsWith(redirectUri)), page.getByRole('button', { name: 'Deny' }).click()]);
    const back = new URL(page.url());
    expect(back.searchParams.get('error') === 'access_denied' && back.searchParams.get('state') === 'deny-state' && !back.searchParams.get('code'), `${back}`);
  });
  await run('another site cannot frame the page', async () => {
    await page.goto(`${cbBase}/frame?u=${encodeURIComponent(authorizeURL('framed').url)}`);
    await page.waitForTimeout(500);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    const content = frame ? await frame.content().catch(() => '') : '';
    expect(!/Authorize Browser host/.test(content), 'the consent page rendered inside a cross-origin frame');
  });
  expect(problems.length === 0, `console errors or CSP violations:\n  ${problems.join('\n  ')}`);
  console.log('PASS');
} catch (e) {
  console.error(`FAIL at ${step}: ${e?.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await ctx.close();
  callback.close();
  rmSync(profile, { recursive: true, force: true });
}
