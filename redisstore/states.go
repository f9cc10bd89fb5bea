package redisstore

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/core"
)

//go:embed scripts/mutate_state.lua
var mutateStateLua string

var mutateStateScript = redis.NewScript(admissionLibLua + mutateStateLua)

//go:embed scripts/state_at_time.lua
var stateAtTimeLua string

var stateAtTimeScript = redis.NewScript(stateAtTimeLua)

// maxIndexRetries bounds how often a write re-runs because another writer changed the state's
// agent or tags between our guess of its index keys and the script.
const maxIndexRetries = 8

var scriptErrors = map[string]struct {
	code core.Code
	msg  string
}{
	"IDEMPOTENCY_CONFLICT": {core.CodeIdempotencyConflict, core.MsgIdempotencyConflict},
	"LEASE_FORBIDDEN":      {core.CodeForbidden, core.MsgLeaseNotYours},
	"NOT_FOUND":            {core.CodeNotFound, core.MsgStateNotFound},
}

// MutateState runs mutate_state.lua.
func (s *Store) MutateState(ctx context.Context, project string, m core.StateMutation) (core.StateEvent, bool, error) {
	const op = "redisstore.MutateState"
	labels := map[string]bool{}
	var order []string
	addLabel := func(l string) {
		if !labels[l] {
			labels[l] = true
			order = append(order, l)
		}
	}
	// The state's current agent and tags name index keys the script must be given; this
	// replica's last sight of them saves the RETRY round trip (a delete sends none itself).
	for _, l := range s.labelHints.get(project, m.Key) {
		addLabel(l)
	}
	tagsJSON := "[]"
	if m.Op == core.EventUpsert {
		addLabel("a:" + m.AgentID)
		for _, t := range m.Tags {
			addLabel("t:" + t)
		}
		b, _ := json.Marshal(m.Tags)
		tagsJSON = string(b)
	}
	expected := ""
	if m.ExpectedVersion != nil {
		expected = strconv.FormatInt(*m.ExpectedVersion, 10)
	}
	writer := m.Writer.CredentialID
	if m.Writer.FullAccess {
		writer = "*"
	}
	adm := m.Admission // checked by the first execution only: a RETRY has passed it
	for range maxIndexRetries {
		keys := writeKeys(project, m.Key, 2+len(order)+admissionKeys(adm))
		if m.IdempotencyKey != "" {
			keys = append(keys, idempotencyKey(project, m.IdempotencyKey))
		}
		if m.LeaseID != "" {
			keys = append(keys, leaseRecordKey(project, m.LeaseID))
		}
		argv := []any{
			m.Op, m.NowMs, m.EventID, m.AgentID, string(m.Data), string(m.Metadata), tagsJSON,
			m.IdempotencyKey, m.Fingerprint, expected, m.LeaseID, m.Key, optInt(m.FencingToken), writer,
		}
		for _, l := range order {
			kind, val, _ := strings.Cut(l, ":")
			if kind == "a" {
				keys = append(keys, agentIndexKey(project, val))
			} else {
				keys = append(keys, tagIndexKey(project, val))
			}
			argv = append(argv, l)
		}
		keys, spec := appendAdmission(keys, project, adm)
		seen := s.seqSeen(project)
		argv = append(argv, s.seqGuard(project, seen)+spec)
		res, err := s.run(ctx, mutateStateScript, keys, argv...).Slice()
		if err != nil {
			return core.StateEvent{}, false, core.Internal(op, err)
		}
		if adm != nil {
			if res, err = admissionReply(adm, res); err != nil {
				return core.StateEvent{}, false, err
			}
			adm = nil
		}
		switch res[0].(string) {
		case "OK":
			ev, err := writtenEvent(m, tagsJSON, res[1].(int64), res[2:])
			if err == nil {
				s.labelHints.saw(project, ev)
				s.sawSequence(project, ev.Sequence)
			}
			return ev, false, err
		case "DONE", "REPLAY": // DONE: this call's own earlier execution, not a client's replay
			ev, err := decodeEvent(m.Key, res[1].(int64), res[2:])
			if err == nil {
				s.labelHints.saw(project, ev)
				s.sawSequence(project, ev.Sequence)
			}
			return ev, res[0] == "REPLAY", err
		case "RETRY":
			addLabel("a:" + res[1].(string))
			var tags []string
			if err := json.Unmarshal([]byte(res[2].(string)), &tags); err != nil {
				return core.StateEvent{}, false, core.Internal(op, err)
			}
			for _, t := range tags {
				addLabel("t:" + t)
			}
		case "ERR":
			if res[1] == "STORE_RESET" { // the counter is below a sequence this server saw issued
				return core.StateEvent{}, false, core.Internal(op, s.checkSequence(ctx, project, res[2].(int64), seen))
			}
			return core.StateEvent{}, false, scriptError(op, m, res[1:])
		default:
			return core.StateEvent{}, false, core.Internal(op, fmt.Errorf("unexpected script reply %v", res[0]))
		}
	}
	return core.StateEvent{}, false, &core.Error{Op: op, Code: core.CodeServiceUnavailable,
		Message: core.MsgStateContended}
}

