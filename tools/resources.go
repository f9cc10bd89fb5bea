package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentstate/agentstate-go/core"
)

// Resource URIs: a state key (percent-encoded) names its state and its lease.
const (
	stateURIPrefix = "agentstate://states/"
	leaseURIPrefix = "agentstate://leases/"
)

// addResources registers states and leases as resource templates, and makes
// resources/subscribe deliver notifications/resources/updated when a subscribed state changes
// (on transports with sessions: stdio, SSE, and streamable HTTP with its GET stream).
func addResources(s *server.MCPServer, hooks *server.Hooks, d Deps) {
	s.AddResourceTemplate(mcp.NewResourceTemplate(stateURIPrefix+"{key}", "State",
		mcp.WithTemplateDescription("The current state stored under a key (the key percent-encoded)."),
		mcp.WithTemplateMIMEType("application/json")),
		readResource(d, stateURIPrefix, func(ctx context.Context, p core.Principal, key string) (any, error) {
			return d.States.Get(ctx, p, key, core.At{})
		}))
	s.AddResourceTemplate(mcp.NewResourceTemplate(leaseURIPrefix+"{key}", "Lease",
		mcp.WithTemplateDescription("The live lease on a state key: who holds it, until when, with which fencing token."),
		mcp.WithTemplateMIMEType("application/json")),
		readResource(d, leaseURIPrefix, func(ctx context.Context, p core.Principal, key string) (any, error) {
			return d.Leases.OnKey(ctx, p, key)
		}))

	subs := &subscriptions{active: map[string]subscription{}, live: map[string]bool{}}
	hooks.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		subs.start(ctx, s, d, req.Params.URI)
	})
	hooks.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		if sess := server.ClientSessionFromContext(ctx); sess != nil {
			subs.stop(sess.SessionID()+" "+req.Params.URI, 0)
		}
	})
	hooks.AddBeforeSubscriptionsListen(func(ctx context.Context, _ any, req *mcp.SubscriptionsListenRequest) {
		for _, uri := range req.Params.Notifications.ResourceSubscriptions {
			listen(ctx, d, uri)
		}
	})
	hooks.AddOnRegisterSession(func(_ context.Context, sess server.ClientSession) {
		subs.mu.Lock()
		subs.live[sess.SessionID()] = true
		subs.mu.Unlock()
	})
	hooks.AddOnUnregisterSession(func(_ context.Context, sess server.ClientSession) {
		subs.stopSession(sess.SessionID())
	})
}

func keyOf(uri, prefix string) (string, error) {
	enc, ok := strings.CutPrefix(uri, prefix)
	if !ok || enc == "" {
		return "", core.E("tools.resource", core.CodeBadRequest, "Unknown resource "+uri)
	}
	key, err := url.PathUnescape(enc)
	if err != nil {
		return "", core.E("tools.resource", core.CodeBadRequest, "Malformed resource URI "+uri)
	}
	return key, nil
}

func readResource(d Deps, prefix string, get func(context.Context, core.Principal, string) (any, error)) server.ResourceTemplateHandlerFunc {
	return func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		p, err := caller(ctx)
		if err != nil {
			return nil, resourceError(req.Params.URI, err)
		}
		key, err := keyOf(req.Params.URI, prefix)
		if err != nil {
			return nil, resourceError(req.Params.URI, err)
		}
		v, err := get(ctx, p, key)
		if err != nil {
			return nil, resourceError(req.Params.URI, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, resourceError(req.Params.URI, core.Internal("tools.resource", err))
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "application/json", Text: string(b)}}, nil
	}
}

// resourceError is what a client reads in the JSON-RPC error: the code and message, never the
// internal op chain. A resource that does not exist becomes -32002 with data.uri on its way out
// (rewriteNotFound).
func resourceError(uri string, err error) error {
	w := core.WireErrorOf(err)
	if w.Code == core.CodeNotFound {
		return errors.New(notFoundText + uri)
	}
	return fmt.Errorf("%s: %s (%s)", w.Code, w.Message, uri)
}

// subscriptions runs one waiter per (session, state URI). Subscribing again to the same URI
// replaces the waiter (it does not stack, and does not cancel the new one).
type subscriptions struct {
	mu     sync.Mutex
	next   uint64
	active map[string]subscription // "<session> <uri>" → its waiter
	live   map[string]bool         // sessions a transport holds open (stdio, SSE, a GET stream)
}

