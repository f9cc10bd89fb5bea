package tools

import (
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/stretchr/testify/assert"

	"github.com/agentstate/agentstate-go/core"
)

// ToolListBudget is the most tools/list may cost a full-access key, in bytes (tokens ≈ bytes/4).
const ToolListBudget = 6000 * 4

// listBytes is the size of the tools/list result a principal sees.
func listBytes(t *testing.T, p core.Principal) (int, int) {
	res := mcp.ListToolsResult{}
	for _, tool := range Inventory() {
		if tool.callableBy(p) {
			res.Tools = append(res.Tools, tool.Definition())
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return len(b), len(res.Tools)
}

// TestToolListBudget: every operation, for a full-access key, fits the token budget. (The
// contract suite measures the same over HTTP.)
func TestToolListBudget(t *testing.T) {
	full, n := listBytes(t, core.Principal{Kind: core.KindAPIKey, Scopes: []string{"*"}})
	st, m := listBytes(t, core.Principal{Kind: core.KindCapabilityToken, Scopes: []string{core.ScopeStateRead, core.ScopeStateWrite}})
	t.Logf("tools/list: full access %d tools, %d bytes ≈ %d tokens; state-only token %d tools, %d bytes ≈ %d tokens", n, full, full/4, m, st, st/4)
	assert.Equal(t, len(Inventory()), n)
	assert.Less(t, full, ToolListBudget, "tools/list for a full-access key is over 6,000 tokens")
}
