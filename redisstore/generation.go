package redisstore

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

// The store generation detects that Redis lost data, so that sequences and fencing tokens are
// never issued twice with different meanings.
//
// generationKey holds "<id>" (the first generation of a store: floor 0) or
// "<id>/<floor>/<previous id>" (a generation started over a store that lost data). Sequences
// and fencing tokens are issued as max(counter+1, floor) (mutate_state.lua, lease_lib.lua's
// next_fencing_token), and a floor is the Redis server's clock in microseconds when the generation
// began. A counter moves by one per write or grant, which takes Redis more than a
// microsecond, so every number issued before that moment is below it: a later generation's
// numbers are above every earlier one's, whatever the lost counters said. A brand-new store
// gets floor 0, so its first token and sequence are 1 (v1); a store that holds projects but
// no generation key (written before generations existed, or it lost the key) gets a floor.
//
// What tells this server its store lost data:
//   - under a running server: generationKey gone or changed; checkpointKey (INCRed by every
//     check, every 2 s) lower than this server's last draw; a project's sequence counter lower
//     than the highest sequence this server has seen issued (checked inside every state write
//     and by the watch hub's idle check). From then on every command answers STORE_RESET (503)
//     until a restart, and the generation is replaced by a successor with a new floor, so the
//     restarted servers continue above everything issued before.
//   - at start, only with a state file (Options.StateFile, AGENTSTATE_STATE_FILE) that
//     remembers the generation and checkpoint of this server's last check: the key gone, the
//     checkpoint lower, or the generation the one the remembered one replaced. Then the server
//     starts a successor generation (and says why) instead of reissuing. Without the file, a
//     loss while no server ran cannot be told from a store that never had more: Redis's own
//     INFO (run_id, master_replid, rdb_last_load_keys_loaded) changes at every restart or
//     failover, lossless or not, so it cannot tell either.

type generation struct {
	mu         sync.Mutex               // serialises CheckGeneration and the rotation
	adopted    atomic.Pointer[genValue] // the generation found (or started) at the first check
	checkpoint int64                    // this server's last draw of checkpointKey
	stateFile  string                   // "" = none
	reason     atomic.Pointer[string]   // why the store counts as reset; nil while it does not
	rotateFrom *string                  // set by a trip: the generation value to replace ("" = gone); nil = none
	why        string                   // how the adopted generation came to be, for the start log
	seen       sync.Map                 // project -> *atomic.Int64, the highest sequence seen issued
}

// genValue is a parsed generationKey value.
type genValue struct {
	raw, id, prev string
	floor         int64
}

func parseGeneration(raw string) genValue {
	parts := strings.SplitN(raw, "/", 3)
	v := genValue{raw: raw, id: parts[0]}
	if len(parts) == 3 {
		v.floor, _ = strconv.ParseInt(parts[1], 10, 64)
		v.prev = parts[2]
	}
	return v
}

// resetError answers every command once the store counts as reset.
type resetError struct{ reason string }

func (e resetError) Error() string       { return "store reset: " + e.reason }
func (e resetError) StoreWasReset() bool { return true }

// generationCheck marks the context of the generation check itself, which must reach Redis
// even after a reset was seen.
type generationCheck struct{}

//go:embed scripts/rotate_generation.lua
var rotateGenerationLua string

var rotateGenerationScript = redis.NewScript(rotateGenerationLua)

// stateFile is what AGENTSTATE_STATE_FILE remembers of this server's last check.
type stateFile struct {
	Generation string `json:"generation"` // generationKey's value
	Checkpoint int64  `json:"checkpoint"` // this server's last draw of checkpointKey
}

// CheckGeneration adopts the store's generation on the first call (starting one on a new
// store, or a successor when the state file shows a loss) and, on later calls, returns a
// STORE_RESET error if the store lost data since; from then on the store refuses every command.
func (s *Store) CheckGeneration(ctx context.Context) error {
	const op = "redisstore.CheckGeneration"
	g := &s.gen
	g.mu.Lock()
	defer g.mu.Unlock()
	ctx = context.WithValue(ctx, generationCheck{}, true)
	if r := g.reason.Load(); r != nil {
		return core.Internal(op, errors.Join(resetError{*r}, s.rotateLocked(ctx)))
	}
	if g.adopted.Load() == nil {
		if err := s.adopt(ctx); err != nil {
			return core.Internal(op, err)
		}
		return nil
	}
	cur, err := s.getString(ctx, generationKey())
	if err != nil {
		return core.Internal(op, err) // unreachable is an outage, not a reset
	}
	c, err := s.drawCheckpoint(ctx)
	if err != nil {
		return core.Internal(op, err)
	}
	a := g.adopted.Load()
	var reason string
	switch {
	case cur == "":
		reason = fmt.Sprintf("generation key %s (%q at start) is gone: the data was flushed or restored from a copy older than this store", generationKey(), a.raw)
	case cur != a.raw:
		reason = fmt.Sprintf("generation key %s was %q at start and is now %q: the data was flushed or restored from an older copy", generationKey(), a.raw, cur)
	case c <= g.checkpoint:
		reason = fmt.Sprintf("checkpoint %s drew %d, not above %d this server drew before: the store lost writes (restored from an older snapshot, or a replica promoted without the last writes)", checkpointKey(), c, g.checkpoint)
	}
	if reason != "" {
		from := &cur
		if parseGeneration(cur).prev == a.id {
			from = nil // another server already replaced our generation
		}
		return core.Internal(op, s.tripLocked(ctx, reason, from))
	}
	g.checkpoint = c
	if err := g.save(a.raw, c); err != nil {
		return core.Internal(op, err)
	}
	return nil
}

