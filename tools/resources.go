package tools

import (
	"context"
	"encoding/json"
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
// (on transports with sessions: stdio and SSE).
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

	subs := &subscriptions{cancel: map[string]context.CancelFunc{}}
	hooks.AddAfterSubscribe(func(ctx context.Context, _ any, req *mcp.SubscribeRequest, _ *mcp.EmptyResult) {
		subs.start(ctx, s, d, req.Params.URI)
	})
	hooks.AddAfterUnsubscribe(func(ctx context.Context, _ any, req *mcp.UnsubscribeRequest, _ *mcp.EmptyResult) {
		if sess := server.ClientSessionFromContext(ctx); sess != nil {
			subs.stop(sess.SessionID() + " " + req.Params.URI)
		}
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
		p, ok := core.PrincipalFrom(ctx)
		if !ok {
			return nil, core.E("tools.resource", core.CodeUnauthorized, core.MsgUnauthorized)
		}
		key, err := keyOf(req.Params.URI, prefix)
		if err != nil {
			return nil, err
		}
		v, err := get(ctx, p, key)
		if err != nil {
			return nil, err
		}
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return nil, core.Internal("tools.resource", err)
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "application/json", Text: string(b)}}, nil
	}
}

// subscriptions runs one waiter per (session, state URI).
type subscriptions struct {
	mu     sync.Mutex
	cancel map[string]context.CancelFunc // "<session> <uri>" → stop
}

func (s *subscriptions) start(ctx context.Context, srv *server.MCPServer, d Deps, uri string) {
	sess := server.ClientSessionFromContext(ctx)
	p, ok := core.PrincipalFrom(ctx)
	key, err := keyOf(uri, stateURIPrefix)
	if sess == nil || !ok || err != nil {
		return // stateless HTTP has no session to notify; only states are subscribable
	}
	id := sess.SessionID() + " " + uri
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.mu.Lock()
	if old := s.cancel[id]; old != nil {
		old()
	}
	s.cancel[id] = cancel
	s.mu.Unlock()
	// The baseline is read before the subscribe call returns, so any later write is notified.
	var version int64
	if st, err := d.States.Get(wctx, p, key, core.At{}); err == nil {
		version = st.Version
	}
	go func() {
		defer s.stop(id)
		for wctx.Err() == nil {
			res, err := d.Watcher.WaitForChange(wctx, p, key, version, 30*time.Second)
			if core.IsCode(err, core.CodeStoreUnavailable) {
				select { // Redis restarting or failing over: keep the subscription, try again
				case <-time.After(core.RetryAfterSeconds * time.Second):
				case <-wctx.Done():
				}
				continue
			}
			if err != nil {
				return // revoked scope or gone: stop notifying
			}
			if !res.Changed {
				continue
			}
			version = res.Version
			if srv.SendNotificationToSpecificClient(sess.SessionID(), mcp.MethodNotificationResourceUpdated, map[string]any{"uri": uri}) != nil {
				return
			}
		}
	}()
}

func (s *subscriptions) stop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.cancel[id]; c != nil {
		c()
		delete(s.cancel, id)
	}
}

func (s *subscriptions) stopSession(session string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, c := range s.cancel {
		if strings.HasPrefix(id, session+" ") {
			c()
			delete(s.cancel, id)
		}
	}
}
