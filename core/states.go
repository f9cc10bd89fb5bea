package core

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/agentstate/agentstate-go/internal/jsonx"
)

// Event types of the state log.
const (
	EventUpsert = "upsert"
	EventDelete = "delete"
)

// State is the state object of compat-v1.md §6.1 plus this project's per-key version.
type State struct {
	StateKey       string          `json:"state_key"`
	AgentID        string          `json:"agent_id"`
	Data           json.RawMessage `json:"data" jsonschema:"type=object"`
	Metadata       json.RawMessage `json:"metadata" jsonschema:"oneof_type=object;null"`
	Tags           []string        `json:"tags"`
	LatestSequence int64           `json:"latest_sequence" jsonschema_description:"Sequence of the key's last event; per project and only increasing."`
	Version        int64           `json:"version" jsonschema_description:"Per-key version: 1 on first write and +1 on every write (deletes included)."`
	FencingToken   *int64          `json:"fencing_token" jsonschema:"oneof_type=integer;null" jsonschema_description:"Fencing token the last write was made under (presented or that of the lease used); null if none."`
	CreatedAt      int64           `json:"created_at"`
	UpdatedAt      int64           `json:"updated_at"`
	DeletedAt      *int64          `json:"deleted_at" jsonschema:"oneof_type=integer;null"`
}

// StateEvent is one entry of a key's append-only log.
type StateEvent struct {
	Sequence       int64           `json:"sequence"`
	ID             string          `json:"id"`
	StateKey       string          `json:"state_key"`
	AgentID        string          `json:"agent_id"`
	EventType      string          `json:"event_type" jsonschema:"enum=upsert,enum=delete"`
	Data           json.RawMessage `json:"data" jsonschema:"oneof_type=object;null"`
	Metadata       json.RawMessage `json:"metadata" jsonschema:"oneof_type=object;null"`
	Tags           []string        `json:"tags"`
	IdempotencyKey *string         `json:"idempotency_key" jsonschema:"oneof_type=string;null"`
	Version        int64           `json:"version"`
	FencingToken   *int64          `json:"fencing_token" jsonschema:"oneof_type=integer;null"`
	CreatedAt      int64           `json:"created_at"`
	StateCreatedAt int64           `json:"-"` // created_at of the state, kept across delete and re-create
}

// State is the state as this event left it (for a delete: as it was, with deleted_at set).
func (e StateEvent) State() State {
	s := State{
		StateKey: e.StateKey, AgentID: e.AgentID, Data: e.Data, Metadata: e.Metadata, Tags: e.Tags,
		LatestSequence: e.Sequence, Version: e.Version, FencingToken: e.FencingToken,
		CreatedAt: e.StateCreatedAt, UpdatedAt: e.CreatedAt,
	}
	if e.EventType == EventDelete {
		at := e.CreatedAt
		s.DeletedAt = &at
	}
	return s
}

// StateWrite is the body of PUT /api/v1/states/{state_key}.
type StateWrite struct {
	AgentID         string          `json:"agent_id" jsonschema:"minLength=1,maxLength=255" jsonschema_description:"The agent making the write; recorded on the state and its event."`
	Data            json.RawMessage `json:"data" jsonschema:"type=object" jsonschema_description:"A JSON object, stored as sent (compacted, key order kept)."`
	Metadata        json.RawMessage `json:"metadata,omitempty" jsonschema:"oneof_type=object;null" jsonschema_description:"Optional free-form object; omitted means null (writes replace fully)."`
	Tags            []string        `json:"tags,omitempty" jsonschema:"maxItems=50,minLength=1,maxLength=128,pattern=^[a-zA-Z0-9_:.-]+$" jsonschema_description:"Up to 50 tags of 1..128 characters [a-zA-Z0-9_:.-] (v1's LangGraph checkpointers write agentstate:thread:<uuid>); stored sorted and unique."`
	LeaseID         string          `json:"lease_id,omitempty" jsonschema_description:"Id of the live lease on this key; required while one is held."`
	ExpectedVersion *int64          `json:"expected_version,omitempty" jsonschema:"minimum=0" jsonschema_description:"Write only if the current version equals this (0 = only if absent); else 409 VERSION_CONFLICT with the current state."`
	FencingToken    *int64          `json:"fencing_token,omitempty" jsonschema:"minimum=1" jsonschema_description:"Your lease's fencing token: refused (409 STALE_FENCING_TOKEN) unless it is the key's latest."`
}

