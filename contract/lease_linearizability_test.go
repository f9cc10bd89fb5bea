package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// The lease check: concurrent clients acquire, renew and release leases on a few keys and
// write under them, through the service and the real store; porcupine then searches for one
// order of the calls, consistent with their times, in which a sequential lease gives every
// answer seen. The model's rules: a key has at most one holder; each grant's fencing token is
// one more than the key's last (strictly increasing, never reissued); only the holder renews,
// releases or writes under its lease; a write presenting a token that is not the key's latest
// is refused. The test clock does not move, so no lease expires during a run.

// leaseOp is one call on one key.
type leaseOp struct {
	Key   string
	Kind  string // "acquire", "renew", "release", "write" (under Lease with Token), "fenced" (Token, no lease id)
	Lease string // renew, release, write: the lease id the client presents
	Token int64  // write, fenced: the fencing token presented
}

// leaseOut is what the service answered.
type leaseOut struct {
	OK      bool
	Lease   string // acquire: the lease granted
	Token   int64  // acquire, renew: the lease's fencing token
	Code    core.Code
	Unknown bool // a retryable 503: the call may or may not have applied
}

// leaseState is the sequential model of one key.
type leaseState struct {
	Holder string // the live lease, "" when the key is free, "?" when held by a lease nobody was told of
	Token  int64  // the highest fencing token issued for the key
}

// stepLease is one definite answer: whether the key could give it, and its next state.
func stepLease(s leaseState, in leaseOp, out leaseOut) (bool, leaseState) {
	refused := func(code core.Code) bool { return !out.OK && out.Code == code }
	switch in.Kind {
	case "acquire":
		if s.Holder != "" {
			return refused(core.CodeLeaseConflict), s
		}
		return out.OK && out.Lease != "" && out.Token == s.Token+1, leaseState{out.Lease, s.Token + 1}
	case "renew":
		if s.Holder != in.Lease {
			return refused(core.CodeNotFound), s
		}
		return out.OK && out.Token == s.Token, s
	case "release":
		if s.Holder != in.Lease {
			return refused(core.CodeNotFound), s
		}
		return out.OK, leaseState{"", s.Token}
	case "write":
		switch {
		case s.Holder == "":
			return refused(core.CodeLeaseExpired), s
		case s.Holder != in.Lease:
			return refused(core.CodeLeaseConflict), s
		case in.Token != s.Token:
			return refused(core.CodeStaleFencingToken), s
		}
		return out.OK, s
	}
	// fenced: no lease id, so refused while any lease is live; on a free key only the latest
	// token may write.
	switch {
	case s.Holder != "":
		return refused(core.CodeLeaseRequired), s
	case in.Token != s.Token:
		return refused(core.CodeStaleFencingToken), s
	}
	return out.OK, s
}