// adopt runs at the first check: it finds (or starts) the generation this server serves.
func (s *Store) adopt(ctx context.Context) error {
	g := &s.gen
	cur, err := s.getString(ctx, generationKey())
	if err != nil {
		return err
	}
	last, err := g.load()
	if err != nil {
		return err
	}
	stored, err := s.getString(ctx, checkpointKey())
	if err != nil {
		return err
	}
	storedCheckpoint, _ := strconv.ParseInt(stored, 10, 64)
	was := parseGeneration(last.Generation)
	switch {
	case cur == "":
		floor := int64(0)
		if last.Generation != "" {
			g.why = fmt.Sprintf("the store has no generation key, but this server last ran on generation %q (state file %s): the data was flushed or replaced while no server ran", last.Generation, g.stateFile)
		} else if n, err := s.rdb.Exists(ctx, projectsKey()).Result(); err != nil {
			return err
		} else if n == 1 {
			g.why = fmt.Sprintf("the store holds projects but no generation key %s: it was written by a version before generations, or lost the key", generationKey())
		}
		if g.why != "" {
			if floor, err = s.newFloor(ctx); err != nil {
				return err
			}
		}
		if err := s.write(ctx, generationKey(), func(c redis.Cmdable) error {
			return c.SetNX(ctx, generationKey(), newGeneration(floor, ""), 0).Err()
		}); err != nil {
			return err
		}
	case cur == last.Generation && storedCheckpoint < last.Checkpoint:
		g.why = fmt.Sprintf("checkpoint %s is %d, below %d this server drew on the same generation (state file %s): the store lost writes while no server ran (restored from an older snapshot)", checkpointKey(), storedCheckpoint, last.Checkpoint, g.stateFile)
	case was.prev != "" && cur == was.prev:
		g.why = fmt.Sprintf("the store is on generation %q, which generation %q this server last ran on replaced (state file %s): it was restored from a copy older than that", cur, last.Generation, g.stateFile)
	}
	if cur != "" && g.why != "" {
		if err := s.rotate(ctx, cur); err != nil {
			return err
		}
	}
	if cur, err = s.getString(ctx, generationKey()); err != nil {
		return err
	}
	c, err := s.drawCheckpoint(ctx)
	if err != nil {
		return err
	}
	v := parseGeneration(cur)
	g.adopted.Store(&v)
	g.checkpoint = c
	return g.save(cur, c)
}

// AdoptedGeneration is the generation this server serves (after the first CheckGeneration):
// its value, floor and, when it was started over a store that had lost data, why.
func (s *Store) AdoptedGeneration() (value string, floor int64, why string) {
	s.gen.mu.Lock()
	defer s.gen.mu.Unlock()
	if a := s.gen.adopted.Load(); a != nil {
		return a.raw, a.floor, s.gen.why
	}
	return "", 0, ""
}

// newGeneration is a generation value: a bare id for the first generation of a store.
func newGeneration(floor int64, prev string) string {
	if floor == 0 {
		return core.NewID()
	}
	return core.NewID() + "/" + strconv.FormatInt(floor, 10) + "/" + prev
}

// newFloor is the Redis server's clock in microseconds, plus one: above every sequence and
// token issued until now (see the top of this file).
func (s *Store) newFloor(ctx context.Context) (int64, error) {
	t, err := s.rdb.Time(ctx).Result()
	if err != nil {
		return 0, err
	}
	return t.UnixMicro() + 1, nil
}

// rotate replaces generation value from ("" = none) by a successor with a new floor, unless
// another server changed it first.
func (s *Store) rotate(ctx context.Context, from string) error {
	floor, err := s.newFloor(ctx)
	if err != nil {
		return err
	}
	return s.run(ctx, rotateGenerationScript, []string{generationKey()}, from, newGeneration(floor, parseGeneration(from).id)).Err()
}

// tripLocked makes the store count as reset (g.mu held) and replaces the generation value
// *from ("" = the key is gone; nil = another server did already) with a successor, so that
// servers restarted on this store issue above everything issued so far.
func (s *Store) tripLocked(ctx context.Context, reason string, from *string) error {
	g := &s.gen
	if !g.reason.CompareAndSwap(nil, &reason) {
		return resetError{*g.reason.Load()}
	}
	if g.adopted.Load() != nil { // a store that never adopted a generation (tests) writes none
		g.rotateFrom = from
	}
	return errors.Join(resetError{reason}, s.rotateLocked(ctx))
}

