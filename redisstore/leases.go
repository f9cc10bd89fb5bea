package redisstore

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

// Every lease transition is one script (see each file's header); lease_lib.lua holds the
// helpers they share and is prepended to each.
var (
	//go:embed scripts/lease_lib.lua
	leaseLibLua string
	//go:embed scripts/acquire_lease.lua
	acquireLeaseLua string
	//go:embed scripts/end_lease.lua
	endLeaseLua string
	//go:embed scripts/renew_lease.lua
	renewLeaseLua string
	//go:embed scripts/leave_lease_queue.lua
	leaveLeaseQueueLua string

	acquireLeaseScript    = redis.NewScript(admissionLibLua + leaseLibLua + acquireLeaseLua)
	endLeaseScript        = redis.NewScript(admissionLibLua + leaseLibLua + endLeaseLua)
	renewLeaseScript      = redis.NewScript(admissionLibLua + leaseLibLua + renewLeaseLua)
	leaveLeaseQueueScript = redis.NewScript(leaseLibLua + leaveLeaseQueueLua)
)

const (
	leaseEventsCap = 100_000 // approximate length the lease event stream is trimmed to
	sweepBatch     = 100
)

// chainField stores an owner chain as ",a,b,c,", so a script can test membership with one
// plain find of ",<id>,".
func chainField(chain []string) string {
	if len(chain) == 0 {
		return ""
	}
	return "," + strings.Join(chain, ",") + ","
}

func chainFrom(f string) []string {
	if f = strings.Trim(f, ","); f == "" {
		return nil
	}
	return strings.Split(f, ",")
}

func toInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

func toStr(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	}
	return ""
}

// AcquireLease runs acquire_lease.lua, pipelined with the SADD that lets the sweeper find the
// project: one round trip. The SADD comes after the script so that it re-adds a project the
// sweeper dropped between its emptiness check and the grant (see forgetIdleProject).
func (s *Store) AcquireLease(ctx context.Context, project string, a core.LeaseAttempt) (core.LeaseAttemptResult, error) {
	const op = "redisstore.AcquireLease"
	keys := []string{
		leaseRecordKey(project, a.ID), leaseCurrentKey(project, a.Key), fenceKey(project, a.Key),
		activeLeasesKey(project), leaseEventsKey(project), leaseQueueKey(project, a.Key),
		leaseDeadlinesKey(project, a.Key), leaseWaiterSeqKey(project), leaseWaiterKey(project, a.ID),
		seqKey(project),
	}
	seen := s.seqSeen(project)
	keys, spec := appendAdmission(keys, project, a.Admission)
	args := []any{a.ID, a.Key, a.Holder, a.AgentID, a.TTLMs, a.NowMs, a.RequestID, a.WaitLeftMs,
		a.OwnerChain[len(a.OwnerChain)-1], chainField(a.OwnerChain), leaseEventsCap, s.tokenFloor(), seen, spec}
	res, err := s.runPipelined(ctx, acquireLeaseScript, keys, args, func(p redis.Pipeliner) {
		p.SAdd(ctx, leaseProjectsKey(), project)
	})
	if err == nil && a.Admission != nil {
		res, err = admissionReply(a.Admission, res)
	}
	if err != nil {
		return core.LeaseAttemptResult{}, core.Internal(op, err)
	}
	if res[0] == "ERR" { // STORE_RESET: the counter is below a sequence this server saw issued
		return core.LeaseAttemptResult{}, core.Internal(op, s.checkSequence(ctx, project, toInt(res[2]), seen))
	}
	if res[0] == "OK" || res[0] == "DONE" {
		return core.LeaseAttemptResult{Granted: true, Lease: core.Lease{
			ID: toStr(res[1]), StateKey: a.Key, Holder: a.Holder, AgentID: a.AgentID,
			FencingToken: toInt(res[2]), ExpiresAt: toInt(res[3]), CreatedAt: toInt(res[4]), RenewedAt: toInt(res[5]),
			Status: toStr(res[6]), RequestID: a.RequestID, OwnerChain: a.OwnerChain,
		}}, nil
	}
	out := core.LeaseAttemptResult{WakeIn: time.Duration(toInt(res[5])) * time.Millisecond}
	if holder := toStr(res[1]); holder != "" {
		out.Current = &core.Lease{StateKey: a.Key, Holder: holder, AgentID: toStr(res[2]),
			FencingToken: toInt(res[3]), ExpiresAt: toInt(res[4]), Status: core.LeaseActive}
	}
	return out, nil
}

