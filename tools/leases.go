package tools

import (
	"context"

	"github.com/agentstate/agentstate-go/core"
)

// AcquireLeaseArgs are acquire_lease's arguments.
type AcquireLeaseArgs struct {
	StateKey string `json:"state_key" jsonschema:"minLength=1" jsonschema_description:"The state key to lease (it need not exist as a state)."`
	core.AcquireLease
}

// LeaseIDArgs name one lease.
type LeaseIDArgs struct {
	LeaseID string `json:"lease_id" jsonschema:"minLength=1" jsonschema_description:"The lease id returned by acquire_lease."`
}

// RenewLeaseArgs are renew_lease's arguments.
type RenewLeaseArgs struct {
	LeaseID string `json:"lease_id" jsonschema:"minLength=1"`
	core.RenewLease
}

// GetLeaseArgs name a lease by id or the state key it holds.
type GetLeaseArgs struct {
	LeaseID  string `json:"lease_id,omitempty" jsonschema_description:"A lease id; or give state_key."`
	StateKey string `json:"state_key,omitempty" jsonschema_description:"A state key: returns its live lease."`
}

// ListLeasesArgs page through active leases.
type ListLeasesArgs struct {
	Cursor string `json:"cursor,omitempty" jsonschema_description:"next_cursor of the previous page."`
	Limit  int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=100"`
}

// Released is release_lease's result (v1).
type Released struct {
	Released bool `json:"released"`
}

func leaseTools() []Tool {
	return []Tool{
		define(Tool{
			Name: "acquire_lease", Title: "Acquire a lease", Op: core.OpLeaseAcquire, Optional: []string{"holder"}, Structured: true,
			Description: "Take exclusive ownership of state_key for ttl_ms. Pass the returned lease_id (or fencing_token) on writes to the key, renew at half the TTL, release when done. " +
				"Held by someone else: LEASE_CONFLICT at once, or with wait_ms queue for it (handed over on release). holder defaults to your agent. Only your credential, its ancestors and full keys may use the lease.",
			Hints: Hints{}, Waits: true,
		}, func(ctx context.Context, d Deps, p core.Principal, a AcquireLeaseArgs) (core.Lease, error) {
			holder, err := agentFor(ctx, d, p, a.Holder, "holder")
			if err != nil {
				return core.Lease{}, err
			}
			a.Holder = holder
			return d.Leases.Acquire(ctx, p, a.StateKey, a.AcquireLease)
		}),
		define(Tool{
			Name: "renew_lease", Title: "Renew a lease", Op: core.OpLeaseRenew,
			Description: "Keep a lease: expiry becomes now + ttl_ms. LEASE_EXPIRED if already expired (acquire again); FORBIDDEN if not yours.",
			Hints:       Hints{Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, a RenewLeaseArgs) (core.Lease, error) {
			return d.Leases.Renew(ctx, p, a.LeaseID, a.RenewLease)
		}),
		define(Tool{
			Name: "release_lease", Title: "Release a lease", Op: core.OpLeaseRelease,
			Description: "Give up a lease: the next waiter gets the key at once. Releasing twice fails with NOT_FOUND; FORBIDDEN if another credential acquired it.",
			Hints:       Hints{Destructive: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, a LeaseIDArgs) (Released, error) {
			return Released{Released: true}, d.Leases.Release(ctx, p, a.LeaseID)
		}),
		define(Tool{
			Name: "get_lease", Title: "Look up a lease", Op: core.OpLeaseGet,
			Description: "Who holds a key: state_key gives its live lease (NOT_FOUND when free); lease_id gives any lease with its status.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, a GetLeaseArgs) (core.Lease, error) {
			if a.LeaseID != "" {
				return d.Leases.Get(ctx, p, a.LeaseID)
			}
			return d.Leases.OnKey(ctx, p, a.StateKey)
		}),
		define(Tool{
			Name: "list_leases", Title: "List active leases", Op: core.OpLeaseList,
			Description: "List the project's active leases, soonest expiry first. Page with cursor = next_cursor.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, a ListLeasesArgs) (core.LeasePage, error) {
			return d.Leases.List(ctx, p, a.Cursor, a.Limit)
		}),
	}
}
