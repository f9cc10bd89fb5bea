package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/agentstate/agentstate-go/tools"
)

// remote serves stdio by forwarding every message to an AgentState server's /api/mcp
// (streamable HTTP, with the GET stream open for resource notifications), so an agent machine
// needs only the URL and a key, not the store. Requests run concurrently (a
// wait_for_state_change must not hold up the others); stdout carries only the protocol.
func remote(ctx context.Context, baseURL, key, toolsets string, stdin io.Reader, stdout, stderr io.Writer) error {
	endpoint := strings.TrimSuffix(baseURL, "/") + "/api/mcp"
	if toolsets != "" {
		endpoint += "?toolsets=" + url.QueryEscape(toolsets)
	}
	if err := checkRemoteKey(ctx, endpoint, key); err != nil {
		return err
	}
	tr, err := transport.NewStreamableHTTP(endpoint, transport.WithContinuousListening(),
		transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + key}))
	if err != nil {
		return err
	}
	if err := tr.Start(ctx); err != nil {
		return err
	}
	defer tr.Close()

	var mu sync.Mutex
	write := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_, _ = fmt.Fprintf(stdout, "%s\n", b)
	}
	tr.SetNotificationHandler(func(n mcp.JSONRPCNotification) { write(n) })

	var wg sync.WaitGroup
	defer wg.Wait()
	sess := &session{tr: tr}
	rd := bufio.NewReader(stdin)
	for {
		line, err := rd.ReadBytes('\n')
		if len(strings.TrimSpace(string(line))) > 0 {
			forward(ctx, sess, line, write, &wg)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// forward sends one message from the stdio client: a request's response (or the error that
// kept it from the server) goes back on stdout; notifications go one way.
func forward(ctx context.Context, sess *session, line []byte, write func(any), wg *sync.WaitGroup) {
	tr := sess.tr
	var msg struct {
		ID     *mcp.RequestId  `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(line, &msg); err != nil {
		write(transport.NewJSONRPCErrorResponse(mcp.NewRequestId(nil), mcp.PARSE_ERROR, "Parse error", nil))
		return
	}
	var params any
	if len(msg.Params) > 0 {
		params = msg.Params
	}
	if msg.ID == nil {
		if msg.Method != "" {
			_ = tr.SendNotification(ctx, mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION,
				Notification: mcp.Notification{Method: msg.Method, Params: notificationParams(msg.Params)}})
		}
		return
	}
	if msg.Method == "" {
		return // a response to a server request: this bridge makes none
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, err := sess.send(ctx, transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: *msg.ID, Method: msg.Method, Params: params})
		var unauthorized *transport.AuthorizationRequiredError
		switch {
		case errors.As(err, &unauthorized):
			write(transport.NewJSONRPCErrorResponse(*msg.ID, mcp.INVALID_REQUEST, tools.ErrUnauthorized.Error(), nil))
		case err != nil:
			write(transport.NewJSONRPCErrorResponse(*msg.ID, mcp.INTERNAL_ERROR, "AgentState server unreachable: "+err.Error(), nil))
		default:
			write(resp)
		}
	}()
}

func notificationParams(raw json.RawMessage) mcp.NotificationParams {
	var p mcp.NotificationParams
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &p)
	}
	return p
}

// checkRemoteKey refuses to start with a key the server does not accept, so a misconfigured
// host sees a clear message instead of an empty tool list.
func checkRemoteKey(ctx context.Context, endpoint, key string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	body := strings.NewReader(`{"jsonrpc":"2.0","id":0,"method":"ping"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, body)
	if err != nil {
		return fmt.Errorf("AGENTSTATE_URL: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return errors.New("the server at AGENTSTATE_URL refused AGENTSTATE_API_KEY (unknown, revoked or expired)")
	case resp.StatusCode >= 300:
		return fmt.Errorf("%s answered %s", endpoint, resp.Status)
	}
	return nil
}

// session is the bridge's server session. The server forgets a session after a day without a
// request (or when its store loses it) and then answers 404; the host on stdio knows nothing of
// that, so the bridge opens a new session with the host's own initialize and sends the request
// again. Resource subscriptions made on the old session do not carry over.
type session struct {
	tr   *transport.StreamableHTTP
	mu   sync.Mutex
	init *transport.JSONRPCRequest // the host's initialize, replayed to open a new session
	gen  int                       // sessions opened by replay; one replay per lost session
}

func (s *session) send(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	s.mu.Lock()
	if req.Method == string(mcp.MethodInitialize) {
		s.init = &req
	}
	gen := s.gen
	s.mu.Unlock()
	resp, err := s.tr.SendRequest(ctx, req)
	if !errors.Is(err, transport.ErrSessionTerminated) || req.Method == string(mcp.MethodInitialize) {
		return resp, err
	}
	if err := s.reopen(ctx, gen); err != nil {
		return nil, err
	}
	return s.tr.SendRequest(ctx, req)
}

// reopen replays initialize unless another request already did since generation gen.
func (s *session) reopen(ctx context.Context, gen int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return nil
	}
	if s.init == nil {
		return transport.ErrSessionTerminated
	}
	again := *s.init
	again.ID = mcp.NewRequestId("agentstate-bridge-reinitialize-" + strconv.Itoa(gen))
	if _, err := s.tr.SendRequest(ctx, again); err != nil {
		return err
	}
	s.gen++
	return s.tr.SendNotification(ctx, mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION,
		Notification: mcp.Notification{Method: "notifications/initialized"}})
}
