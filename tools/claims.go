package tools

import (
	"context"

	"github.com/agentstate/agentstate-go/core"
)

// ClaimIDArgs name one claim.
type ClaimIDArgs struct {
	ClaimID string `json:"claim_id" jsonschema:"minLength=1" jsonschema_description:"The claim id returned by create_claim or list_claims."`
}

func claimTools() []Tool {
	return []Tool{
		define(Tool{
			Name: "create_claim", Title: "Create a claim", Op: core.OpClaimCreate,
			Description: "Record an assertion about a subject with 1..50 evidence items the server can check later (verify_claim): " +
				"text_hash (hash = SHA-256 hex of data), json_value (json_path + expected_value), state_event (source = event sequence or id). " +
				"Appended to the tamper-evident claims log.",
		}, func(ctx context.Context, d Deps, p core.Principal, in core.CreateClaim) (core.Claim, error) {
			return d.Claims.Create(ctx, p, in)
		}),
		define(Tool{
			Name: "verify_claim", Title: "Verify a claim", Op: core.OpClaimVerify,
			Description: "Check every evidence item of a claim now; returns the run, a message per item. Verified only if all pass.",
		}, func(ctx context.Context, d Deps, p core.Principal, in ClaimIDArgs) (core.VerificationRun, error) {
			return d.Claims.Verify(ctx, p, in.ClaimID)
		}),
		define(Tool{
			Name: "get_claim", Title: "Get a claim", Op: core.OpClaimGet,
			Description: "A claim with its evidence and current status.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, in ClaimIDArgs) (core.Claim, error) {
			return d.Claims.Get(ctx, p, in.ClaimID)
		}),
		define(Tool{
			Name: "list_claims", Title: "List claims", Op: core.OpClaimList,
			Description: "Claims of the project, newest first, optionally about one subject_type / subject_id; page with next_cursor.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, in core.ClaimQuery) (core.ClaimPage, error) {
			return d.Claims.List(ctx, p, in)
		}),
	}
}
