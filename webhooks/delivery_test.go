package webhooks

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/agentstate/agentstate-go/core"
)

// testDelivery is a queued event as the outbox hands it to Send.
func testDelivery(t *testing.T, ts int64, data any) Delivery {
	t.Helper()
	body, err := payload("conversation.created", ts, data)
	if err != nil {
		t.Fatal(err)
	}
	return Delivery{ID: "1700000000000-0", WebhookID: "w1", Event: "conversation.created", Timestamp: ts, Body: body, Attempt: 1}
}

func TestWebhookDeliverSignatureAndHeaders(t *testing.T) {
	const secret = "s3cr3t"
	now := time.UnixMilli(1_750_000_000_123)
	type got struct {
		header http.Header
		body   []byte
	}
	ch := make(chan got, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost {
			t.Errorf("method = %s", r.Method)
		}
		ch <- got{r.Header.Clone(), b}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()

	data := map[string]any{"conversation_id": "c1", "message_count": 2}
	if err := NewDeliverer(true).Send(context.Background(), srv.URL+"/hook", secret, testDelivery(t, now.UnixMilli(), data)); err != nil {
		t.Fatalf("Send = %v", err)
	}
	g := <-ch
	if ct := g.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if id := g.header.Get("X-AgentState-Delivery"); id != "1700000000000-0" {
		t.Errorf("X-AgentState-Delivery = %q", id)
	}
	if ua := g.header.Get("User-Agent"); ua != "AgentState-Webhooks/1.0" {
		t.Errorf("User-Agent = %q", ua)
	}
	tsHeader := g.header.Get("X-AgentState-Timestamp")
	if tsHeader != strconv.FormatInt(now.UnixMilli(), 10) {
		t.Errorf("X-AgentState-Timestamp = %q, want %d", tsHeader, now.UnixMilli())
	}

	// Verify as a receiver would: recompute over the raw body with the shared secret.
	ts, _ := strconv.ParseInt(tsHeader, 10, 64)
	want := SignWebhook(secret, ts, g.body)
	sig := g.header.Get("X-AgentState-Signature")
	if !hmac.Equal([]byte(sig), []byte(want)) {
		t.Errorf("signature %q does not verify (want %q)", sig, want)
	}
	if sig != strings.ToLower(sig) || len(sig) != 64 {
		t.Errorf("signature %q is not 64 lowercase hex chars", sig)
	}
	if SignWebhook("other", ts, g.body) == sig {
		t.Error("signature does not depend on the secret")
	}

	var payload struct {
		Event     string         `json:"event"`
		Timestamp int64          `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal(g.body, &payload); err != nil {
		t.Fatalf("body %s: %v", g.body, err)
	}
	if payload.Event != "conversation.created" || payload.Timestamp != now.UnixMilli() || payload.Data["conversation_id"] != "c1" {
		t.Errorf("payload = %+v", payload)
	}
}

func TestSignWebhookKnownVector(t *testing.T) {
	// Computed independently: printf '1700000000000.{"a":1}' | openssl dgst -sha256 -hmac key
	const want = "2c8bc12f88d77789404ce0a63cf69acf735ba98832f7a7d36147f537be556f3e"
	if got := SignWebhook("key", 1700000000000, []byte(`{"a":1}`)); got != want {
		t.Fatalf("SignWebhook = %s, want %s", got, want)
	}
}

func TestWebhookSendFailsOnNon2xx(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	err := NewDeliverer(true).Send(context.Background(), srv.URL, "k", testDelivery(t, 1, nil))
	if err == nil || !strings.Contains(err.Error(), "502") {
		t.Fatalf("Send = %v; want an error naming the 502", err)
	}
}

func TestWebhookDeliverDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/elsewhere" {
			followed.Store(true)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	defer srv.Close()

	err := NewDeliverer(true).Send(context.Background(), srv.URL, "k", testDelivery(t, 1, nil))
	if err == nil || followed.Load() {
		t.Fatalf("Send = %v, followed=%v; want a failed attempt and no redirect", err, followed.Load())
	}
}

func TestWebhookDeliverTimeoutPerAttempt(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)

	d := NewDeliverer(true)
	d.Timeout = 50 * time.Millisecond
	start := time.Now()
	if err := d.Send(context.Background(), srv.URL, "k", testDelivery(t, 1, nil)); err == nil {
		t.Fatal("Send succeeded; want a timed-out attempt")
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("took %v; per-attempt timeout not applied", el)
	}
}

func TestWebhookDialGuardRefusesLoopback(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
	}))
	defer srv.Close()

	// Production settings: the guard alone must stop a URL that (say, via DNS rebinding)
	// ends up at a loopback address, even though ValidateWebhookURL is bypassed here.
	err := NewDeliverer(false).Send(context.Background(), srv.URL, "k", testDelivery(t, 1, nil))
	if err == nil {
		t.Fatal("Send succeeded; want refusal")
	}
	if !strings.Contains(err.Error(), "refused") {
		t.Errorf("error %q does not come from the dial guard", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("receiver was reached %d times", hits.Load())
	}

	// The same server is reachable when loopback is allowed.
	if err := NewDeliverer(true).Send(context.Background(), srv.URL, "k", testDelivery(t, 1, nil)); err != nil {
		t.Fatalf("with allowLoopback: Send = %v", err)
	}
}

func TestWebhookDialerControl(t *testing.T) {
	cases := []struct {
		addr          string
		allowLoopback bool
		ok            bool
	}{
		{"93.184.216.34:443", false, true},
		{"[2606:4700::1111]:443", false, true},
		{"127.0.0.1:443", false, false},
		{"127.0.0.1:443", true, true},
		{"[::1]:443", true, true},
		{"[::ffff:127.0.0.1]:443", false, false},
		{"10.1.2.3:443", true, false},
		{"172.16.0.1:443", true, false},
		{"192.168.1.1:443", true, false},
		{"169.254.169.254:80", true, false},
		{"[fe80::1]:443", true, false},
		{"[fd00:ec2::254]:80", true, false},
		{"0.0.0.0:443", true, false},
		{"[::]:443", true, false},
		{"not-an-address", true, false},
	}
	for _, c := range cases {
		err := webhookDialer(c.allowLoopback).Control("tcp", c.addr, nil)
		if (err == nil) != c.ok {
			t.Errorf("Control(%s, allowLoopback=%v) = %v, want ok=%v", c.addr, c.allowLoopback, err, c.ok)
		}
	}
}

func TestValidateWebhookURL(t *testing.T) {
	cases := []struct {
		url           string
		allowLoopback bool
		ok            bool
	}{
		{"https://example.com/hooks", false, true},
		{"https://93.184.216.34/x", false, true},
		{"HTTPS://Example.com", false, true},
		{"http://example.com/hooks", false, false},
		{"http://example.com/hooks", true, false},
		{"ftp://example.com/x", false, false},
		{"https:///nohost", false, false},
		{"not a url", false, false},
		{"", false, false},
		{"https://127.0.0.1/x", false, false},
		{"http://127.0.0.1/x", false, false},
		{"https://127.8.9.10/x", false, false},
		{"https://localhost/x", false, false},
		{"https://LOCALHOST./x", false, false},
		{"https://app.localhost/x", false, false},
		{"https://10.0.0.1/x", false, false},
		{"https://172.16.5.4/x", false, false},
		{"https://172.32.0.1/x", false, true},
		{"https://192.168.0.10/x", false, false},
		{"https://169.254.169.254/latest/meta-data", false, false},
		{"https://metadata.google.internal/computeMetadata/v1", false, false},
		{"https://[::1]/x", false, false},
		{"https://[fe80::1]/x", false, false},
		{"https://[fe80::1%25eth0]/x", false, false},
		{"https://[fc00::1]/x", false, false},
		{"https://[::ffff:10.0.0.1]/x", false, false},
		{"https://0.0.0.0/x", false, false},
		{"https://2130706433/x", false, false},
		{"https://0x7f.1/x", false, false},
		// Loopback is allowed with the flag, on either scheme; nothing else is.
		{"http://127.0.0.1:8080/x", true, true},
		{"https://127.0.0.1:8443/x", true, true},
		{"http://localhost:3000/x", true, true},
		{"http://[::1]:3000/x", true, true},
		{"https://10.0.0.1/x", true, false},
		{"https://169.254.169.254/x", true, false},
		{"http://192.168.1.1/x", true, false},
	}
	for _, c := range cases {
		err := ValidateURL(c.url, c.allowLoopback)
		if (err == nil) != c.ok {
			t.Errorf("ValidateWebhookURL(%q, %v) = %v, want ok=%v", c.url, c.allowLoopback, err, c.ok)
			continue
		}
		if err != nil {
			if !core.IsCode(err, core.CodeBadRequest) {
				t.Errorf("ValidateWebhookURL(%q): code = %v, want BAD_REQUEST", c.url, err)
			}
			if core.WireErrorOf(err).Message != webhookURLMessage {
				t.Errorf("ValidateWebhookURL(%q): message = %q", c.url, core.WireErrorOf(err).Message)
			}
		}
	}
}