// runPipelined runs script in one pipeline with also's commands (evalPipelined).
func (s *Store) runPipelined(ctx context.Context, script *redis.Script, keys []string, args []any, also func(redis.Pipeliner)) ([]any, error) {
	if s.waitReplicas > 0 {
		// The script must be WAITed for on its own connection; the sweeper's project set, like
		// the rate-limit counters, is not worth a WAIT.
		res, err := s.run(ctx, script, keys, args...).Slice()
		if err != nil {
			return nil, err
		}
		_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error { also(p); return nil })
		return res, err
	}
	cmd, err := s.evalPipelined(ctx, script, keys, args, also)
	if err != nil {
		return nil, err
	}
	return cmd.Slice()
}

// evalPipelined runs script by its SHA in one pipeline with also's commands (nil: none), its
// round trip coalesced with others under load (coalesce.go), loading the script (EVAL) on a
// server that does not know it yet. It returns the script's command and the pipeline's first
// error.
func (s *Store) evalPipelined(ctx context.Context, script *redis.Script, keys []string, args []any, also func(redis.Pipeliner)) (*redis.Cmd, error) {
	for _, eval := range []func(context.Context, redis.Scripter, []string, ...any) *redis.Cmd{script.EvalSha, script.Eval} {
		pipe := s.rdb.Pipeline()
		cmd := eval(ctx, pipe, keys, args...)
		if also != nil {
			also(pipe)
		}
		err := s.co.exec(ctx, pipe)
		if err != nil && ctx.Err() != nil {
			cmd = redis.NewCmd(ctx) // the script's may still be answered: not read (coalescer.exec)
			cmd.SetErr(err)
			return cmd, err
		}
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			continue
		}
		return cmd, err
	}
	err := errors.New("script could not be loaded")
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(err)
	return cmd, err
}

func (s *Store) queueKeys(project string, l core.Lease) []string {
	return []string{
		leaseRecordKey(project, l.ID), leaseCurrentKey(project, l.StateKey), activeLeasesKey(project),
		leaseEventsKey(project), leaseQueueKey(project, l.StateKey), leaseDeadlinesKey(project, l.StateKey),
	}
}

// LeaveLeaseQueue runs leave_lease_queue.lua.
func (s *Store) LeaveLeaseQueue(ctx context.Context, project, key, id string, now int64) error {
	err := s.run(ctx, leaveLeaseQueueScript, s.queueKeys(project, core.Lease{ID: id, StateKey: key}),
		id, now, leaseEventsCap, "leave:"+id).Err()
	if err != nil {
		return core.Internal("redisstore.LeaveLeaseQueue", err)
	}
	return nil
}

// EndLease runs end_lease.lua.
func (s *Store) EndLease(ctx context.Context, project string, l core.Lease, now int64, how, requestID string, adm *core.AdmissionCheck) (bool, error) {
	const op = "redisstore.EndLease"
	keys, spec := appendAdmission(s.queueKeys(project, l), project, adm)
	cmd := s.run(ctx, endLeaseScript, keys, l.ID, now, how, leaseEventsCap, requestID, spec)
	if adm == nil {
		n, err := cmd.Int()
		if err != nil {
			return false, core.Internal(op, err)
		}
		return n == 1, nil
	}
	res, err := cmd.Slice()
	if err == nil {
		res, err = admissionReply(adm, res)
	}
	if err != nil {
		return false, core.Internal(op, err)
	}
	return toInt(res[1]) == 1, nil
}

var renewErrors = map[string]struct {
	code core.Code
	msg  string
}{
	"NOT_FOUND":     {core.CodeNotFound, core.MsgLeaseNotFound},
	"LEASE_EXPIRED": {core.CodeLeaseExpired, core.MsgLeaseExpired},
}

// RenewLease runs renew_lease.lua on l, of which it uses the id and state key (they name the
// script's keys); the rest of l comes back as given, with the new expiry.
func (s *Store) RenewLease(ctx context.Context, project string, l core.Lease, ttlMs, now int64, requestID string, adm *core.AdmissionCheck) (core.Lease, error) {
	const op = "redisstore.RenewLease"
	keys, spec := appendAdmission([]string{
		leaseRecordKey(project, l.ID), leaseCurrentKey(project, l.StateKey), activeLeasesKey(project), leaseEventsKey(project),
	}, project, adm)
	res, err := s.run(ctx, renewLeaseScript, keys, l.ID, ttlMs, now, leaseEventsCap, requestID, spec).Slice()
	if err == nil && adm != nil {
		res, err = admissionReply(adm, res)
	}
	if err != nil {
		return core.Lease{}, core.Internal(op, err)
	}
	if res[0] != "OK" && res[0] != "DONE" {
		e := renewErrors[res[1].(string)]
		return core.Lease{}, core.E(op, e.code, e.msg)
	}
	l.ExpiresAt, l.RenewedAt, l.Status = toInt(res[1]), toInt(res[2]), core.LeaseActive
	return l, nil
}

