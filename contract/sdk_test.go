package contract

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/tools"
)

// sdkDir holds the official MCP TypeScript SDK client, pinned by package-lock.json; .ci/run
// installs it with npm ci.
const sdkDir = "sdk"

// requireSDK skips without node_modules, unless AGENTSTATE_TEST_REQUIRE_NODE=1 (CI), where
// that is a failure.
func requireSDK(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if _, statErr := os.Stat(filepath.Join(sdkDir, "node_modules", "@modelcontextprotocol", "sdk")); err != nil || statErr != nil {
		if os.Getenv("AGENTSTATE_TEST_REQUIRE_NODE") == "1" {
			t.Fatalf("the MCP TypeScript SDK is required: run npm ci in contract/sdk (node: %v, sdk: %v)", err, statErr)
		}
		t.Skip("MCP TypeScript SDK not installed: run (cd contract/sdk && npm ci) to drive the tools through it")
	}
	return node
}

// sdkPlan is everyToolSteps as data: a later step's use of an earlier result becomes
// "$ref:<tool>.id", which drive.mjs resolves.
func sdkPlan(t *testing.T) string {
	refs := map[string]map[string]any{}
	for _, tl := range tools.Inventory() {
		refs[tl.Name] = map[string]any{"id": "$ref:" + tl.Name + ".id"}
	}
	var plan []map[string]any
	for _, st := range everyToolSteps {
		plan = append(plan, map[string]any{"tool": st.tool, "ok": st.ok(refs), "bad": st.bad(refs), "code": st.code})
	}
	b, err := json.Marshal(plan)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "plan.json")
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

func buildMCPServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcp-server")
	out, err := exec.Command("go", "build", "-o", bin, "../cmd/mcp-server").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// TestOfficialSDKClient drives every tool (success and error path) and a resource
// subscription through the official MCP TypeScript SDK client over stdio, streamable HTTP and
// SSE, on both stores. The SDK rejects results that do not match a tool's outputSchema.
func TestOfficialSDKClient(t *testing.T) {
	node := requireSDK(t)
	plan := sdkPlan(t)
	bin := buildMCPServer(t)
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		drive := func(t *testing.T, transport string, env ...string) {
			cmd := exec.Command(node, "drive.mjs")
			cmd.Dir = sdkDir
			cmd.Env = append(os.Environ(), append(env, "TRANSPORT="+transport, "PLAN="+plan)...)
			timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
			defer timer.Stop()
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("official SDK client over %s: %v\n%s", transport, err, out)
			}
			t.Logf("%s", out)
		}
		for _, transport := range []string{"http", "sse"} {
			t.Run(transport, func(t *testing.T) {
				s := testenv.NewServer(t, e)
				drive(t, transport, "URL="+s.URL, "KEY="+s.Project.Key)
			})
		}
		t.Run("stdio", func(t *testing.T) {
			if e.Mini != nil { // the binary's own embedded store, bootstrapped with this key
				drive(t, "stdio", "CMD="+bin, "KEY="+core.NewAPIKeySecret(), "AGENTSTATE_REDIS_URL=")
				return
			}
			p := testenv.NewProject(t, e.App(t))
			if e.Name == "cluster" {
				drive(t, "stdio", "CMD="+bin, "KEY="+p.Key, "AGENTSTATE_REDIS_URL="+testenv.ClusterURL(), "AGENTSTATE_REDIS_CLUSTER=true")
			} else {
				drive(t, "stdio", "CMD="+bin, "KEY="+p.Key, "AGENTSTATE_REDIS_URL="+testenv.RedisURL())
			}
		})
	})
}