var leaseModel = (&porcupine.NondeterministicModel{
	Partition: byKey(func(in leaseOp) string { return in.Key }),
	Init:      func() []any { return []any{leaseState{}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(leaseState), input.(leaseOp), output.(leaseOut)
		from := []leaseState{s}
		if s.Holder == "?" {
			// The service releases a lease it could not report (Leases.abandon) before the
			// acquire answers; the history does not show when, so it may have happened by now.
			from = append(from, leaseState{"", s.Token})
		}
		var next []any
		for _, s := range from {
			if !out.Unknown {
				if ok, n := stepLease(s, in, out); ok {
					next = append(next, n)
				}
				continue
			}
			// A 503 leaves either outcome possible. An acquire granted although its answer
			// was lost holds the key, unknown to everyone, until that release.
			next = append(next, s)
			switch {
			case in.Kind == "acquire" && s.Holder == "":
				next = append(next, leaseState{"?", s.Token + 1})
			case in.Kind == "release" && s.Holder == in.Lease:
				next = append(next, leaseState{"", s.Token})
			}
		}
		return next
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(leaseOp), output.(leaseOut)
		return fmt.Sprintf("%s %s(lease=%.6s, token=%d) -> ok=%v lease=%.6s token=%d %s unknown=%v",
			in.Key, in.Kind, in.Lease, in.Token, out.OK, out.Lease, out.Token, out.Code, out.Unknown)
	},
}).ToModel()

// call performs op through the service.
func (op leaseOp) call(ctx context.Context, s *testenv.Server) (leaseOut, error) {
	leases, p := s.App.Leases, s.Project.P
	var err error
	var out leaseOut
	switch op.Kind {
	case "acquire":
		var l core.Lease
		if l, err = leases.Acquire(ctx, p, op.Key, core.AcquireLease{Holder: "lin"}); err == nil {
			out = leaseOut{OK: true, Lease: l.ID, Token: l.FencingToken}
		}
	case "renew":
		var l core.Lease
		if l, err = leases.Renew(ctx, p, op.Lease, core.RenewLease{}); err == nil {
			out = leaseOut{OK: true, Token: l.FencingToken}
		}
	case "release":
		if err = leases.Release(ctx, p, op.Lease); err == nil {
			out.OK = true
		}
	default:
		token := op.Token
		body := core.StateWrite{AgentID: "lin", Data: json.RawMessage(`{}`), LeaseID: op.Lease, FencingToken: &token}
		if _, _, err = s.App.States.Put(ctx, p, core.PutState{Key: op.Key, Body: body}); err == nil {
			out.OK = true
		}
	}
	if err == nil {
		return out, nil
	}
	switch code := core.WireErrorOf(err).Code; code {
	case core.CodeStoreUnavailable:
		return leaseOut{Unknown: true}, nil
	case core.CodeLeaseConflict, core.CodeNotFound, core.CodeLeaseExpired, core.CodeLeaseRequired, core.CodeStaleFencingToken:
		return leaseOut{Code: code}, nil
	}
	return leaseOut{}, fmt.Errorf("%s %s: %w", op.Kind, op.Key, err)
}

// recordLeaseHistory runs clients×opsEach calls on keys. Each client holds at most one lease
// and remembers the last one it held, so it also presents ids and tokens gone stale.
func recordLeaseHistory(t *testing.T, s *testenv.Server, clients, opsEach int, keys []string) []porcupine.Operation {
	t.Helper()
	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		errs    []error
		wg      sync.WaitGroup
	)
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			var held, last leaseOp // held.Lease == "" when holding none; last: the latest lease it held
			for range opsEach {
				var op leaseOp
				r := rng.IntN(100)
				switch {
				case held.Lease != "" && r < 35:
					op = leaseOp{Key: held.Key, Kind: "write", Lease: held.Lease, Token: held.Token}
				case held.Lease != "" && r < 55:
					op = leaseOp{Key: held.Key, Kind: "renew", Lease: held.Lease}
				case held.Lease != "" && r < 90:
					op = leaseOp{Key: held.Key, Kind: "release", Lease: held.Lease}
				case held.Lease != "":
					op = leaseOp{Key: held.Key, Kind: "fenced", Token: held.Token}
				case last.Lease == "" || r < 55:
					op = leaseOp{Key: keys[rng.IntN(len(keys))], Kind: "acquire"}
				case r < 75:
					op = leaseOp{Key: last.Key, Kind: "fenced", Token: last.Token}
				case r < 85:
					op = leaseOp{Key: last.Key, Kind: "write", Lease: last.Lease, Token: last.Token}
				default:
					op = leaseOp{Key: last.Key, Kind: []string{"renew", "release"}[rng.IntN(2)], Lease: last.Lease}
				}
				call := now()
				out, err := op.call(t.Context(), s)
				ret := now()
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					history = append(history, porcupine.Operation{ClientId: c, Input: op, Call: call, Output: out, Return: ret})
				}
				mu.Unlock()
				switch {
				case op.Kind == "acquire" && out.OK:
					held = leaseOp{Key: op.Key, Lease: out.Lease, Token: out.Token}
					last = held
				case op.Kind == "release" && (out.OK || out.Code != ""), op.Kind == "write" && out.Code != "" && out.Code != core.CodeStaleFencingToken:
					held = leaseOp{} // released, or found gone
				}
			}
		})
	}
	wg.Wait()
	require.Empty(t, errs, "every call must get an answer the model knows")
	kinds := map[string]int{}
	for _, op := range history {
		in, out := op.Input.(leaseOp), op.Output.(leaseOut)
		switch {
		case out.Unknown:
			kinds["unknown"]++
		case out.OK:
			kinds[in.Kind+" ok"]++
		default:
			kinds[in.Kind+" "+string(out.Code)]++
		}
	}
	t.Logf("%d operations: %v", len(history), kinds)
	require.Positive(t, kinds["acquire ok"]+kinds["fenced STALE_FENCING_TOKEN"], "the run exercised grants and stale tokens")
	return history
}

// TestLeasesAreLinearizable: acquire, renew, release and writes under a lease (and with a bare
// fencing token) on two contended keys, from 8 clients, match the sequential lease on each
// store — also when the store's replies to scripts are lost now and then and go-redis resends
// them (a resent acquire must not burn a second token nor grant twice).
func TestLeasesAreLinearizable(t *testing.T) {
	linearizableOnEveryStore(t, leaseModel, "lease", 5*time.Millisecond, // the run is short: drop often
		func(op porcupine.Operation) bool { return op.Output.(leaseOut).Unknown },
		func(t *testing.T, s *testenv.Server) []porcupine.Operation {
			return recordLeaseHistory(t, s, 8, 120, []string{"lease-a", "lease-b"})
		})
}

// TestLeasesAreLinearizableWhenCoalesced: the same lease history from 24 clients on three keys,
// so that acquires, renewals, releases and fenced writes go out batched with other requests'
// (coalesce.go): a batch resent after a lost reply must still grant once and burn one token.
func TestLeasesAreLinearizableWhenCoalesced(t *testing.T) {
	linearizableOnEveryStore(t, leaseModel, "lease-coalesced", 5*time.Millisecond,
		func(op porcupine.Operation) bool { return op.Output.(leaseOut).Unknown },
		whileCoalesced(func(t *testing.T, s *testenv.Server) []porcupine.Operation {
			return recordLeaseHistory(t, s, 24, 40, []string{"lease-a", "lease-b", "lease-c"})
		}))
}