func optInt(v *int64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatInt(*v, 10)
}

// leaseErrors carry the key's highest fencing token, so a superseded holder learns the token
// that replaced it from its first refused write.
var leaseErrors = map[string]struct {
	code core.Code
	msg  string
}{
	"LEASE_REQUIRED": {core.CodeLeaseRequired, core.MsgLeaseRequired},
	"LEASE_CONFLICT": {core.CodeLeaseConflict, core.MsgLeaseMismatch},
	"LEASE_EXPIRED":  {core.CodeLeaseExpired, core.MsgLeaseExpired},
}

func scriptError(op string, m core.StateMutation, res []any) error {
	code := res[0].(string)
	if e, ok := scriptErrors[code]; ok {
		return core.E(op, e.code, e.msg)
	}
	if e, ok := leaseErrors[code]; ok {
		return &core.Error{Op: op, Code: e.code, Message: e.msg,
			Details: map[string]int64{"highest_fencing_token": res[1].(int64)}}
	}
	if code == "STALE_FENCING_TOKEN" {
		highest := res[1].(int64)
		msg := fmt.Sprintf("Fencing token %d is stale: the key's latest lease has token %d", *m.FencingToken, highest)
		if *m.FencingToken > highest {
			msg = fmt.Sprintf("Fencing token %d was never issued for this key (latest is %d)", *m.FencingToken, highest)
		}
		return &core.Error{Op: op, Code: core.CodeStaleFencingToken, Message: msg,
			Details: map[string]int64{"highest_fencing_token": highest}}
	}
	if code != "VERSION_CONFLICT" {
		return core.Internal(op, fmt.Errorf("unknown script error %q", code))
	}
	ce := &core.Error{Op: op, Code: core.CodeVersionConflict}
	details := map[string]any{"current": nil, "current_version": 0}
	if len(res) > 1 {
		ev, err := decodeEvent(m.Key, res[1].(int64), res[2:])
		if err != nil {
			return err
		}
		st := ev.State()
		details["current"], details["current_version"] = st, st.Version
		ce.Message = fmt.Sprintf("State is at version %d, not the expected %d", st.Version, *m.ExpectedVersion)
	} else {
		ce.Message = fmt.Sprintf("State does not exist, not at the expected version %d", *m.ExpectedVersion)
	}
	if *m.ExpectedVersion == 0 && len(res) > 1 {
		ce.Message = core.MsgStateExists
	}
	ce.Details = details
	return ce
}

// writtenFields name the values of the script's OK reply after the sequence, in order: what
// the request did not send (the delete's last three only on a delete).
var writtenFields = [...]string{"version", "created_at", "state_created_at", "fencing_token", "agent_id", "metadata", "tags"}

// writtenEvent is the event the script has just written: what the request sent, with the
// values only the script knew, so the record does not travel back.
func writtenEvent(m core.StateMutation, tagsJSON string, seq int64, vals []any) (core.StateEvent, error) {
	f := eventFields{typ: m.Op, id: m.EventID, agent: m.AgentID, metadata: string(m.Metadata), tags: tagsJSON}
	if m.Op == core.EventUpsert {
		f.idem = m.IdempotencyKey // a delete event records none
	}
	for i, v := range vals {
		f.set(writtenFields[i], v.(string))
	}
	ev, err := f.event(m.Key, seq)
	if m.Op == core.EventUpsert {
		ev.Data = m.Data
	}
	return ev, err
}