func leaseFromFields(f map[string]string) core.Lease {
	l := core.Lease{ID: f["id"], StateKey: f["state_key"], Holder: f["holder"], AgentID: f["agent_id"],
		Status: f["status"], RequestID: f["request_id"], OwnerChain: chainFrom(f["chain"])}
	for name, dst := range map[string]*int64{
		"fencing_token": &l.FencingToken, "expires_at": &l.ExpiresAt, "created_at": &l.CreatedAt, "renewed_at": &l.RenewedAt,
	} {
		*dst, _ = strconv.ParseInt(f[name], 10, 64)
	}
	return l
}

func (s *Store) leaseHash(ctx context.Context, key string) (*core.Lease, error) {
	f, err := s.rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, core.Internal("redisstore.Lease", err)
	}
	if len(f) == 0 {
		return nil, nil
	}
	l := leaseFromFields(f)
	return &l, nil
}

// Lease reads a lease record by id.
func (s *Store) Lease(ctx context.Context, project, id string) (*core.Lease, error) {
	return s.leaseHash(ctx, leaseRecordKey(project, id))
}

// LeaseOnKey returns the key's current lease (possibly past its expiry), or nil.
func (s *Store) LeaseOnKey(ctx context.Context, project, key string) (*core.Lease, error) {
	return s.leaseHash(ctx, leaseCurrentKey(project, key))
}

// ActiveLeases pages the active-lease index by (expires_at, id), after the lease id given.
func (s *Store) ActiveLeases(ctx context.Context, project string, after string, limit int) ([]core.Lease, error) {
	const op = "redisstore.ActiveLeases"
	from := "-inf"
	if after != "" {
		score, err := s.rdb.ZScore(ctx, activeLeasesKey(project), after).Result()
		if errors.Is(err, redis.Nil) {
			return nil, core.E(op, core.CodeInvalidCursor, core.MsgLeaseCursorExpiry)
		}
		if err != nil {
			return nil, core.Internal(op, err)
		}
		from = strconv.FormatFloat(score, 'f', 0, 64)
	}
	// Ties on expires_at: read enough to skip past the cursor's own position.
	zs, err := s.rdb.ZRangeByScore(ctx, activeLeasesKey(project), &redis.ZRangeBy{Min: from, Max: "+inf", Count: int64(limit) + 64}).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	if after != "" {
		for i, id := range zs {
			if id == after {
				zs = zs[i+1:]
				break
			}
		}
	}
	zs = zs[:min(len(zs), limit)]
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(zs))
	for i, id := range zs {
		cmds[i] = pipe.HGetAll(ctx, leaseRecordKey(project, id))
	}
	if _, err := pipe.Exec(ctx); err != nil && len(zs) > 0 {
		return nil, core.Internal(op, err)
	}
	out := make([]core.Lease, 0, len(zs))
	for _, c := range cmds {
		if f := c.Val(); len(f) > 0 {
			out = append(out, leaseFromFields(f))
		}
	}
	return out, nil
}

// LeaseEvents reads the project's lease event stream after a stream id.
func (s *Store) LeaseEvents(ctx context.Context, project, after string, limit int) ([]core.LeaseEvent, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	msgs, err := s.rdb.XRangeN(ctx, leaseEventsKey(project), start, "+", int64(limit)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.LeaseEvents", err)
	}
	return leaseEventsFrom(msgs), nil
}

// SweepExpired ends due leases in every project that has active ones.
func (s *Store) SweepExpired(ctx context.Context, now int64) (int, error) {
	const op = "redisstore.SweepExpired"
	projects, err := s.rdb.SMembers(ctx, leaseProjectsKey()).Result()
	if err != nil {
		return 0, core.Internal(op, err)
	}
	ended := 0
	for _, p := range projects {
		ids, err := s.rdb.ZRangeByScore(ctx, activeLeasesKey(p), &redis.ZRangeBy{
			Min: "-inf", Max: strconv.FormatInt(now, 10), Count: sweepBatch,
		}).Result()
		if err != nil {
			return ended, core.Internal(op, err)
		}
		for _, id := range ids {
			l, err := s.Lease(ctx, p, id)
			if err != nil {
				return ended, err
			}
			if l == nil {
				continue
			}
			ok, err := s.EndLease(ctx, p, *l, now, core.LeaseExpired, "sweep:"+id, nil)
			if err != nil {
				return ended, err
			}
			if ok {
				ended++
			}
		}
		if err := s.forgetIdleProject(ctx, p); err != nil {
			return ended, err
		}
	}
	return ended, nil
}

