package contract

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/internal/testenv"
)

// The linearizability check: concurrent clients read, write, compare-and-set and delete a few
// state keys through the real HTTP server, recording when each call started and returned;
// porcupine then searches for one order of the calls, consistent with those times, in which a
// sequential versioned register gives every answer the clients saw.

// regOp is one call on one state key.
type regOp struct {
	Key      string
	Kind     string // "get", "put", "cas", "delete"
	Expected int64  // cas: If-Match
	Value    int64  // put, cas: the data written
}

// regOut is what the server answered.
type regOut struct {
	OK      bool  // get: found; put, cas, delete: applied
	Version int64 // the state's version after the call; on a refused cas, the current_version reported
	Value   int64 // get: the data read
	Unknown bool  // a retryable 503: the write may or may not have applied
}

// register is the sequential model of one key: versions count every write and delete and
// survive a delete, as the store's do.
type register struct {
	Exists  bool
	Version int64
	Value   int64
}

// stepRegister is one definite answer: whether the register could give it, and its next state.
func stepRegister(s register, in regOp, out regOut) (bool, register) {
	applies := true
	switch in.Kind {
	case "cas":
		applies = (in.Expected == 0 && !s.Exists) || (s.Exists && in.Expected == s.Version)
	case "delete":
		applies = s.Exists
	}
	switch {
	case in.Kind == "get" && !s.Exists:
		return !out.OK, s
	case in.Kind == "get":
		return out.OK && out.Version == s.Version && out.Value == s.Value, s
	case in.Kind == "cas" && !applies:
		current := int64(0)
		if s.Exists {
			current = s.Version
		}
		return !out.OK && out.Version == current, s
	case in.Kind == "delete" && !applies:
		return !out.OK, s
	case in.Kind == "delete":
		return out.OK && out.Version == s.Version+1, register{false, s.Version + 1, 0}
	}
	return out.OK && out.Version == s.Version+1, register{true, s.Version + 1, in.Value}
}