// rotateLocked runs a rotation a trip left pending; a failed one is tried again at the next
// check.
func (s *Store) rotateLocked(ctx context.Context) error {
	g := &s.gen
	if g.rotateFrom == nil {
		return nil
	}
	if err := s.rotate(ctx, *g.rotateFrom); err != nil {
		return fmt.Errorf("replace the generation: %w", err)
	}
	g.rotateFrom = nil
	return nil
}

// trip is tripLocked for the request paths (a state write, the watch hub) that found a
// project's sequence lower than this server has seen issued.
func (s *Store) trip(ctx context.Context, reason string) error {
	g := &s.gen
	g.mu.Lock()
	defer g.mu.Unlock()
	ctx = context.WithValue(ctx, generationCheck{}, true)
	var from *string
	if a := g.adopted.Load(); a != nil {
		from = &a.raw
	}
	return s.tripLocked(ctx, reason, from)
}

// drawCheckpoint INCRs checkpointKey, waiting for replicas when writes do: a replica promoted
// later then holds every draw this server counts on.
func (s *Store) drawCheckpoint(ctx context.Context) (int64, error) {
	var c int64
	err := s.write(ctx, checkpointKey(), func(cl redis.Cmdable) (err error) {
		c, err = cl.Incr(ctx, checkpointKey()).Result()
		return err
	})
	return c, err
}

func (s *Store) getString(ctx context.Context, key string) (string, error) {
	v, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	return v, err
}

// seqGuard is mutate_state.lua's last ARGV, "<floor>:<seen>": the generation's floor and seen,
// the highest sequence of the project this server has seen issued (seqSeen).
func (s *Store) seqGuard(project string, seen int64) string {
	var floor int64
	if a := s.gen.adopted.Load(); a != nil {
		floor = a.floor
	}
	return strconv.FormatInt(floor, 10) + ":" + strconv.FormatInt(seen, 10)
}

// seqSeen is the highest sequence of project this server has seen issued (0 = none). Take it
// before reading the project's counter: a write answered after the read was sent may have
// taken a higher one, and is no sign of loss.
func (s *Store) seqSeen(project string) int64 {
	if v, ok := s.gen.seen.Load(project); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// tokenFloor is acquire_lease.lua's floor for a new fencing token.
func (s *Store) tokenFloor() int64 {
	if a := s.gen.adopted.Load(); a != nil {
		return a.floor
	}
	return 0
}

// sawSequence records that seq was issued in project.
func (s *Store) sawSequence(project string, seq int64) {
	v, ok := s.gen.seen.Load(project)
	if !ok {
		v, _ = s.gen.seen.LoadOrStore(project, new(atomic.Int64))
	}
	hw := v.(*atomic.Int64)
	for {
		old := hw.Load()
		if seq <= old || hw.CompareAndSwap(old, seq) {
			return
		}
	}
}

// checkSequence trips the store when project's counter (latest) is below seen, a sequence
// this server had seen issued before it read the counter: the store lost the project's last
// writes.
func (s *Store) checkSequence(ctx context.Context, project string, latest, seen int64) error {
	if latest >= seen {
		return nil
	}
	return s.trip(ctx, fmt.Sprintf("project %q's sequence counter %s is %d, below sequence %d this server saw issued: the store lost writes (restored from an older snapshot, or a replica promoted without the last writes)",
		project, seqKey(project), latest, seen))
}

func (g *generation) load() (stateFile, error) {
	var f stateFile
	if g.stateFile == "" {
		return f, nil
	}
	b, err := os.ReadFile(g.stateFile)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, fmt.Errorf("state file: %w", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, fmt.Errorf("state file %s: %w", g.stateFile, err)
	}
	return f, nil
}

// save writes the state file (whole or not at all: a temporary file renamed over it).
func (g *generation) save(value string, checkpoint int64) error {
	if g.stateFile == "" {
		return nil
	}
	b, _ := json.Marshal(stateFile{Generation: value, Checkpoint: checkpoint})
	tmp, err := os.CreateTemp(filepath.Dir(g.stateFile), ".agentstate-state-*")
	if err == nil {
		_, err = tmp.Write(b)
		err = errors.Join(err, tmp.Sync(), tmp.Close())
		if err == nil {
			err = os.Rename(tmp.Name(), g.stateFile)
		}
		if err != nil {
			_ = os.Remove(tmp.Name())
		}
	}
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// resetHook refuses every command once the store counts as reset.
type resetHook struct{ g *generation }

func (resetHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h resetHook) refused(ctx context.Context) error {
	if r := h.g.reason.Load(); r != nil && ctx.Value(generationCheck{}) == nil {
		return resetError{*r}
	}
	return nil
}

func (h resetHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if err := h.refused(ctx); err != nil {
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (h resetHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if err := h.refused(ctx); err != nil {
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		return next(ctx, cmds)
	}
}
