package contract

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/internal/testenv"
)

// TestOAuthWithOfficialSDK connects the official MCP TypeScript SDK client to /api/mcp by
// OAuth alone (sdk/oauth.mjs): discovery from the 401, dynamic registration, PKCE, the consent
// page filled in by a scripted browser, the code exchange, tool calls, a refresh with rotation,
// then a client-credentials agent with a scope step-up. It prints each phase's duration.
func TestOAuthWithOfficialSDK(t *testing.T) {
	node := requireSDK(t)
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		// The headless agent's client, bound to the project's key at registration.
		b, _ := json.Marshal(map[string]any{"client_name": "sdk agent", "grant_types": []string{"client_credentials"},
			"token_endpoint_auth_method": "client_secret_basic", "scope": "state:read state:write"})
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/oauth/register", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+s.Project.Key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		var cc struct {
			ID     string `json:"client_id"`
			Secret string `json:"client_secret"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&cc))
		resp.Body.Close()
		require.Equal(t, http.StatusCreated, resp.StatusCode)

		cmd := exec.Command(node, "oauth.mjs")
		cmd.Dir = sdkDir
		cmd.Env = append(os.Environ(), "URL="+s.URL, "KEY="+s.Project.Key, "CC_ID="+cc.ID, "CC_SECRET="+cc.Secret)
		timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() })
		defer timer.Stop()
		out, err := cmd.CombinedOutput()
		t.Logf("%s", out)
		require.NoError(t, err, "the official SDK client's OAuth flow failed")
	})
}