// PutState is a validated-at-core request to create or replace a state.
type PutState struct {
	Key            string
	Body           StateWrite
	IdempotencyKey string
	IfMatch        *int64 // from an If-Match header; must agree with Body.ExpectedVersion when both are set
	CreateOnly     bool   // If-None-Match: *
}

// DeleteState is a request to soft-delete a state.
type DeleteState struct {
	Key             string
	LeaseID         string
	FencingToken    *int64
	IdempotencyKey  string
	ExpectedVersion *int64
	// AgentID is the agent the delete event is recorded under; "" = the credential's bound
	// agent, else (v1) the state's last writer.
	AgentID string
}

// DeleteResult is the v1 DELETE response.
type DeleteResult struct {
	Deleted bool       `json:"deleted"`
	Event   StateEvent `json:"event"`
}

// StateMutation is one atomic write handed to the store.
type StateMutation struct {
	Op              string // EventUpsert or EventDelete
	Key             string
	EventID         string
	AgentID         string
	Data            json.RawMessage
	Metadata        json.RawMessage
	Tags            []string
	IdempotencyKey  string
	Fingerprint     string
	ExpectedVersion *int64 // nil: unconditional; 0: the state must not exist
	LeaseID         string
	FencingToken    *int64
	NowMs           int64
	Writer          LeaseWriter // who writes: decides whether it may write under the live lease
	// Admission, when set, is the deferred admission the store checks first, in the same step:
	// refused, nothing is written and the store answers ErrNotAdmitted.
	Admission *AdmissionCheck
}

// LeaseWriter is what a state write tells the store about its credential.
type LeaseWriter struct {
	CredentialID string
	FullAccess   bool
}

// StateIndex names a store index of live states ordered by latest sequence.
type StateIndex struct {
	Kind  string // "live", "agent" or "tag"
	Value string
}

// IndexedKey is a candidate from an index: a key with the sequence the index holds for it.
type IndexedKey struct {
	Key      string
	Sequence int64
}

// StateStore is what the States service needs from storage.
type StateStore interface {
	// MutateState applies m atomically: idempotency, lease guard, version check, sequence,
	// event and indexes. replayed is true when an idempotency record answered instead.
	MutateState(ctx context.Context, project string, m StateMutation) (ev StateEvent, replayed bool, err error)
	// StateEventsAt returns, for each key, its latest event with sequence <= atSeq and
	// created_at <= atTime (0 = unbounded), or nil when there is none.
	StateEventsAt(ctx context.Context, project string, keys []string, atSeq, atTime int64) ([]*StateEvent, error)
	// StateEvents lists a key's events with sequence > after, ascending.
	StateEvents(ctx context.Context, project, key string, after int64, limit int) ([]StateEvent, error)
	// IndexedKeys reads an index newest first, from sequences < before (0 = from the top).
	IndexedKeys(ctx context.Context, project string, idx StateIndex, before int64, count int) ([]IndexedKey, error)
	// IndexSizes returns the number of entries of each index.
	IndexSizes(ctx context.Context, project string, idx []StateIndex) ([]int64, error)
	// LogEntries reads the project's event log newest first, from sequences < before (0 = top).
	LogEntries(ctx context.Context, project string, before int64, count int) ([]IndexedKey, error)
}

// States is the States service: every rule about states lives here or in the store's script.
type States struct {
	store  StateStore
	clock  Clock
	limits Limits
}

// NewStates builds the service.
func NewStates(store StateStore, clock Clock, limits Limits) *States {
	return &States{store: store, clock: clock, limits: limits}
}

// Limits returns the limits the service enforces.
func (s *States) Limits() Limits { return s.limits }

// TagRule is what a tag may be. Conversation tags keep v1's rule; state tags also allow ':'
// and '.' and up to 128 characters, because v1's own LangGraph checkpointers and AI-SDK stores
// write state tags such as agentstate:thread:<uuid> (a v1-valid tag is valid under both).
type TagRule struct {
	re     *regexp.Regexp
	MaxLen int
	msg    string // the message for a tag with other characters
}