// LeasesHeld counts the leases live at now in every project: one SMEMBERS and one pipelined
// ZCOUNT per project with leases. For metrics at scrape time, not for request paths.
func (s *Store) LeasesHeld(ctx context.Context, now int64) (int64, error) {
	const op = "redisstore.LeasesHeld"
	projects, err := s.rdb.SMembers(ctx, leaseProjectsKey()).Result()
	if err != nil {
		return 0, core.Internal(op, classify(err))
	}
	cmds := make([]*redis.IntCmd, len(projects))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, pr := range projects {
			cmds[i] = p.ZCount(ctx, activeLeasesKey(pr), "("+strconv.FormatInt(now, 10), "+inf")
		}
		return nil
	})
	if err != nil {
		return 0, core.Internal(op, classify(err))
	}
	var n int64
	for _, c := range cmds {
		n += c.Val()
	}
	return n, nil
}

// forgetIdleProject drops a project without active leases from the sweep set. A grant racing
// with the removal is seen by the re-check, or re-adds the project itself: AcquireLease's SADD
// runs after its script.
func (s *Store) forgetIdleProject(ctx context.Context, project string) error {
	n, err := s.rdb.ZCard(ctx, activeLeasesKey(project)).Result()
	if err != nil || n > 0 {
		return err
	}
	if err := s.rdb.SRem(ctx, leaseProjectsKey(), project).Err(); err != nil {
		return core.Internal("redisstore.forgetIdleProject", err)
	}
	if n, err = s.rdb.ZCard(ctx, activeLeasesKey(project)).Result(); err == nil && n > 0 {
		err = s.rdb.SAdd(ctx, leaseProjectsKey(), project).Err()
	}
	return err
}

// LeadJob elects the replica that runs a background job for the next ttl. This is what redsync
// is for: mutual exclusion that saves work, where two replicas running at once would be
// harmless (every sweep step is a guarded script). The mutex is left to expire, not unlocked,
// so the job runs once per ttl across all replicas.
func (s *Store) LeadJob(ctx context.Context, job string, ttl time.Duration) (bool, error) {
	// redsync's default gives the SET NX 5% of the expiry; a busy server needs more than that.
	m := s.rs.NewMutex(jobLeadKey(job), redsync.WithExpiry(ttl), redsync.WithTries(1), redsync.WithTimeoutFactor(0.5))
	err := m.TryLockContext(ctx)
	var taken *redsync.ErrTaken
	if errors.As(err, &taken) || errors.Is(err, redsync.ErrFailed) {
		return false, nil
	}
	if err != nil {
		return false, core.Internal("redisstore.LeadJob", fmt.Errorf("%s: %w", job, err))
	}
	return true, nil
}

// LeaseWaiters reads the first limit live waiters on key, in the order they will be served.
// It only reads (the queue, the deadlines, who waits), so it needs no script: two round trips,
// the second one pipeline. A waiter past its deadline is left out; the next acquire drops it.
func (s *Store) LeaseWaiters(ctx context.Context, project, key string, limit int) ([]core.LeaseWaiter, error) {
	const op = "redisstore.LeaseWaiters"
	ids, err := s.rdb.ZRange(ctx, leaseQueueKey(project, key), 0, int64(limit)-1).Result()
	if err != nil {
		return nil, core.Internal(op, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	pipe := s.rdb.Pipeline()
	now := pipe.Time(ctx)
	deadlines := make([]*redis.FloatCmd, len(ids))
	who := make([]*redis.SliceCmd, len(ids))
	for i, id := range ids {
		deadlines[i] = pipe.ZScore(ctx, leaseDeadlinesKey(project, key), id)
		who[i] = pipe.HMGet(ctx, leaseWaiterKey(project, id), "holder", "agent_id")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, core.Internal(op, err)
	}
	srvnow := now.Val().UnixMilli()
	out := make([]core.LeaseWaiter, 0, len(ids))
	for i := range ids {
		d, err := deadlines[i].Result()
		if err != nil || int64(d) <= srvnow {
			continue // left or dead between the two reads
		}
		w := core.LeaseWaiter{Position: len(out) + 1, WaitsUntil: int64(d)}
		if v := who[i].Val(); len(v) == 2 {
			w.Holder, _ = v[0].(string)
			w.AgentID, _ = v[1].(string)
		}
		out = append(out, w)
	}
	return out, nil
}