// byKey partitions a history by the key each operation names: keys are independent, and
// porcupine checks each part on its own.
func byKey[In any](key func(In) string) func([]porcupine.Operation) [][]porcupine.Operation {
	return func(h []porcupine.Operation) [][]porcupine.Operation {
		parts := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := key(op.Input.(In))
			parts[k] = append(parts[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range parts {
			out = append(out, ops)
		}
		return out
	}
}

// registerModel accepts an Unknown answer (a retryable 503: the store's reply was lost more
// often than go-redis retries) as either outcome: the write applied once, or not at all.
var registerModel = (&porcupine.NondeterministicModel{
	Partition: byKey(func(in regOp) string { return in.Key }),
	Init:      func() []any { return []any{register{}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(register), input.(regOp), output.(regOut)
		if out.Unknown {
			next := []any{s}
			if in.Kind == "get" {
				return next
			}
			// The answer it would have had, had the write applied: the model says if it could.
			if ok, applied := stepRegister(s, in, regOut{OK: true, Version: s.Version + 1}); ok {
				next = append(next, applied)
			}
			return next
		}
		if ok, next := stepRegister(s, in, out); ok {
			return []any{next}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(regOp), output.(regOut)
		return fmt.Sprintf("%s %s(exp=%d, val=%d) -> ok=%v v=%d val=%d unknown=%v", in.Key, in.Kind, in.Expected, in.Value, out.OK, out.Version, out.Value, out.Unknown)
	},
}).ToModel()

// call performs op over REST and decodes the answer; err is a transport failure or an
// answer the model has no place for (a 5xx, say), which the test reports as such.
func (op regOp) call(base, key string) (regOut, error) {
	u := base + "/api/v1/states/" + op.Key
	var method string
	var body any
	hdr := map[string]string{}
	switch op.Kind {
	case "get":
		method = http.MethodGet
	case "put", "cas":
		method, body = http.MethodPut, map[string]any{"agent_id": "lin", "data": map[string]int64{"n": op.Value}}
		if op.Kind == "cas" {
			hdr["If-Match"] = fmt.Sprint(op.Expected)
		}
	case "delete":
		method = http.MethodDelete
	}
	resp, out, err := trySend(method, u, key, body, hdr)
	if err != nil {
		return regOut{}, err
	}
	var got struct {
		Version int64 `json:"version"`
		Data    struct {
			N int64 `json:"n"`
		} `json:"data"`
		Event struct {
			Version int64 `json:"version"`
		} `json:"event"`
		Error struct {
			Code    string `json:"code"`
			Details struct {
				CurrentVersion int64 `json:"current_version"`
			} `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		return regOut{}, fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, out)
	}
	switch {
	case resp.StatusCode == 200 && op.Kind == "delete":
		return regOut{OK: true, Version: got.Event.Version}, nil
	case resp.StatusCode == 200:
		return regOut{OK: true, Version: got.Version, Value: got.Data.N}, nil
	case resp.StatusCode == 404 && (op.Kind == "get" || op.Kind == "delete"):
		return regOut{}, nil
	case resp.StatusCode == 409 && op.Kind == "cas" && got.Error.Code == "VERSION_CONFLICT":
		return regOut{Version: got.Error.Details.CurrentVersion}, nil
	case resp.StatusCode == 503 && got.Error.Code == "STORE_UNAVAILABLE":
		return regOut{Unknown: true}, nil
	}
	return regOut{}, fmt.Errorf("%s %s: %d %s", method, u, resp.StatusCode, out)
}

// recordHistory runs clients×opsEach random calls on keys and returns the timed history.
func recordHistory(t *testing.T, s *testenv.Server, clients, opsEach int, keys []string) []porcupine.Operation {
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
			rng := rand.New(rand.NewPCG(uint64(c), 42))
			seen := map[string]int64{} // the last version this client saw per key: its CAS guess
			for i := range opsEach {
				op := regOp{Key: keys[rng.IntN(len(keys))], Value: int64(c*1_000_000 + i + 1)}
				switch r := rng.IntN(100); {
				case r < 30:
					op.Kind = "get"
				case r < 45:
					op.Kind = "put"
				case r < 85:
					op.Kind, op.Expected = "cas", seen[op.Key]
				default:
					op.Kind = "delete"
				}
				call := now()
				out, err := op.call(s.URL, s.Project.Key)
				ret := now()
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					history = append(history, porcupine.Operation{ClientId: c, Input: op, Call: call, Output: out, Return: ret})
				}
				mu.Unlock()
				if err == nil && out.Version > 0 {
					seen[op.Key] = out.Version
				}
			}
		})
	}
	wg.Wait()
	require.Empty(t, errs, "every call must get an answer the model knows (200, 404, 409 VERSION_CONFLICT, 503 STORE_UNAVAILABLE)")
	unknown := 0
	for _, op := range history {
		if op.Output.(regOut).Unknown {
			unknown++
		}
	}
	t.Logf("%d operations, %d answered 503 (outcome unknown)", len(history), unknown)
	return history
}

// checkLinearizable fails the test, with a visualization file, when the history has no
// sequential explanation under model.
func checkLinearizable(t *testing.T, model porcupine.Model, name string, history []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(model, history, time.Minute)
	if res == porcupine.Ok {
		return
	}
	path := filepath.Join(os.TempDir(), fmt.Sprintf("agentstate-%s-linearizability-%d.html", name, time.Now().UnixNano()))
	if err := porcupine.VisualizePath(model, info, path); err == nil {
		t.Logf("visualization of the history: %s", path)
	}
	t.Fatalf("%d %s operations: the history is %s", len(history), name, res)
}

// linearizableOnEveryStore records a history with record on each store, first directly (every
// answer must then be definite), then, on a single server, through a proxy that drops a
// script's reply every dropEvery (go-redis resends it), and checks each under model. unknown
// tells an operation whose outcome the client could not learn (a 503).
func linearizableOnEveryStore(t *testing.T, model porcupine.Model, name string, dropEvery time.Duration,
	unknown func(porcupine.Operation) bool, record func(*testing.T, *testenv.Server) []porcupine.Operation) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		t.Run("direct", func(t *testing.T) {
			history := record(t, testenv.NewServer(t, e))
			for _, op := range history {
				require.False(t, unknown(op), "with no fault every answer is definite")
			}
			checkLinearizable(t, model, name, history)
		})
		t.Run("dropped-replies", func(t *testing.T) {
			if e.Name == "cluster" {
				t.Skip("the fault proxy fronts a single server")
			}
			pe, proxy := e.ThroughProxy(t)
			s := testenv.NewServer(t, pe)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					case <-time.After(dropEvery):
						proxy.DropNextReply("EVALSHA")
					}
				}
			})
			history := record(t, s)
			close(stop)
			wg.Wait()
			assert.Positive(t, proxy.Dropped.Load(), "replies were lost during the run")
			t.Logf("%d replies dropped", proxy.Dropped.Load())
			checkLinearizable(t, model, name, history)
		})
	})
}

// TestStatesAreLinearizable: GET, PUT, CAS PUT (If-Match) and DELETE on two contended keys,
// from 8 clients, is linearizable on each store — also when the store's replies to writes are
// lost now and then and go-redis retries them (each script must apply once and answer what
// it did).
func TestStatesAreLinearizable(t *testing.T) {
	linearizableOnEveryStore(t, registerModel, "state", 20*time.Millisecond,
		func(op porcupine.Operation) bool { return op.Output.(regOut).Unknown },
		func(t *testing.T, s *testenv.Server) []porcupine.Operation {
			return recordHistory(t, s, 8, 120, []string{"lin-a", "lin-b"})
		})
}

// TestStatesAreLinearizableWhenCoalesced: the same register history from 24 clients on three
// keys, enough to keep more than redisstore.SoloRoundTrips round trips in flight, so that
// requests' reads and scripts go out batched in one pipeline with others' (coalesce.go). A
// batch must keep each request's answers its own and each write applied once, with or
// without lost replies.
func TestStatesAreLinearizableWhenCoalesced(t *testing.T) {
	linearizableOnEveryStore(t, registerModel, "state-coalesced", 20*time.Millisecond,
		func(op porcupine.Operation) bool { return op.Output.(regOut).Unknown },
		whileCoalesced(func(t *testing.T, s *testenv.Server) []porcupine.Operation {
			return recordHistory(t, s, 24, 40, []string{"lin-a", "lin-b", "lin-c"})
		}))
}

// whileCoalesced wraps record so that the run fails if none of its round trips went out in a
// batch: it would then prove nothing about coalescing.
func whileCoalesced(record func(*testing.T, *testenv.Server) []porcupine.Operation) func(*testing.T, *testenv.Server) []porcupine.Operation {
	return func(t *testing.T, s *testenv.Server) []porcupine.Operation {
		before := s.App.Store.CoalescedRoundTrips()
		history := record(t, s)
		coalesced := s.App.Store.CoalescedRoundTrips() - before
		t.Logf("%d round trips coalesced", coalesced)
		require.Positive(t, coalesced, "requests' round trips went out in batches")
		return history
	}
}
