package tools

import (
	"context"

	"github.com/agentstate/agentstate-go/core"
)

// UpsertStateArgs are upsert_state's arguments: the REST body plus the key and idempotency key.
type UpsertStateArgs struct {
	StateKey string `json:"state_key" jsonschema:"minLength=1" jsonschema_description:"The state's key (any string; slashes allowed)."`
	core.StateWrite
	IdempotencyKey string `json:"idempotency_key,omitempty" jsonschema:"maxLength=255" jsonschema_description:"Retry-safe key: a repeat with the same arguments returns the first result."`
}

// GetStateArgs are get_state's arguments.
type GetStateArgs struct {
	StateKey   string `json:"state_key" jsonschema:"minLength=1"`
	AtSequence int64  `json:"at_sequence,omitempty" jsonschema:"minimum=1" jsonschema_description:"Time travel: the state as of this sequence."`
	AtTime     int64  `json:"at_time,omitempty" jsonschema:"minimum=1" jsonschema_description:"Time travel: the state as of this time (Unix ms)."`
}

// DeleteStateArgs are delete_state's arguments.
type DeleteStateArgs struct {
	StateKey        string `json:"state_key" jsonschema:"minLength=1"`
	LeaseID         string `json:"lease_id,omitempty" jsonschema_description:"Id of the live lease on this key; required while one is held."`
	ExpectedVersion *int64 `json:"expected_version,omitempty" jsonschema:"minimum=1" jsonschema_description:"Delete only if the state is at this version."`
	FencingToken    *int64 `json:"fencing_token,omitempty" jsonschema:"minimum=1" jsonschema_description:"Fencing token of your lease; refused if a newer lease was issued."`
	IdempotencyKey  string `json:"idempotency_key,omitempty" jsonschema:"maxLength=255"`
	AgentID         string `json:"agent_id,omitempty" jsonschema:"maxLength=255" jsonschema_description:"Recorded on the delete event; default: your agent (see whoami)."`
}

// ListStateEventsArgs are list_state_events' arguments.
type ListStateEventsArgs struct {
	StateKey string `json:"state_key" jsonschema:"minLength=1"`
	After    int64  `json:"after,omitempty" jsonschema:"minimum=0" jsonschema_description:"Return events with a sequence greater than this (next_cursor of the previous page)."`
	Limit    int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=500" jsonschema_description:"Events per page (default 50)."`
}

func stateTools() []Tool {
	return []Tool{
		define(Tool{
			Name: "upsert_state", Title: "Write a state", Op: core.OpStatePut, Optional: []string{"agent_id"},
			Description: "Create or fully replace the JSON object under state_key; returns the state with its new version. " +
				"Pass expected_version (the version you read) so a concurrent change fails with VERSION_CONFLICT instead of being overwritten. agent_id defaults to your agent.",
			Hints: Hints{Destructive: true},
		}, func(ctx context.Context, d Deps, p core.Principal, a UpsertStateArgs) (core.State, error) {
			agent, err := agentFor(ctx, d, p, a.AgentID, "agent_id")
			if err != nil {
				return core.State{}, err
			}
			a.AgentID = agent
			st, _, err := d.States.Put(ctx, p, core.PutState{Key: a.StateKey, Body: a.StateWrite, IdempotencyKey: a.IdempotencyKey})
			return st, err
		}),
		define(Tool{
			Name: "get_state", Title: "Read a state", Op: core.OpStateGet, Structured: true,
			Description: "Read the state under state_key, or with at_sequence / at_time as it was then. NOT_FOUND if none (or deleted).",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, a GetStateArgs) (core.State, error) {
			return d.States.Get(ctx, p, a.StateKey, core.At{Sequence: a.AtSequence, Time: a.AtTime})
		}),
		define(Tool{
			Name: "query_states", Title: "Find states", Op: core.OpStateQuery,
			Description: "Find states, newest write first, by agent_id, tags, update time and JSON-path equality on data. Pages may be short: follow next_cursor until null.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, q core.StateQuery) (core.StatePage, error) {
			return d.States.Query(ctx, p, q)
		}),
		define(Tool{
			Name: "delete_state", Title: "Delete a state", Op: core.OpStateDelete,
			Description: "Delete the state under state_key; its history stays in list_state_events. expected_version deletes only an unchanged state.",
			Hints:       Hints{Destructive: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, a DeleteStateArgs) (core.DeleteResult, error) {
			agent, err := agentFor(ctx, d, p, a.AgentID, "agent_id")
			if err != nil {
				return core.DeleteResult{}, err
			}
			res, _, err := d.States.Delete(ctx, p, core.DeleteState{
				Key: a.StateKey, AgentID: agent, LeaseID: a.LeaseID, FencingToken: a.FencingToken, ExpectedVersion: a.ExpectedVersion,
				IdempotencyKey: a.IdempotencyKey,
			})
			return res, err
		}),
		define(Tool{
			Name: "list_state_events", Title: "List a state's history", Op: core.OpStateEvents,
			Description: "List the append-only event log of state_key (every write and delete, oldest first). Page with after = next_cursor.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, a ListStateEventsArgs) (core.EventPage, error) {
			return d.States.Events(ctx, p, a.StateKey, a.After, a.Limit)
		}),
	}
}
