package contract

import (
	"fmt"
	"testing"

	"github.com/agentstate/agentstate-go/internal/testenv"
)

// TestResultSizes logs the bytes of a get_state result and a query_states page over MCP (the
// numbers in the closing note); it asserts nothing about size.
func TestResultSizes(t *testing.T) {
	e := testenv.Stores[1].Open(t)
	s := testenv.NewServer(t, e)
	f := newMCP(s, s.Project.Key).(*mcpFace)
	for i := 0; i < 3; i++ {
		f.Call(t, "upsert_state", map[string]any{"state_key": fmt.Sprintf("job/%d", i), "agent_id": "w1",
			"data": map[string]any{"status": "running", "step": i}, "tags": []string{"batch"}})
	}
	get := f.rpc(t, "tools/call", map[string]any{"name": "get_state", "arguments": map[string]any{"state_key": "job/1"}})
	page := f.rpc(t, "tools/call", map[string]any{"name": "query_states", "arguments": map[string]any{"tags": []string{"batch"}}})
	t.Logf("get_state result %d bytes; query_states page (3 states) %d bytes", len(get), len(page))
}
