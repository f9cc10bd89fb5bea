package tools

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestRewriteNotFound: the resource-not-found error becomes -32002 with data.uri in each framing
// a transport writes, and nothing else changes by a byte.
func TestRewriteNotFound(t *testing.T) {
	in := `{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"Resource not found: agentstate://states/a%2Fb"}}`
	out := `{"jsonrpc":"2.0","id":3,"error":{"code":-32002,"message":"Resource not found","data":{"uri":"agentstate://states/a%2Fb"}}}`
	for name, c := range map[string][2]string{
		"stdio line":   {in + "\n", out + "\n"},
		"sse frame":    {"event: message\ndata: " + in + "\n\n", "event: message\ndata: " + out + "\n\n"},
		"sse no space": {"event: message\ndata:" + in + "\r\n\r\n", "event: message\ndata: " + out + "\r\n\r\n"},
		"json body":    {in + "\n", out + "\n"},
	} {
		assert.Equal(t, c[1], string(rewriteNotFound([]byte(c[0]))), name)
	}
	for name, keep := range map[string]string{
		"other error":      `{"jsonrpc":"2.0","id":3,"error":{"code":-32603,"message":"FORBIDDEN: no (agentstate://states/x)"}}` + "\n",
		"other code":       `{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Resource not found: x"}}` + "\n",
		"a result with it": `{"jsonrpc":"2.0","id":3,"result":{"content":[{"type":"text","text":"Resource not found: x"}]}}` + "\n",
		"not json":         "event: message\ndata: Resource not found: x\n\n",
	} {
		b := []byte(keep)
		assert.True(t, bytes.Equal(b, rewriteNotFound(b)), name)
	}
}