var (
	StateTags        = TagRule{regexp.MustCompile(`^[a-zA-Z0-9_:.-]+$`), 128, MsgStateTagChars}
	ConversationTags = TagRule{regexp.MustCompile(`^[a-zA-Z0-9_-]+$`), 50, MsgTagChars}
)

// Valid reports whether t is a tag under the rule.
func (r TagRule) Valid(t string) bool {
	return len(t) >= 1 && len(t) <= r.MaxLen && r.re.MatchString(t)
}

// Check returns the v1-worded 400 for a tag the rule refuses (path names the field).
func (r TagRule) Check(op, path, t string) error {
	switch {
	case t == "":
		return BadRequest(op, path, "String must contain at least 1 character(s)")
	case len(t) > r.MaxLen:
		return BadRequest(op, path, fmt.Sprintf("String must contain at most %d character(s)", r.MaxLen))
	case !r.re.MatchString(t):
		return BadRequest(op, path, r.msg)
	}
	return nil
}

func BadRequest(op, path, msg string) *Error {
	e := E(op, CodeBadRequest, msg)
	if path != "" {
		e.Details = map[string]string{"path": path}
	}
	return e
}

// EnumCheck refuses a value outside allowed with v1's zod message.
func EnumCheck(op, path, v string, allowed ...string) error {
	if slices.Contains(allowed, v) {
		return nil
	}
	return BadRequest(op, path, fmt.Sprintf("Invalid enum value. Expected '%s', received '%s'", strings.Join(allowed, "' | '"), v))
}

// validateStateKey bounds a state key; leases and claims name keys too.
func validateStateKey(op, key string) error {
	switch {
	case key == "":
		return BadRequest(op, "state_key", "state_key must not be empty")
	case len(key) > MaxStateKeyBytes:
		return BadRequest(op, "state_key", fmt.Sprintf("state_key must be at most %d bytes", MaxStateKeyBytes))
	case !utf8.ValidString(key):
		return BadRequest(op, "state_key", "state_key must be valid UTF-8")
	}
	return nil
}

// JSONKind names a JSON value's type the way zod does in "Expected object, received …".
func JSONKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "undefined"
	}
	switch t[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// compactObject checks raw is a JSON object and returns its compact bytes (key order kept).
func compactObject(op, path string, raw json.RawMessage) (json.RawMessage, error) {
	if kind := JSONKind(raw); kind != "object" {
		if kind == "undefined" {
			return nil, BadRequest(op, path, path+" is required")
		}
		return nil, BadRequest(op, path, "Expected object, received "+kind)
	}
	if !hasSpaceBetweenTokens(raw) {
		// Nearly every body is compact already: checking it is cheaper than copying it.
		if !jsonx.Valid(raw) {
			return nil, BadRequest(op, path, "Invalid JSON body")
		}
		return raw, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, BadRequest(op, path, "Invalid JSON body")
	}
	return buf.Bytes(), nil
}

// hasSpaceBetweenTokens reports whether raw has whitespace outside its strings, the only
// thing json.Compact would remove from valid JSON (an invalid text may answer either way).
func hasSpaceBetweenTokens(raw []byte) bool {
	inString := false
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case inString:
			if c == '\\' {
				i++ // the escaped byte is never a quote that ends the string
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return true
		}
	}
	return false
}

// NormalizeTags validates state tags and returns them sorted and unique.
func (s *States) NormalizeTags(op string, tags []string) ([]string, error) {
	return NormalizeTags(op, tags, s.limits.MaxTags, StateTags)
}

// NormalizeTags validates tags under rule (shared by states and conversations) and returns
// them sorted and unique.
func NormalizeTags(op string, tags []string, maxTags int, rule TagRule) ([]string, error) {
	if len(tags) > maxTags {
		return nil, BadRequest(op, "tags", fmt.Sprintf("Array must contain at most %d element(s)", maxTags))
	}
	for i, t := range tags {
		if err := rule.Check(op, fmt.Sprintf("tags[%d]", i), t); err != nil {
			return nil, err
		}
	}
	out := slices.Clone(tags)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out, nil
}