// decodeEvent turns a stream entry's flat field list into an event.
func decodeEvent(key string, seq int64, flat []any) (core.StateEvent, error) {
	var f eventFields
	for i := 0; i+1 < len(flat); i += 2 {
		f.set(flat[i].(string), flat[i+1].(string))
	}
	return f.event(key, seq)
}

// eventFields are the fields of a state's stream entry (docs/redis-keys.md), gathered in one
// pass over a reply: a struct, not a map, as each request reads one or writes one.
type eventFields struct {
	typ, id, agent, data, metadata, tags, idem, fence, version, createdAt, stateCreatedAt string
}

func (f *eventFields) set(name, v string) {
	switch name {
	case "type":
		f.typ = v
	case "id":
		f.id = v
	case "agent_id":
		f.agent = v
	case "data":
		f.data = v
	case "metadata":
		f.metadata = v
	case "tags":
		f.tags = v
	case "idempotency_key":
		f.idem = v
	case "fencing_token":
		f.fence = v
	case "version":
		f.version = v
	case "created_at":
		f.createdAt = v
	case "state_created_at":
		f.stateCreatedAt = v
	}
}

func (f *eventFields) event(key string, seq int64) (core.StateEvent, error) {
	const op = "redisstore.decodeEvent"
	ev := core.StateEvent{Sequence: seq, ID: f.id, StateKey: key, AgentID: f.agent, EventType: f.typ}
	if f.data != "" {
		ev.Data = json.RawMessage(f.data)
	}
	if f.metadata != "" {
		ev.Metadata = json.RawMessage(f.metadata)
	}
	if f.idem != "" {
		ik := f.idem
		ev.IdempotencyKey = &ik
	}
	if f.fence != "" {
		n, err := strconv.ParseInt(f.fence, 10, 64)
		if err != nil {
			return ev, core.Internal(op, fmt.Errorf("fencing_token of %s@%d: %w", key, seq, err))
		}
		ev.FencingToken = &n
	}
	ev.Tags = []string{} // most states have none: no decoder for them
	if f.tags != "[]" {
		var tags []string // not &ev.Tags, which would move ev to the heap
		if err := json.Unmarshal([]byte(f.tags), &tags); err != nil {
			return ev, core.Internal(op, fmt.Errorf("tags of %s@%d: %w", key, seq, err))
		}
		ev.Tags = tags
	}
	// Parsed by value: a pointer into ev would move it to the heap, an allocation per event.
	var err error
	parse := func(name, text string) int64 {
		n, perr := strconv.ParseInt(text, 10, 64)
		if perr != nil && err == nil {
			err = core.Internal(op, fmt.Errorf("%s of %s@%d: %w", name, key, seq, perr))
		}
		return n
	}
	ev.Version = parse("version", f.version)
	ev.CreatedAt = parse("created_at", f.createdAt)
	ev.StateCreatedAt = parse("state_created_at", f.stateCreatedAt)
	return ev, err
}

func seqOfID(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}

func streamEvent(key string, m redis.XMessage) (core.StateEvent, error) {
	var f eventFields
	for k, v := range m.Values {
		s, _ := v.(string)
		f.set(k, s)
	}
	return f.event(key, seqOfID(m.ID))
}

func upperID(atSeq int64) string {
	if atSeq <= 0 {
		return "+"
	}
	return strconv.FormatInt(atSeq, 10) + "-0"
}

// StateEventsAt returns each key's newest event within the bounds (nil where none).
func (s *Store) StateEventsAt(ctx context.Context, project string, keys []string, atSeq, atTime int64) ([]*core.StateEvent, error) {
	const op = "redisstore.StateEventsAt"
	out := make([]*core.StateEvent, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.XRevRangeN(ctx, stateKey(project, k), upperID(atSeq), "-", 1)
	}
	if err := s.co.exec(ctx, pipe); err != nil && !errors.Is(err, redis.Nil) {
		return nil, core.Internal(op, err)
	}
	for i, cmd := range cmds {
		msgs := cmd.Val()
		if len(msgs) == 0 {
			continue
		}
		ev, err := streamEvent(keys[i], msgs[0])
		if err != nil {
			return nil, err
		}
		if atTime > 0 && ev.CreatedAt > atTime {
			if out[i], err = s.stateAtTime(ctx, project, keys[i], ev.Sequence, atTime); err != nil {
				return nil, err
			}
			continue
		}
		if atSeq <= 0 {
			s.labelHints.saw(project, ev) // the current state: a hint for the next write
		}
		out[i] = &ev
	}
	return out, nil
}

