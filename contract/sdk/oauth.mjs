// Connects the official MCP TypeScript SDK client to AgentState's /api/mcp by OAuth, as a host
// that is given only the server's URL does: 401 → protected-resource metadata → authorization
// server metadata → dynamic registration → authorization request with PKCE → (scripted
// browser: open the consent page, fill in the API key, approve, follow the redirect) → code
// exchange → tool calls with the access token → a refresh with rotation when the access token
// stops working. Then the client-credentials grant through the SDK's ClientCredentialsProvider,
// and its reaction to a scope step-up challenge (403 insufficient_scope).
// Run by contract/oauth_sdk_test.go:
//
//   URL=http://…  KEY=as_live_… (consents)  CC_ID=… CC_SECRET=… (a client_credentials client)
//
// Prints one line per phase with its duration; exits 1 on the first failure.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { ClientCredentialsProvider } from "@modelcontextprotocol/sdk/client/auth-extensions.js";
import { randomBytes } from "node:crypto";

const { URL: BASE, KEY, CC_ID, CC_SECRET } = process.env;
const mcpURL = new URL(`${BASE}/api/mcp`);
const redirectUrl = "http://127.0.0.1:49152/oauth/callback";
function expect(cond, msg) { if (!cond) throw new Error(msg); }
let phase = "start";
const timed = async (name, fn) => { phase = name; const t0 = performance.now(); const r = await fn(); console.log(`ok   ${name} (${(performance.now() - t0).toFixed(1)} ms)`); return r; };

