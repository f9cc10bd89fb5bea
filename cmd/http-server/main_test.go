package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testKey = "as_live_0123456789abcdefghijABCDEFGHIJ0123456789"

// TestShutdownEndsStreamsCleanly: on SIGTERM (here: the run context ending) an open watch gets a
// final retryable error frame and then its end, a long-poll answers with the current state, and
// the server reports a complete stop instead of being cut off at the deadline.
func TestShutdownEndsStreamsCleanly(t *testing.T) {
	ctx, sigterm := context.WithCancel(t.Context())
	defer sigterm()
	logR, logW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr=127.0.0.1:0", "-bootstrap-key=" + testKey, "-shutdown-timeout=60s"}, io.Discard, logW)
		_ = logW.Close()
	}()
	lines := make(chan map[string]any, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(logR)
		for sc.Scan() {
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				lines <- l
			}
		}
	}()
	var base string
	for l := range lines {
		if l["msg"] == "listening" {
			base = "http://" + l["addr"].(string)
			break
		}
	}
	require.NotEmpty(t, base, "no listening line")

	do := func(method, path, body string) *http.Response {
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		return resp
	}
	resp := do("PUT", "/api/v1/states/job", `{"agent_id":"a","data":{"n":1}}`)
	require.Equal(t, 200, resp.StatusCode)
	resp.Body.Close()

	watch := do("GET", "/api/v1/states/watch", "")
	defer watch.Body.Close()
	frames := bufio.NewReader(watch.Body)
	first, err := frames.ReadString('\n')
	require.NoError(t, err)
	require.Contains(t, first, "ping", "the stream opens with a ping")

	poll := make(chan *http.Response, 1)
	go func() { poll <- do("GET", "/api/v1/states/job?wait_version=1&wait_ms=60000", "") }()
	time.Sleep(200 * time.Millisecond) // let the long-poll start waiting; not a timing assertion

	sigterm()
	rest, err := io.ReadAll(frames)
	require.NoError(t, err, "the stream ends instead of being cut")
	assert.Contains(t, string(rest), "event: error")
	assert.Contains(t, string(rest), `"code":"SERVICE_UNAVAILABLE"`)
	assert.Contains(t, string(rest), `"retryable":true`)

	pr := <-poll
	assert.Equal(t, 200, pr.StatusCode, "the long-poll answers with the current state")
	pr.Body.Close()

	require.NoError(t, <-done)
	var msgs []string
	for l := range lines {
		msgs = append(msgs, l["msg"].(string))
	}
	assert.Contains(t, msgs, "shutting down")
	assert.Contains(t, msgs, "stopped", "every stream, request and job ended within the timeout: %v", msgs)
	assert.NotContains(t, msgs, "shutdown incomplete")
}

// TestTakenPortFailsBeforeListening: the "listening" line is written only once the port is bound.
func TestTakenPortFailsBeforeListening(t *testing.T) {
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	var log strings.Builder
	err = run(t.Context(), []string{"-addr=" + ln.Addr().String(), "-bootstrap-key=" + testKey}, io.Discard, &log)
	require.Error(t, err)
	assert.NotContains(t, log.String(), `"listening"`)
}

// TestSlowAndIdleClientsAreDisconnected: a client that never finishes its headers, and an idle
// keep-alive connection, are closed by the server instead of holding a connection forever.
func TestSlowAndIdleClientsAreDisconnected(t *testing.T) {
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	logR, logW := io.Pipe()
	go func() {
		_ = run(ctx, []string{"-addr=127.0.0.1:0", "-bootstrap-key=" + testKey, "-body-timeout=300ms", "-idle-timeout=300ms"}, io.Discard, logW)
		_ = logW.Close()
	}()
	var addr string
	sc := bufio.NewScanner(logR)
	for sc.Scan() {
		var l map[string]any
		if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "listening" {
			addr = l["addr"].(string)
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, logR) }()
	require.NotEmpty(t, addr)
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound for the test, not a measurement
		_, err := io.ReadAll(c)
		return err == nil // EOF: the server closed it; a timeout would be an error
	}

	slow, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer slow.Close()
	_, err = slow.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")) // and never the blank line
	require.NoError(t, err)
	assert.True(t, closedByServer(slow), "unfinished headers are cut off")

	idle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer idle.Close()
	_, err = idle.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	_, _ = io.Copy(io.Discard, resp.Body)
	assert.True(t, closedByServer(idle), "an idle keep-alive connection is closed")
}