func (s *States) validateIdempotencyKey(op, k string) error {
	if len(k) > s.limits.MaxIdempotencyKeyLen {
		return BadRequest(op, "Idempotency-Key", fmt.Sprintf("Idempotency-Key must be at most %d characters", s.limits.MaxIdempotencyKeyLen))
	}
	return nil
}

func (s *States) validateAgentID(op, agent string) error {
	switch {
	case agent == "":
		return BadRequest(op, "agent_id", "agent_id is required (1..255 characters)")
	case utf8.RuneCountInString(agent) > s.limits.MaxAgentIDLen:
		return BadRequest(op, "agent_id", fmt.Sprintf("String must contain at most %d character(s)", s.limits.MaxAgentIDLen))
	}
	return nil
}

// expectedVersion merges the If-Match header and the body's expected_version.
func expectedVersion(op string, header, body *int64, createOnly bool) (*int64, error) {
	v := body
	if header != nil {
		if body != nil && *body != *header {
			return nil, BadRequest(op, "expected_version", "If-Match and expected_version disagree")
		}
		v = header
	}
	if v != nil && *v < 0 {
		return nil, BadRequest(op, "expected_version", "expected_version must be >= 0")
	}
	if createOnly {
		if v != nil && *v != 0 {
			return nil, BadRequest(op, "expected_version", "If-None-Match: * cannot be combined with a non-zero expected version")
		}
		zero := int64(0)
		v = &zero
	}
	return v, nil
}

// fingerprint is v1's idempotency request hash: SHA-256 of "<METHOD>:<key>:" + validated body.
func fingerprint(method, key string, body any) string {
	b, _ := json.Marshal(body)
	return SHA256Hex(append([]byte(method+":"+key+":"), b...))
}

// Put creates or fully replaces a state.
func (s *States) Put(ctx context.Context, p Principal, in PutState) (State, bool, error) {
	const op = "core.States.Put"
	if err := p.Authorize(OpStatePut); err != nil {
		return State{}, false, err
	}
	b := in.Body
	if err := validateStateKey(op, in.Key); err != nil {
		return State{}, false, err
	}
	if err := p.RequireResource(op, in.Key); err != nil {
		return State{}, false, err
	}
	if p.AgentID != "" && b.AgentID == "" {
		b.AgentID = p.AgentID
	}
	if err := s.validateAgentID(op, b.AgentID); err != nil {
		return State{}, false, err
	}
	if p.AgentID != "" && b.AgentID != p.AgentID {
		return State{}, false, E(op, CodeForbidden, MsgBoundAgent+p.AgentID)
	}
	data, err := compactObject(op, "data", b.Data)
	if err != nil {
		return State{}, false, err
	}
	var meta json.RawMessage
	if len(b.Metadata) > 0 && JSONKind(b.Metadata) != "null" {
		if meta, err = compactObject(op, "metadata", b.Metadata); err != nil {
			return State{}, false, err
		}
	}
	if len(data)+len(meta) > s.limits.MaxStateValueBytes {
		return State{}, false, &Error{Op: op, Code: CodePayloadTooLarge,
			Message: fmt.Sprintf("data and metadata together exceed %d bytes", s.limits.MaxStateValueBytes)}
	}
	tags, err := s.NormalizeTags(op, b.Tags)
	if err != nil {
		return State{}, false, err
	}
	if err := s.validateIdempotencyKey(op, in.IdempotencyKey); err != nil {
		return State{}, false, err
	}
	ev, err := expectedVersion(op, in.IfMatch, b.ExpectedVersion, in.CreateOnly)
	if err != nil {
		return State{}, false, err
	}
	m := StateMutation{
		Op: EventUpsert, Key: in.Key, EventID: NewID(), AgentID: b.AgentID, Data: data, Metadata: meta,
		Tags: tags, IdempotencyKey: in.IdempotencyKey, ExpectedVersion: ev, LeaseID: b.LeaseID,
		FencingToken: b.FencingToken, NowMs: NowMs(s.clock), Writer: p.leaseWriter(),
	}
	if in.IdempotencyKey != "" {
		m.Fingerprint = fingerprint("PUT", in.Key, struct {
			AgentID         string          `json:"agent_id"`
			Data            json.RawMessage `json:"data"`
			Metadata        json.RawMessage `json:"metadata"`
			Tags            []string        `json:"tags"`
			LeaseID         string          `json:"lease_id"`
			ExpectedVersion *int64          `json:"expected_version"`
			FencingToken    *int64          `json:"fencing_token"`
		}{b.AgentID, data, meta, tags, b.LeaseID, ev, b.FencingToken})
	}
	event, replayed, again, err := s.mutate(ctx, p, m)
	if again != nil {
		return s.Put(ctx, *again, in)
	}
	if err != nil {
		return State{}, false, Internal(op, err)
	}
	return event.State(), replayed, nil
}

