package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/internal/cli"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/webhooks"
)

// TestMain lets a test start this binary's server as a child process it can SIGKILL: with
// AGENTSTATE_TEST_CHILD=1 the test binary is the server, its arguments the server's flags.
func TestMain(m *testing.M) {
	if os.Getenv("AGENTSTATE_TEST_CHILD") == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		os.Exit(cli.Exit("agentstate", run(ctx, os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
	}
	os.Exit(m.Run())
}

// child is a server process started from this test binary.
type child struct {
	cmd  *exec.Cmd
	base string
}

func startChild(t *testing.T, args ...string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "AGENTSTATE_TEST_CHILD=1")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd}
	var mu sync.Mutex
	var logs strings.Builder
	t.Cleanup(func() { // runs after the kill below: the log is complete
		mu.Lock()
		defer mu.Unlock()
		if t.Failed() {
			t.Logf("child %d log:\n%s", cmd.Process.Pid, logs.String())
		}
	})
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			var l map[string]any
			if json.Unmarshal(sc.Bytes(), &l) == nil && l["msg"] == "listening" {
				addr <- l["addr"].(string)
			}
		}
	}()
	select {
	case a := <-addr:
		c.base = "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("the child server never said listening")
	}
	return c
}

func (c *child) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestWebhookOutboxSurvivesKill: the first attempt fails, the server is SIGKILLed during the
// second, and a new server process on the same Redis finishes the delivery. The receiver gets
// exactly one successful delivery, with the same bytes, signature and delivery id as the
// attempts before it, and nothing after it. (At-least-once: a kill after the receiver's 2xx
// but before the acknowledgement would send it once more; this test kills before the 2xx.)
func TestWebhookOutboxSurvivesKill(t *testing.T) {
	redis := testenv.StartRedis(t, 7331)
	type hit struct {
		status                 int
		body, sig, ts, deliver string
	}
	var mu sync.Mutex
	var hits []hit
	second := make(chan struct{})
	release := make(chan struct{})
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		n := len(hits) + 1
		h := hit{body: string(b), sig: r.Header.Get("X-AgentState-Signature"), ts: r.Header.Get("X-AgentState-Timestamp"),
			deliver: r.Header.Get("X-AgentState-Delivery")}
		switch n {
		case 1:
			h.status = 500
		case 2:
			h.status = 0 // never answered: the server dies first
		default:
			h.status = 200
		}
		hits = append(hits, h)
		mu.Unlock()
		if n == 2 {
			close(second)
			<-release
			return
		}
		w.WriteHeader(h.status)
	}))
	defer recv.Close()
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()

	args := []string{"-redis-url=redis://" + redis.Addr(), "-addr=127.0.0.1:0", "-bootstrap-key=" + testKey,
		"-webhook-allow-loopback", "-webhook-retry-delays=100ms,100ms,100ms", "-webhook-timeout=1s"}
	a := startChild(t, args...)
	st, b := a.do(t, "POST", "/api/v1/webhooks", `{"url":"`+recv.URL+`/hook","events":["conversation.created"]}`)
	require.Equal(t, 201, st, "%s", b)
	var wh webhooks.Webhook
	require.NoError(t, json.Unmarshal(b, &wh))
	st, b = a.do(t, "POST", "/api/v1/conversations", `{"title":"kept","messages":[{"role":"user","content":"hi"}]}`)
	require.Equal(t, 201, st, "%s", b)
	var conv struct{ ID string }
	require.NoError(t, json.Unmarshal(b, &conv))

	select {
	case <-second:
	case <-time.After(30 * time.Second):
		t.Fatal("no second attempt")
	}
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGKILL))
	_ = a.cmd.Wait()
	close(release)

	b2 := startChild(t, args...)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(hits) >= 3
	}, 30*time.Second, 20*time.Millisecond, "the new server resumes the delivery")
	time.Sleep(3 * time.Second) // more than two retry intervals: nothing may follow the success

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, hits, 3, "one failed attempt, one cut by the kill, one delivered; nothing after")
	ok := 0
	for i, h := range hits {
		if h.status == 200 {
			ok++
		}
		assert.Equal(t, hits[0].body, h.body, "attempt %d sends the same bytes", i+1)
		assert.Equal(t, hits[0].deliver, h.deliver, "attempt %d carries the same delivery id", i+1)
		assert.True(t, hmac.Equal([]byte(webhooks.SignWebhook(wh.Secret, mustInt(t, h.ts), []byte(h.body))), []byte(h.sig)), "attempt %d signed", i+1)
	}
	assert.Equal(t, 1, ok, "exactly one successful delivery")
	assert.Contains(t, hits[0].body, conv.ID)

	st, b = b2.do(t, "GET", "/api/v1/webhooks/dead-letters", "")
	require.Equal(t, 200, st)
	assert.JSONEq(t, `{"data":[],"pagination":{"limit":0,"next_cursor":null}}`, string(b))
	st, b = b2.do(t, "GET", "/api/v1/webhooks/"+wh.ID, "")
	require.Equal(t, 200, st)
	assert.NotContains(t, string(b), `"last_triggered_at":null`)
}

func mustInt(t *testing.T, s string) int64 {
	var n int64
	_, err := fmt.Sscan(s, &n)
	require.NoError(t, err)
	return n
}
