package tools

import (
	"context"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentstate/agentstate-go/core"
)

// WaitArgs are wait_for_state_change's arguments.
type WaitArgs struct {
	StateKey     string `json:"state_key" jsonschema:"minLength=1"`
	AfterVersion int64  `json:"after_version" jsonschema:"minimum=0" jsonschema_description:"The version you last saw (0 if none): returns as soon as the state's version is greater."`
	TimeoutMs    int64  `json:"timeout_ms,omitempty" jsonschema:"minimum=0,maximum=50000" jsonschema_description:"How long to wait (default 30000, at most 50000: below hosts' 60 s request timeout)."`
}

// progressEvery is how often a waiting call reports progress when the client asked for it.
const progressEvery = 10 * time.Second

func watchTools() []Tool {
	return []Tool{
		define(Tool{
			Name: "wait_for_state_change", Title: "Wait for a state to change", Op: core.OpStateWait,
			Description: "Block until state_key moves past after_version (written or deleted by anyone) or timeout_ms passes; returns changed, deleted and the current state. " +
				"React to other agents instead of polling get_state.",
			Hints: Hints{ReadOnly: true, Idempotent: true}, Waits: true,
		}, func(ctx context.Context, d Deps, p core.Principal, a WaitArgs) (core.WaitResult, error) {
			if a.TimeoutMs < 0 || a.TimeoutMs > HostTimeoutMs {
				e := core.E("tools.wait_for_state_change", core.CodeBadRequest, "timeout_ms must be between 0 and 50000")
				e.Details = map[string]string{"path": "timeout_ms"}
				return core.WaitResult{}, e
			}
			if a.TimeoutMs == 0 {
				a.TimeoutMs = 30_000
			}
			total := time.Duration(a.TimeoutMs) * time.Millisecond
			deadline := time.Now().Add(total)
			// Wait in slices, reporting progress between them, so a host that shows progress
			// (or extends its timeout on it) sees the call alive.
			for {
				left := time.Until(deadline)
				res, err := d.Watcher.WaitForChange(ctx, p, a.StateKey, a.AfterVersion, max(min(left, progressEvery), 0))
				if err != nil || res.Changed || time.Until(deadline) <= 0 {
					return res, err
				}
				notifyProgress(ctx, total-time.Until(deadline), total)
			}
		}),
	}
}

type progressKey struct{}

// withProgress keeps the request's progress token (if the client sent one) for the handler.
func withProgress(ctx context.Context, req mcp.CallToolRequest) context.Context {
	if req.Params.Meta != nil && req.Params.Meta.ProgressToken != nil {
		return context.WithValue(ctx, progressKey{}, req.Params.Meta.ProgressToken)
	}
	return ctx
}

// notifyProgress sends notifications/progress for the current request, if it asked for them.
func notifyProgress(ctx context.Context, done, total time.Duration) {
	token := ctx.Value(progressKey{})
	srv := server.ServerFromContext(ctx)
	if token == nil || srv == nil {
		return
	}
	_ = srv.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), map[string]any{
		"progressToken": token, "progress": done.Milliseconds(), "total": total.Milliseconds(),
		"message": "waiting for a change",
	})
}