// Delete soft-deletes a state: the log keeps every event and created_at survives a re-create.
func (s *States) Delete(ctx context.Context, p Principal, in DeleteState) (DeleteResult, bool, error) {
	const op = "core.States.Delete"
	if err := p.Authorize(OpStateDelete); err != nil {
		return DeleteResult{}, false, err
	}
	if err := validateStateKey(op, in.Key); err != nil {
		return DeleteResult{}, false, err
	}
	if err := p.RequireResource(op, in.Key); err != nil {
		return DeleteResult{}, false, err
	}
	if err := s.validateIdempotencyKey(op, in.IdempotencyKey); err != nil {
		return DeleteResult{}, false, err
	}
	ev, err := expectedVersion(op, in.ExpectedVersion, nil, false)
	if err != nil {
		return DeleteResult{}, false, err
	}
	if p.AgentID != "" {
		if in.AgentID != "" && in.AgentID != p.AgentID {
			return DeleteResult{}, false, E(op, CodeForbidden, MsgBoundAgent+p.AgentID)
		}
		in.AgentID = p.AgentID
	}
	if in.AgentID != "" {
		if err := s.validateAgentID(op, in.AgentID); err != nil {
			return DeleteResult{}, false, err
		}
	}
	m := StateMutation{
		Op: EventDelete, Key: in.Key, EventID: NewID(), IdempotencyKey: in.IdempotencyKey, AgentID: in.AgentID,
		ExpectedVersion: ev, LeaseID: in.LeaseID, FencingToken: in.FencingToken, NowMs: NowMs(s.clock),
		Writer: p.leaseWriter(),
	}
	if in.IdempotencyKey != "" {
		var lease *string
		if in.LeaseID != "" {
			lease = &in.LeaseID
		}
		m.Fingerprint = fingerprint("DELETE", in.Key, struct {
			LeaseID         *string `json:"lease_id"`
			ExpectedVersion *int64  `json:"expected_version,omitempty"`
			FencingToken    *int64  `json:"fencing_token,omitempty"`
		}{lease, ev, in.FencingToken})
	}
	event, replayed, again, err := s.mutate(ctx, p, m)
	if again != nil {
		return s.Delete(ctx, *again, in)
	}
	if err != nil {
		return DeleteResult{}, false, Internal(op, err)
	}
	return DeleteResult{Deleted: true, Event: event}, replayed, nil
}

// mutate hands m to the store, with p's deferred admission when there is one (admission.go).
// again, when set, is the principal to do the operation over with: the admission was refused
// by the store's check and admitted the long way. A refused admission is err.
func (s *States) mutate(ctx context.Context, p Principal, m StateMutation) (ev StateEvent, replayed bool, again *Principal, err error) {
	m.Admission = p.admissionCheck()
	ev, replayed, err = s.store.MutateState(ctx, p.ProjectID, m)
	if again, refusal := p.checked(ctx, m.Admission, err); refusal != nil || again != nil {
		return StateEvent{}, false, again, refusal
	}
	return ev, replayed, nil, err
}

// At bounds a time-travel read; zero fields are unbounded.
type At struct {
	Sequence int64
	Time     int64
}

// IsSet reports whether any bound is given.
func (a At) IsSet() bool { return a.Sequence > 0 || a.Time > 0 }

