package tools

import (
	"context"

	"github.com/agentstate/agentstate-go/core"
)

// Whoami is whoami's result: what the calling credential is and may do.
type Whoami struct {
	ProjectID      string   `json:"project_id"`
	CredentialKind string   `json:"credential_kind" jsonschema:"enum=api_key,enum=capability_token"`
	CredentialID   string   `json:"credential_id"`
	CredentialName string   `json:"credential_name"`
	BoundAgentID   *string  `json:"bound_agent_id" jsonschema_description:"The agent the credential is bound to; its writes and leases are always recorded as this agent."`
	AgentID        string   `json:"agent_id" jsonschema_description:"What agent_id and holder default to when you omit them."`
	Scopes         []string `json:"scopes"`
	Resources      []string `json:"resources" jsonschema_description:"State-key patterns the credential is limited to; null = every key."`
	ExpiresAt      *int64   `json:"expires_at" jsonschema_description:"Unix ms; null = never."`
	Depth          int      `json:"delegation_depth" jsonschema_description:"How many tokens lie between this credential and its API key (0 for a key or a token a key minted)."`
	MaxDepth       int      `json:"max_delegation_depth" jsonschema_description:"How much deeper this token may still delegate."`
	RateLimit      *Budget  `json:"rate_limit" jsonschema_description:"Requests left this minute; null when unlimited."`
}

// Budget is the rate-limit window as whoami reports it.
type Budget struct {
	Limit     int64 `json:"limit"`
	Remaining int64 `json:"remaining"`
	ResetAt   int64 `json:"reset_at" jsonschema_description:"Unix seconds when the window restarts."`
}

func identityTools() []Tool {
	return []Tool{
		define(Tool{
			Name: "whoami", Title: "Who am I", Op: core.OpWhoami,
			Description: "Your identity here: project, credential, the agent_id your writes and leases are recorded as, scopes, key patterns, expiry, delegation depth and rate-limit budget.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, _ NoArgs) (Whoami, error) {
			agent, err := agentFor(ctx, d, p, "", "agent_id")
			if err != nil {
				return Whoami{}, err
			}
			name, err := d.Keys.CredentialName(ctx, p)
			if err != nil {
				return Whoami{}, err
			}
			w := Whoami{ProjectID: p.ProjectID, CredentialKind: string(p.Kind), CredentialID: p.CredentialID, CredentialName: name,
				AgentID: agent, Scopes: p.Scopes, Resources: p.Resources, Depth: p.Depth, MaxDepth: p.MaxDepth}
			if p.AgentID != "" {
				w.BoundAgentID = &p.AgentID
			}
			if p.ExpiresAt != 0 {
				w.ExpiresAt = &p.ExpiresAt
			}
			if st, err := d.RateLimiter.Budget(ctx, p); err != nil {
				return Whoami{}, err
			} else if st.Limit > 0 {
				w.RateLimit = &Budget{Limit: st.Limit, Remaining: st.Remaining, ResetAt: st.Reset}
			}
			return w, nil
		}),
	}
}

// agentFor is the agent a write or lease is recorded as: the credential's bound agent (an
// argument naming another is refused), else the argument, else the credential's name (its id
// if it has none). Identity comes from the credential, not from free text.
func agentFor(ctx context.Context, d Deps, p core.Principal, given, arg string) (string, error) {
	if p.AgentID != "" {
		if given != "" && given != p.AgentID {
			return "", core.E("tools."+arg, core.CodeForbidden, core.MsgBoundAgent+p.AgentID)
		}
		return p.AgentID, nil
	}
	if given != "" {
		return given, nil
	}
	name, err := d.Keys.CredentialName(ctx, p)
	if err != nil || name != "" {
		return name, err
	}
	return p.CredentialID, nil
}
