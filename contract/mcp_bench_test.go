package contract

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentstate/agentstate-go/internal/testenv"
)

// BenchmarkMCPvsREST writes the same state over REST (PUT) and over MCP (tools/call of
// upsert_state on /api/mcp with mcp-go's client, one initialised session) against one server
// on real Redis, one call at a time, so the two ns/op compare directly (target: MCP within
// 1.5× of REST).
//
//	go test ./contract -run '^$' -bench MCPvsREST -benchtime 3s
func BenchmarkMCPvsREST(b *testing.B) {
	s := testenv.NewServer(b, testenv.Stores[0].Open(b))
	data := map[string]any{"pad": strings.Repeat("x", 180)}
	b.Run("rest-put", func(b *testing.B) {
		i := 0
		for b.Loop() {
			resp, _, err := trySend("PUT", s.URL+"/api/v1/states/k"+strconv.Itoa(i%100), s.Project.Key, map[string]any{"agent_id": "bench", "data": data}, nil)
			if err != nil || resp.StatusCode != 200 {
				b.Fatal(err, resp)
			}
			i++
		}
	})
	// Two eras: 2026-07-28 (every request carries its version in _meta and the Mcp-Method /
	// Mcp-Name headers mcp-go checks) and 2025-11-25 (initialize handshake), which the hosts in
	// use today send.
	for _, era := range []struct{ name, version string }{{"mcp-upsert", mcp.LATEST_PROTOCOL_VERSION}, {"mcp-upsert-legacy", mcp.LATEST_LEGACY_PROTOCOL_VERSION}} {
		b.Run(era.name, func(b *testing.B) {
			ctx := context.Background()
			c, err := client.NewStreamableHttpClient(s.URL+"/api/mcp", transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + s.Project.Key}))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if err := c.Start(ctx); err != nil {
				b.Fatal(err)
			}
			var init mcp.InitializeRequest
			init.Params.ProtocolVersion = era.version
			init.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
			if _, err := c.Initialize(ctx, init); err != nil {
				b.Fatal(err)
			}
			i := 0
			for b.Loop() {
				var req mcp.CallToolRequest
				req.Params.Name = "upsert_state"
				req.Params.Arguments = map[string]any{"state_key": "k" + strconv.Itoa(i%100), "agent_id": "bench", "data": data}
				res, err := c.CallTool(ctx, req)
				if err != nil || res.IsError {
					b.Fatal(err, res)
				}
				i++
			}
		})
	}
}