// ParseAtParam reads at_sequence / at_time: positive integers, anything else is ignored (v1).
func ParseAtParam(v string) int64 {
	if v == "" {
		return 0 // the usual case: not parsed, since a failed parse allocates its error
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// Get returns the current state, or the state as of a sequence/time bound.
func (s *States) Get(ctx context.Context, p Principal, key string, at At) (State, error) {
	const op = "core.States.Get"
	if err := p.Authorize(OpStateGet); err != nil {
		return State{}, err
	}
	if err := validateStateKey(op, key); err != nil {
		return State{}, err
	}
	if err := p.RequireResource(op, key); err != nil {
		return State{}, err
	}
	if p.AdmissionDeferred() {
		// Left to this read by its face (a 2026-07-28 MCP get_state): the admission is settled
		// here, the current read going out with the credential in the same round trip, as a
		// REST GET's does. What it read is answered only once the credential is admitted.
		var want Prefetch
		if !at.IsSet() {
			want.StateKey = key
		}
		var err error
		if p, _, err = p.settle(ctx, want); err != nil {
			return State{}, err
		}
	}
	var ev *StateEvent
	if r := p.prefetched.State; !at.IsSet() && r.take(p.ProjectID, key) {
		if r.Err != nil {
			return State{}, Internal(op, r.Err)
		}
		ev = r.Event
	} else {
		evs, err := s.store.StateEventsAt(ctx, p.ProjectID, []string{key}, at.Sequence, at.Time)
		if err != nil {
			return State{}, Internal(op, err)
		}
		ev = evs[0]
	}
	if ev == nil || ev.EventType == EventDelete {
		return State{}, E(op, CodeNotFound, MsgStateNotFound)
	}
	st := ev.State()
	if at.IsSet() {
		st.CreatedAt = ev.CreatedAt // v1: a historical read shows the event's time twice
	}
	return st, nil
}

// EventPage is a page of a key's log.
type EventPage struct {
	Data       []StateEvent `json:"data"`
	Pagination Pagination   `json:"pagination"`
}

// Pagination is v1's cursor block; Limit is the number of rows returned where v1 does so.
type Pagination struct {
	Limit      int     `json:"limit"`
	NextCursor *string `json:"next_cursor" jsonschema:"oneof_type=string;null"`
}

// ClampLimit applies v1's clamping: non-positive or absent → def, above max → max.
func ClampLimit(n, def, max int) int {
	if n < 1 {
		return def
	}
	return min(n, max)
}

// Events lists a key's log after a sequence; events of deleted states stay readable.
func (s *States) Events(ctx context.Context, p Principal, key string, after int64, limit int) (EventPage, error) {
	const op = "core.States.Events"
	if err := p.Authorize(OpStateEvents); err != nil {
		return EventPage{}, err
	}
	if err := validateStateKey(op, key); err != nil {
		return EventPage{}, err
	}
	if err := p.RequireResource(op, key); err != nil {
		return EventPage{}, err
	}
	if err := CheckSequenceCursor(op, after); err != nil {
		return EventPage{}, err
	}
	limit = ClampLimit(limit, s.limits.DefaultEventsLimit, s.limits.MaxEventsLimit)
	evs, err := s.store.StateEvents(ctx, p.ProjectID, key, after, limit)
	if err != nil {
		return EventPage{}, Internal(op, err)
	}
	page := EventPage{Data: evs, Pagination: Pagination{Limit: len(evs)}}
	if page.Data == nil {
		page.Data = []StateEvent{}
	}
	if n := len(evs); n > 0 {
		c := strconv.FormatInt(evs[n-1].Sequence, 10)
		page.Pagination.NextCursor = &c
	}
	return page, nil
}

// ParseSequenceCursor parses a sequence cursor; "" means from the start.
func ParseSequenceCursor(op, v string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, E(op, CodeInvalidCursor, MsgSequenceCursor)
	}
	return n, CheckSequenceCursor(op, n)
}

// CheckSequenceCursor refuses a sequence cursor outside 0..MaxCursorSequence.
func CheckSequenceCursor(op string, n int64) error {
	if n < 0 || n > MaxCursorSequence {
		return E(op, CodeInvalidCursor, MsgSequenceCursor)
	}
	return nil
}
