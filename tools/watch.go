package tools

import (
	"context"
	"time"

	"github.com/agentstate/agentstate-go/core"
)

// WaitArgs are wait_for_state_change's arguments.
type WaitArgs struct {
	StateKey     string `json:"state_key" jsonschema:"minLength=1"`
	AfterVersion int64  `json:"after_version" jsonschema:"minimum=0" jsonschema_description:"The version you last saw (0 if none): returns as soon as the state's version is greater."`
	TimeoutMs    int64  `json:"timeout_ms,omitempty" jsonschema:"minimum=0,maximum=60000" jsonschema_description:"How long to wait (default 30000)."`
}

func watchTools() []Tool {
	return []Tool{
		define(Tool{
			Name: "wait_for_state_change", Title: "Wait for a state to change", Op: core.OpStateWait,
			Description: "Block until the state under state_key moves past after_version (written or deleted by anyone), or timeout_ms passes. " +
				"Returns changed, deleted and the current state: use it to react to other agents instead of polling get_state.",
			Hints: Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, a WaitArgs) (core.WaitResult, error) {
			if a.TimeoutMs == 0 {
				a.TimeoutMs = 30_000
			}
			return d.Watcher.WaitForChange(ctx, p, a.StateKey, a.AfterVersion, time.Duration(a.TimeoutMs)*time.Millisecond)
		}),
	}
}