// The OAuthClientProvider a host implements: it keeps what the SDK hands it.
class HostProvider {
  constructor() { this.saved = {}; this.authorizationUrl = undefined; this.savedState = undefined; this.refreshes = 0; }
  get redirectUrl() { return redirectUrl; }
  get clientMetadata() {
    return { client_name: "SDK contract host", redirect_uris: [redirectUrl], grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"], token_endpoint_auth_method: "none" };
  }
  state() { this.savedState = randomBytes(16).toString("hex"); return this.savedState; }
  clientInformation() { return this.saved.client; }
  saveClientInformation(c) { this.saved.client = c; }
  tokens() { return this.saved.tokens; }
  saveTokens(t) { if (this.saved.tokens) this.refreshes++; this.saved.tokens = t; }
  redirectToAuthorization(url) { this.authorizationUrl = url; }
  saveCodeVerifier(v) { this.saved.verifier = v; }
  codeVerifier() { return this.saved.verifier; }
  discoveryState() { return this.saved.discovery; }
  saveDiscoveryState(d) { this.saved.discovery = d; }
}

// The scripted browser: what a person does on the consent page, over plain HTTP with the
// page's cookie: read the form, enter the API key, keep the scopes the page ticks, approve.
async function consent(authorizationUrl) {
  const page = await fetch(authorizationUrl, { redirect: "manual" });
  const html = await page.text();
  expect(page.status === 200, `consent page: ${page.status} ${html}`);
  const cookie = page.headers.get("set-cookie").split(";")[0];
  const form = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) form.set(m[1], decode(m[2]));
  for (const m of html.matchAll(/<input type="checkbox" name="grant_scope" value="([^"]+)" checked>/g)) form.append("grant_scope", m[1]);
  form.set("api_key", KEY); form.set("expires", "30d"); form.set("max_depth", "0"); form.set("action", "approve");
  const action = new URL(html.match(/<form method="post" action="([^"]+)"/)[1], BASE);
  const res = await fetch(action, { method: "POST", redirect: "manual", body: form,
    headers: { Cookie: cookie, "Content-Type": "application/x-www-form-urlencoded" } });
  const answer = await res.text();
  expect(res.status === 303, `decision: ${res.status} ${answer}`);
  return new URL(res.headers.get("location"));
}
const decode = (s) => s.replace(/&#43;/g, "+").replace(/&amp;/g, "&").replace(/&#34;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">");

const call = async (client, name, args) => {
  const r = await client.callTool({ name, arguments: args });
  expect(!r.isError, `${name}: ${JSON.stringify(r.content)}`);
  return JSON.parse(r.content[0].text);
};

try {
  const provider = new HostProvider();
  await timed("401 → discovery → registration → authorization URL", async () => {
    const client = new Client({ name: "oauth-contract", version: "1.0.0" });
    let err;
    try { await client.connect(new StreamableHTTPClientTransport(mcpURL, { authProvider: provider })); } catch (e) { err = e; }
    expect(err instanceof UnauthorizedError, `connect without a token: want UnauthorizedError, got ${err}`);
    expect(provider.saved.client?.client_id?.startsWith("mcp_"), `registered client: ${JSON.stringify(provider.saved.client)}`);
    const u = provider.authorizationUrl;
    expect(u && u.searchParams.get("code_challenge_method") === "S256", `authorization URL: ${u}`);
    expect(u.searchParams.get("resource") === mcpURL.href, `resource indicator: ${u.searchParams.get("resource")}`);
  });
  const callback = await timed("consent page (scripted browser)", () => consent(provider.authorizationUrl));
  expect(callback.searchParams.get("state") === provider.savedState, "state round trip");
  expect(callback.searchParams.get("iss") === BASE, `RFC 9207 iss: ${callback.searchParams.get("iss")}`);
  const transport = new StreamableHTTPClientTransport(mcpURL, { authProvider: provider });
  await timed("code exchange (PKCE)", () => transport.finishAuth(callback.searchParams.get("code")));
  const first = provider.saved.tokens;
  expect(first.access_token.startsWith("as_cap_") && first.refresh_token && first.expires_in === 3600, `tokens: ${JSON.stringify(first)}`);

  const client = new Client({ name: "oauth-contract", version: "1.0.0" });
  await timed("connect with the access token and call tools", async () => {
    await client.connect(transport);
    const me = await call(client, "whoami", {});
    expect(me.credential_kind === "capability_token", `whoami: ${JSON.stringify(me)}`);
    await call(client, "upsert_state", { state_key: "oauth/sdk", data: { via: "oauth" } });
    const st = await call(client, "get_state", { state_key: "oauth/sdk" });
    expect(st.data?.via === "oauth", `get_state: ${JSON.stringify(st)}`);
  });

  await timed("refresh with rotation when the access token stops working", async () => {
    // As if the hour had passed: the SDK gets a 401, refreshes, retries.
    provider.saved.tokens = { ...provider.saved.tokens, access_token: "as_cap_" + "x".repeat(40) };
    provider.refreshes = 0;
    const again = new Client({ name: "oauth-contract", version: "1.0.0" });
    await again.connect(new StreamableHTTPClientTransport(mcpURL, { authProvider: provider }));
    await call(again, "get_state", { state_key: "oauth/sdk" });
    expect(provider.refreshes === 1, `refreshes: ${provider.refreshes}`);
    expect(provider.saved.tokens.refresh_token !== first.refresh_token, "the refresh token rotated");
    await again.close();
  });
  await client.close();

  if (CC_ID) {
    await timed("client credentials (headless agent)", async () => {
      const cc = new ClientCredentialsProvider({ clientId: CC_ID, clientSecret: CC_SECRET, scope: "state:read", expectedIssuer: BASE });
      const agent = new Client({ name: "oauth-contract-agent", version: "1.0.0" });
      await agent.connect(new StreamableHTTPClientTransport(mcpURL, { authProvider: cc }));
      const st = await call(agent, "get_state", { state_key: "oauth/sdk" });
      expect(st.data?.via === "oauth", `get_state: ${JSON.stringify(st)}`);
      // Scope step-up: the state:read token's write gets 403 insufficient_scope naming
      // state:read state:write, and the SDK re-authorizes. SDK 1.32.2's client-credentials
      // path requests clientMetadata.scope again instead of the challenged scope, so it ends in
      // its own "403 after trying upscoping" (the interactive path uses the challenged scope).
      const r = await agent.callTool({ name: "upsert_state", arguments: { state_key: "oauth/agent", data: 1 } }).catch((e) => e);
      expect(r instanceof Error && /403 after trying upscoping/.test(String(r)), `step-up challenge: ${r}`);
      await agent.close();
    });
  }
  console.log("PASS");
} catch (e) {
  console.error(`FAIL in ${phase}: ${e?.stack ?? e}`);
  process.exit(1);
}