// streamGrace is how long a subscription waits for its session's stream to open (a streamable
// HTTP client subscribes, then opens its GET stream) before it gives up.
const streamGrace = 30 * time.Second

func (s *subscriptions) isLive(session string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[session]
}

type subscription struct {
	gen    uint64
	cancel context.CancelFunc
}

// waitSlice bounds one wait of a subscription, and so how long a revoked credential's
// subscription can outlive the revocation when nothing changes.
const waitSlice = 5 * time.Second

func (s *subscriptions) start(ctx context.Context, srv *server.MCPServer, d Deps, uri string) {
	sess := server.ClientSessionFromContext(ctx)
	key, err := keyOf(uri, stateURIPrefix)
	if sess == nil || sess.SessionID() == "" || err != nil {
		return // a stateless request has no session to notify; only states are subscribable
	}
	p, err := caller(ctx)
	if err != nil {
		return
	}
	id := sess.SessionID() + " " + uri
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	if old, ok := s.active[id]; ok {
		old.cancel()
	}
	s.next++
	gen := s.next
	s.active[id] = subscription{gen: gen, cancel: cancel}
	s.mu.Unlock()
	version := baseline(wctx, d, p, key)
	started := time.Now()
	// A streamable HTTP client may subscribe before its GET stream is open; the send fails
	// until then and the next change is tried again. The session's end stops us.
	go follow(wctx, d, p, key, version, func() bool {
		return s.isLive(sess.SessionID()) || time.Since(started) <= streamGrace // else nobody will ever read it
	}, func() {
		_ = srv.SendNotificationToSpecificClient(sess.SessionID(), mcp.MethodNotificationResourceUpdated, map[string]any{"uri": uri})
	}, func() { s.stop(id, gen) })
}

// listen serves a resource subscription of a 2026-07-28 subscriptions/listen request: it lives
// as long as the request (the client ends it by cancelling), and delivers on the request's own
// stream, which mcp-go tags with the subscription id.
func listen(ctx context.Context, d Deps, uri string) {
	sess := server.ClientSessionFromContext(ctx)
	key, err := keyOf(uri, stateURIPrefix)
	if sess == nil || err != nil {
		return // only states are subscribable
	}
	p, err := caller(ctx)
	if err != nil {
		return
	}
	note := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{
		Method: mcp.MethodNotificationResourceUpdated, Params: mcp.NotificationParams{AdditionalFields: map[string]any{"uri": uri}}}}
	go follow(ctx, d, p, key, baseline(ctx, d, p, key), func() bool { return true }, func() {
		select {
		case sess.NotificationChannel() <- note:
		case <-ctx.Done():
		}
	}, func() {})
}

// baseline is the key's version now. A subscription reads it before its request is answered
// (subscribe's result, listen's acknowledgement), so every later write is notified.
func baseline(ctx context.Context, d Deps, p core.Principal, key string) int64 {
	if st, err := d.States.Get(ctx, p, key, core.At{}); err == nil {
		return st.Version
	}
	return 0
}

// follow calls deliver after each change of key past version, until ctx ends, alive says
// nobody listens any more, or the credential is revoked, expires or may no longer read the
// key; then done.
func follow(ctx context.Context, d Deps, p core.Principal, key string, version int64, alive func() bool, deliver, done func()) {
	defer done()
	for ctx.Err() == nil && alive() {
		res, err := d.Watcher.WaitForChange(ctx, p, key, version, waitSlice)
		if core.IsCode(err, core.CodeStoreUnavailable) {
			select { // Redis restarting or failing over: keep the subscription, try again
			case <-time.After(core.RetryAfterSeconds * time.Second):
			case <-ctx.Done():
			}
			continue
		}
		if err != nil {
			return // scope or resource no longer allowed: stop notifying
		}
		// Every cycle, and before every notification, the credential must still be live:
		// a revoked or expired credential's subscription ends.
		if p, err = recheck(ctx); err != nil || !p.CanTouch(key) {
			return
		}
		if !res.Changed {
			continue
		}
		version = res.Version
		deliver()
	}
}

// stop ends the waiter id if it is still generation gen (0 = whichever runs).
func (s *subscriptions) stop(id string, gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.active[id]; ok && (gen == 0 || cur.gen == gen) {
		cur.cancel()
		delete(s.active, id)
	}
}

func (s *subscriptions) stopSession(session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.live, session)
	for id, sub := range s.active {
		if strings.HasPrefix(id, session+" ") {
			sub.cancel()
			delete(s.active, id)
		}
	}
}