// currentEvent is StateEventsAt's answer for one key and no bound, from its XREVRANGE reply.
func (s *Store) currentEvent(project, key string, msgs []redis.XMessage) (*core.StateEvent, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	ev, err := streamEvent(key, msgs[0])
	if err != nil {
		return nil, err
	}
	s.labelHints.saw(project, ev)
	return &ev, nil
}

// stateAtTime finds a key's newest event at or below sequence below with created_at <= atTime
// (state_at_time.lua: a binary search, so deep history costs O(log n), one round trip).
func (s *Store) stateAtTime(ctx context.Context, project, key string, below, atTime int64) (*core.StateEvent, error) {
	const op = "redisstore.stateAtTime"
	res, err := stateAtTimeScript.Run(ctx, s.rdb, []string{stateKey(project, key)}, below, atTime).Slice()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, core.Internal(op, err)
	}
	ev, err := decodeEvent(key, res[0].(int64), res[1:])
	if err != nil {
		return nil, core.Internal(op, err)
	}
	return &ev, nil
}

// StateEvents lists a key's events after a sequence, ascending.
func (s *Store) StateEvents(ctx context.Context, project, key string, after int64, limit int) ([]core.StateEvent, error) {
	msgs, err := s.rdb.XRangeN(ctx, stateKey(project, key), strconv.FormatInt(after+1, 10)+"-0", "+", int64(limit)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.StateEvents", err)
	}
	out := make([]core.StateEvent, 0, len(msgs))
	for _, m := range msgs {
		ev, err := streamEvent(key, m)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}

func (s *Store) indexKey(project string, idx core.StateIndex) string {
	switch idx.Kind {
	case "agent":
		return agentIndexKey(project, idx.Value)
	case "tag":
		return tagIndexKey(project, idx.Value)
	}
	return liveIndexKey(project)
}

// IndexedKeys reads an index newest first below a sequence.
func (s *Store) IndexedKeys(ctx context.Context, project string, idx core.StateIndex, before int64, count int) ([]core.IndexedKey, error) {
	max := "+inf"
	if before > 0 {
		max = "(" + strconv.FormatInt(before, 10)
	}
	zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, s.indexKey(project, idx), &redis.ZRangeBy{
		Max: max, Min: "-inf", Count: int64(count),
	}).Result()
	if err != nil {
		return nil, core.Internal("redisstore.IndexedKeys", err)
	}
	out := make([]core.IndexedKey, len(zs))
	for i, z := range zs {
		out[i] = core.IndexedKey{Key: z.Member.(string), Sequence: int64(z.Score)}
	}
	return out, nil
}

// IndexSizes returns each index's cardinality.
func (s *Store) IndexSizes(ctx context.Context, project string, idx []core.StateIndex) ([]int64, error) {
	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(idx))
	for i, x := range idx {
		cmds[i] = pipe.ZCard(ctx, s.indexKey(project, x))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, core.Internal("redisstore.IndexSizes", err)
	}
	out := make([]int64, len(idx))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// LogEntries reads the project log newest first below a sequence.
func (s *Store) LogEntries(ctx context.Context, project string, before int64, count int) ([]core.IndexedKey, error) {
	upper := "+"
	if before > 0 {
		if before <= 1 {
			return nil, nil
		}
		upper = upperID(before - 1)
	}
	msgs, err := s.rdb.XRevRangeN(ctx, logKey(project), upper, "-", int64(count)).Result()
	if err != nil {
		return nil, core.Internal("redisstore.LogEntries", err)
	}
	out := make([]core.IndexedKey, len(msgs))
	for i, m := range msgs {
		k, _ := m.Values["key"].(string)
		out[i] = core.IndexedKey{Key: k, Sequence: seqOfID(m.ID)}
	}
	return out, nil
}
