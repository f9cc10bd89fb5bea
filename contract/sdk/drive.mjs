// Drives every AgentState MCP tool through the official MCP TypeScript SDK client, over one
// transport, and subscribes to a resource. Run by contract/sdk_test.go:
//
//   TRANSPORT=stdio|http|sse  KEY=as_live_…  PLAN=plan.json  (URL=http://… | CMD=/path/mcp-server)
//
// The SDK validates structured content against each tool's outputSchema and throws when it
// does not match: any throw here is a result a real client would reject. Exits 1 on failure.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { ResourceUpdatedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const { TRANSPORT, KEY, PLAN, URL: BASE, CMD } = process.env;
const plan = JSON.parse(readFileSync(PLAN, "utf8"));
const auth = { Authorization: `Bearer ${KEY}` };
const failures = [];
const fail = (msg) => failures.push(msg);

function transport() {
  switch (TRANSPORT) {
    case "stdio":
      return new StdioClientTransport({ command: CMD, env: { ...process.env, AGENTSTATE_API_KEY: KEY }, stderr: "ignore" });
    case "http":
      return new StreamableHTTPClientTransport(new URL(`${BASE}/api/mcp`), { requestInit: { headers: auth } });
    case "sse":
      return new SSEClientTransport(new URL(`${BASE}/api/mcp/sse`), {
        requestInit: { headers: auth },
        eventSourceInit: { fetch: (url, init) => fetch(url, { ...init, headers: { ...(init?.headers ?? {}), ...auth } }) },
      });
  }
  throw new Error(`unknown TRANSPORT ${TRANSPORT}`);
}

// resolve replaces "$ref:<tool>.<field>" with that field of an earlier tool's result.
function resolve(v, results) {
  if (typeof v === "string" && v.startsWith("$ref:")) {
    const [tool, field] = v.slice(5).split(".");
    return results[tool]?.[field];
  }
  if (Array.isArray(v)) return v.map((x) => resolve(x, results));
  if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x, results)]));
  return v;
}

const client = new Client({ name: "agentstate-contract", version: "1.0.0" });
let updated;
const gotUpdate = new Promise((r) => (updated = r));
client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => updated(n.params.uri));

const timeout = (ms, what) => new Promise((_, rej) => setTimeout(() => rej(new Error(`timeout: ${what}`)), ms));

// sessionIds: the session id initialize issued keeps working; one the server never issued gets
// HTTP 404 (the SDK reconnecting with a stored id skips initialize, as after a restart).
async function sessionIds() {
  if (!client.transport.sessionId?.startsWith("mcp-session-")) fail(`no Mcp-Session-Id from initialize: ${client.transport.sessionId}`);
  await client.listTools(); // on the issued session
  const stale = new Client({ name: "agentstate-contract-stale", version: "1.0.0" });
  try {
    await stale.connect(new StreamableHTTPClientTransport(new URL(`${BASE}/api/mcp`), { requestInit: { headers: auth }, sessionId: "mcp-session-never-issued" }));
    await stale.listTools();
    fail("a request on a session id the server never issued succeeded");
  } catch (e) {
    if (e.code !== 404) fail(`unknown session id: want HTTP 404, got ${e.code}: ${e.message}`);
  } finally {
    await stale.close().catch(() => {});
  }
}

try {
  await client.connect(transport());
  const { tools } = await client.listTools();
  const names = new Set(tools.map((t) => t.name));
  for (const step of plan) if (!names.has(step.tool)) fail(`${step.tool} is not in tools/list`);

  const results = {};
  for (const step of plan) {
    try {
      const ok = await client.callTool({ name: step.tool, arguments: resolve(step.ok, results) });
      if (ok.isError) fail(`${step.tool}: success path failed: ${ok.content?.[0]?.text}`);
      else results[step.tool] = JSON.parse(ok.content[0].text);
    } catch (e) {
      fail(`${step.tool}: the client rejected the success result: ${e.message}`);
    }
    try {
      const bad = await client.callTool({ name: step.tool, arguments: resolve(step.bad, results) });
      if (!bad.isError) fail(`${step.tool}: error path succeeded`);
      const err = JSON.parse(bad.content[0].text.split("\n")[1] ?? "{}");
      if (err.code !== step.code) fail(`${step.tool}: error code ${err.code}, want ${step.code}`);
    } catch (e) {
      fail(`${step.tool}: the client rejected the error result: ${e.message}`);
    }
  }

  // A resource subscription: a write to the subscribed state arrives as resources/updated.
  const uri = "agentstate://states/sdk-sub";
  await client.callTool({ name: "upsert_state", arguments: { state_key: "sdk-sub", data: { n: 1 } } });
  await client.subscribeResource({ uri });
  await client.subscribeResource({ uri }); // subscribing twice is safe
  const read = await client.readResource({ uri });
  if (!read.contents?.[0]?.text?.includes('"n":1')) fail(`resources/read: ${JSON.stringify(read)}`);
  await client.callTool({ name: "upsert_state", arguments: { state_key: "sdk-sub", data: { n: 2 } } });
  const got = await Promise.race([gotUpdate, timeout(10000, "notifications/resources/updated")]);
  if (got !== uri) fail(`resources/updated for ${got}, want ${uri}`);
  // A missing resource is the spec's resource-not-found: -32002 with data.uri.
  for (const missing of ["agentstate://states/sdk-missing", "agentstate://leases/sdk-missing"]) {
    try {
      await client.readResource({ uri: missing });
      fail(`reading ${missing} succeeded`);
    } catch (e) {
      if (/core\.|States\.Get|Leases\./.test(e.message)) fail(`missing resource error names internal ops: ${e.message}`);
      if (e.code !== -32002 || e.data?.uri !== missing) fail(`missing resource ${missing}: want -32002 with data.uri, got ${e.code} ${JSON.stringify(e.data)}: ${e.message}`);
    }
  }
  if (TRANSPORT === "http") await sessionIds();
  console.log(JSON.stringify({ transport: TRANSPORT, tools: tools.length, steps: plan.length, failures }));
} catch (e) {
  fail(`${TRANSPORT}: ${e.stack ?? e}`);
  console.log(JSON.stringify({ transport: TRANSPORT, failures }));
} finally {
  await client.close().catch(() => {});
}
process.exit(failures.length ? 1 : 0);
