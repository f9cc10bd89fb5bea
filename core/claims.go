package core

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Claim statuses.
const (
	ClaimPending  = "pending"
	ClaimVerified = "verified"
	ClaimFailed   = "failed"
)

// Evidence kinds (v1).
const (
	EvidenceTextHash   = "text_hash"
	EvidenceJSONValue  = "json_value"
	EvidenceStateEvent = "state_event"
)

// Named limits of claims (v1's).
const (
	MaxSubjectTypeLen  = 100
	MaxSubjectIDLen    = 255
	MaxStatementLen    = 5000
	MaxEvidenceItems   = 50
	MaxEvidenceSrcLen  = 255
	DefaultClaimsLimit = 50
	MaxClaimsLimit     = 100
	MaxLogPage         = 500
	MaxLogExport       = 100_000
)

// Issuer is who created a claim or ran a verification: always the authenticated credential.
type Issuer struct {
	CredentialID string         `json:"credential_id"`
	Kind         CredentialKind `json:"kind" jsonschema:"enum=api_key,enum=capability_token"`
	AgentID      string         `json:"agent_id,omitempty"`
}

func issuerOf(p Principal) Issuer {
	return Issuer{CredentialID: p.CredentialID, Kind: p.Kind, AgentID: p.AgentID}
}

// Evidence is one item backing a claim (compat-v1.md §9.1).
type Evidence struct {
	ID            string          `json:"id"`
	ProjectID     string          `json:"project_id"`
	ClaimID       string          `json:"claim_id"`
	Kind          string          `json:"kind" jsonschema:"enum=text_hash,enum=json_value,enum=state_event"`
	Source        string          `json:"source"`
	Data          json.RawMessage `json:"data" jsonschema_description:"The text (text_hash), the JSON value (json_value) or null (state_event)."`
	Hash          *string         `json:"hash"`
	JSONPath      *string         `json:"json_path"`
	ExpectedValue json.RawMessage `json:"expected_value"`
	CreatedAt     int64           `json:"created_at"`
}

// Claim is an assertion with evidence.
type Claim struct {
	ID          string     `json:"id"`
	ProjectID   string     `json:"project_id"`
	SubjectType string     `json:"subject_type"`
	SubjectID   string     `json:"subject_id"`
	Statement   string     `json:"statement"`
	Status      string     `json:"status" jsonschema:"enum=pending,enum=verified,enum=failed"`
	CreatedAt   int64      `json:"created_at"`
	UpdatedAt   int64      `json:"updated_at"`
	Issuer      Issuer     `json:"issuer" jsonschema_description:"The credential that created the claim."`
	LogSeq      int64      `json:"log_seq" jsonschema_description:"The claims-log entry that records the claim's creation."`
	Evidence    []Evidence `json:"evidence,omitempty"`
}

// ClaimContent is the part of a claim that never changes; the log commits to it.
type ClaimContent struct {
	ID          string     `json:"id"`
	ProjectID   string     `json:"project_id"`
	SubjectType string     `json:"subject_type"`
	SubjectID   string     `json:"subject_id"`
	Statement   string     `json:"statement"`
	CreatedAt   int64      `json:"created_at"`
	Issuer      Issuer     `json:"issuer"`
	Evidence    []Evidence `json:"evidence"`
}

// Content returns the claim's immutable part.
func (c Claim) Content() ClaimContent {
	return ClaimContent{ID: c.ID, ProjectID: c.ProjectID, SubjectType: c.SubjectType, SubjectID: c.SubjectID,
		Statement: c.Statement, CreatedAt: c.CreatedAt, Issuer: c.Issuer, Evidence: c.Evidence}
}

// EvidenceResult is one item's outcome in a verification run.
type EvidenceResult struct {
	EvidenceID string `json:"evidence_id"`
	Kind       string `json:"kind"`
	Source     string `json:"source"`
	Passed     bool   `json:"passed"`
	Message    string `json:"message"`
}

// RunDetails holds a run's per-item results.
type RunDetails struct {
	Results []EvidenceResult `json:"results"`
}

// VerificationRun is one verification of a claim (v1's run object plus the verifier).
type VerificationRun struct {
	ID        string     `json:"id"`
	ProjectID string     `json:"project_id"`
	ClaimID   string     `json:"claim_id"`
	Status    string     `json:"status" jsonschema:"enum=verified,enum=failed"`
	Details   RunDetails `json:"details"`
	CreatedAt int64      `json:"created_at"`
	Verifier  Issuer     `json:"verifier"`
}

// EvidenceInput is one evidence item of a create request.
type EvidenceInput struct {
	Kind          string          `json:"kind" jsonschema:"enum=text_hash,enum=json_value,enum=state_event"`
	Source        string          `json:"source" jsonschema:"minLength=1,maxLength=255" jsonschema_description:"Where the evidence comes from; for state_event, an event sequence (positive integer) or event id."`
	Data          json.RawMessage `json:"data,omitempty" jsonschema_description:"text_hash: the text; json_value: any JSON."`
	Hash          string          `json:"hash,omitempty" jsonschema:"pattern=^[0-9a-fA-F]{64}$" jsonschema_description:"SHA-256 hex (text_hash; state_event: of the event's data bytes)."`
	JSONPath      string          `json:"json_path,omitempty" jsonschema_description:"json_value / state_event: a path such as $.a.b[0]."`
	ExpectedValue json.RawMessage `json:"expected_value,omitempty" jsonschema_description:"json_value / state_event: the value the path must hold."`
}

// CreateClaim is the body of POST /api/v1/claims.
type CreateClaim struct {
	SubjectType string          `json:"subject_type" jsonschema:"minLength=1,maxLength=100"`
	SubjectID   string          `json:"subject_id" jsonschema:"minLength=1,maxLength=255"`
	Statement   string          `json:"statement" jsonschema:"minLength=1,maxLength=5000"`
	Evidence    []EvidenceInput `json:"evidence" jsonschema:"minItems=1,maxItems=50"`
}

// ClaimSubject filters claims by subject: an empty field matches any.
type ClaimSubject struct{ Type, ID string }

// ClaimQuery lists claims.
type ClaimQuery struct {
	Limit       int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=100"`
	Cursor      string `json:"cursor,omitempty" jsonschema_description:"next_cursor of the previous page (\"<created_at>.<id>\")."`
	Order       string `json:"order,omitempty" jsonschema:"enum=asc,enum=desc"`
	SubjectType string `json:"subject_type,omitempty"`
	SubjectID   string `json:"subject_id,omitempty"`
}

// ClaimPage is a page of claims (without evidence, as in v1).
type ClaimPage struct {
	Data       []Claim    `json:"data"`
	Pagination Pagination `json:"pagination"`
}

// RunList is GET /api/v1/claims/{id}/verifications.
type RunList struct {
	Data []VerificationRun `json:"data"`
}

// LogPage is a page of the claims log.
type LogPage struct {
	Data       []ClaimLogEntry `json:"data"`
	Pagination Pagination      `json:"pagination"`
}

// TimeCursor is a decoded "<ms>.<id>" cursor: a position in an ordering by (time, id).
type TimeCursor struct {
	At int64
	ID string
}

// ClaimStore keeps claims, runs and the log.
type ClaimStore interface {
	// ClaimLogHead returns the log's size and head hash ("" when empty).
	ClaimLogHead(ctx context.Context, project string) (int64, string, error)
	// CreateClaim stores the claim and appends entry if the log still has size entries; false
	// when another append won the race (nothing written).
	CreateClaim(ctx context.Context, project string, c Claim, entry ClaimLogEntry, size int64) (bool, error)
	// AddRun stores the run, sets the claim's status and updated_at, and appends entry, under
	// the same condition.
	AddRun(ctx context.Context, project string, run VerificationRun, entry ClaimLogEntry, size int64) (bool, error)
	Claim(ctx context.Context, project, id string) (*Claim, error)
	Runs(ctx context.Context, project, claimID string) ([]VerificationRun, error)
	// ClaimsAfter returns up to n claims after the cursor (nil = from the start) in order,
	// only those about subject where its fields are set (answered from a subject index).
	ClaimsAfter(ctx context.Context, project string, subject ClaimSubject, after *TimeCursor, desc bool, n int) ([]Claim, error)
	ClaimLogEntries(ctx context.Context, project string, afterSeq int64, n int) ([]ClaimLogEntry, error)
	// EventBySequence and EventByID find a state event of the project (nil when there is none).
	EventBySequence(ctx context.Context, project string, seq int64) (*StateEvent, error)
	EventByID(ctx context.Context, project, id string) (*StateEvent, error)
}

// Claims is the claims service.
type Claims struct {
	store  ClaimStore
	clock  Clock
	signer *Signer
}

// NewClaims builds the service; signer signs log checkpoints.
func NewClaims(store ClaimStore, clock Clock, signer *Signer) *Claims {
	return &Claims{store: store, clock: clock, signer: signer}
}

// SigningKey is the published checkpoint key.
func (c *Claims) SigningKey() SigningKey { return c.signer.PublicKey() }

var hashRe = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func validateClaimString(op, path, v string, maxLen int) error {
	switch n := utf8.RuneCountInString(v); {
	case n == 0:
		return BadRequest(op, path, "String must contain at least 1 character(s)")
	case n > maxLen:
		return BadRequest(op, path, fmt.Sprintf("String must contain at most %d character(s)", maxLen))
	}
	return nil
}

// validateEvidence applies v1's rules to one item and returns the stored form.
func validateEvidence(op string, i int, in EvidenceInput) (Evidence, error) {
	at := func(f string) string { return fmt.Sprintf("evidence.%d.%s", i, f) }
	ev := Evidence{Kind: in.Kind, Source: in.Source, Data: json.RawMessage("null"), ExpectedValue: json.RawMessage("null")}
	switch in.Kind {
	case EvidenceTextHash, EvidenceJSONValue, EvidenceStateEvent:
	default:
		return ev, BadRequest(op, at("kind"), "Invalid discriminator value. Expected 'text_hash' | 'json_value' | 'state_event'")
	}
	if err := validateClaimString(op, at("source"), in.Source, MaxEvidenceSrcLen); err != nil {
		return ev, err
	}
	if in.Hash != "" || in.Kind == EvidenceTextHash {
		if !hashRe.MatchString(in.Hash) {
			return ev, BadRequest(op, at("hash"), "hash must be a SHA-256 hex digest")
		}
		h := strings.ToLower(in.Hash)
		ev.Hash = &h
	}
	if in.JSONPath != "" {
		if _, err := ParseJSONPath(op, in.JSONPath); err != nil {
			return ev, BadRequest(op, at("json_path"), "json_path must be a simple JSON path") // v1's text
		}
		jp := in.JSONPath
		ev.JSONPath = &jp
	}
	present := func(r json.RawMessage) bool { return len(bytes.TrimSpace(r)) > 0 }
	compact := func(r json.RawMessage) (json.RawMessage, error) {
		var b bytes.Buffer
		if err := json.Compact(&b, r); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	switch in.Kind {
	case EvidenceTextHash:
		var s string
		if !present(in.Data) || json.Unmarshal(in.Data, &s) != nil {
			return ev, BadRequest(op, at("data"), "Expected string, received "+kindOr(in.Data, "undefined"))
		}
		if s == "" {
			return ev, BadRequest(op, at("data"), "String must contain at least 1 character(s)")
		}
		ev.Data, _ = compact(in.Data)
	case EvidenceJSONValue:
		if !present(in.Data) {
			return ev, BadRequest(op, at("data"), "Required")
		}
		if ev.JSONPath == nil {
			return ev, BadRequest(op, at("json_path"), "Required")
		}
		if !present(in.ExpectedValue) {
			return ev, BadRequest(op, at("expected_value"), "Required")
		}
		ev.Data, _ = compact(in.Data)
		ev.ExpectedValue, _ = compact(in.ExpectedValue)
	case EvidenceStateEvent:
		if ev.Hash == nil && (ev.JSONPath == nil || !present(in.ExpectedValue)) {
			return ev, BadRequest(op, at("hash"), "state_event evidence requires hash or json_path with expected_value")
		}
		if present(in.ExpectedValue) {
			ev.ExpectedValue, _ = compact(in.ExpectedValue)
		}
	}
	return ev, nil
}

func kindOr(raw json.RawMessage, missing string) string {
	if len(bytes.TrimSpace(raw)) == 0 {
		return missing
	}
	return JSONKind(raw)
}

// appendLog writes through fn while the log head it read is still the head: a chain needs each
// entry to name its predecessor, and Redis scripts cannot hash with SHA-256, so the hash is
// computed here and the store refuses a stale head. Contended appends retry.
func (c *Claims) appendLog(ctx context.Context, op, project string, e ClaimLogEntry, content any,
	write func(e ClaimLogEntry, size int64) (bool, error)) (ClaimLogEntry, error) {
	var err error
	if e.ContentHash, err = ContentHash(content); err != nil {
		return e, Internal(op, err)
	}
	for range maxLogAppendRetries {
		size, head, err := c.store.ClaimLogHead(ctx, project)
		if err != nil {
			return e, Internal(op, err)
		}
		if head == "" {
			head = GenesisHash
		}
		e.Seq, e.PrevHash = size+1, head
		if e.Hash, err = e.ComputeHash(); err != nil {
			return e, Internal(op, err)
		}
		ok, err := write(e, size)
		if err != nil {
			return e, Internal(op, err)
		}
		if ok {
			return e, nil
		}
	}
	return e, E(op, CodeServiceUnavailable, "The claims log is busy; retry")
}

// maxLogAppendRetries bounds the compare-and-append loop; each round one contender wins.
const maxLogAppendRetries = 1000

// Create records a claim, pending, with its evidence, and logs it.
func (c *Claims) Create(ctx context.Context, p Principal, in CreateClaim) (Claim, error) {
	const op = "core.Claims.Create"
	if err := p.Authorize(OpClaimCreate); err != nil {
		return Claim{}, err
	}
	if err := validateClaimString(op, "subject_type", in.SubjectType, MaxSubjectTypeLen); err != nil {
		return Claim{}, err
	}
	if err := validateClaimString(op, "subject_id", in.SubjectID, MaxSubjectIDLen); err != nil {
		return Claim{}, err
	}
	if err := validateClaimString(op, "statement", in.Statement, MaxStatementLen); err != nil {
		return Claim{}, err
	}
	switch {
	case len(in.Evidence) == 0:
		return Claim{}, BadRequest(op, "evidence", "Array must contain at least 1 element(s)")
	case len(in.Evidence) > MaxEvidenceItems:
		return Claim{}, BadRequest(op, "evidence", fmt.Sprintf("Array must contain at most %d element(s)", MaxEvidenceItems))
	}
	if err := p.RequireResource(op, in.SubjectID); err != nil {
		return Claim{}, err
	}
	now := NowMs(c.clock)
	cl := Claim{ID: NewID(), ProjectID: p.ProjectID, SubjectType: in.SubjectType, SubjectID: in.SubjectID,
		Statement: in.Statement, Status: ClaimPending, CreatedAt: now, UpdatedAt: now, Issuer: issuerOf(p)}
	for i, item := range in.Evidence {
		ev, err := validateEvidence(op, i, item)
		if err != nil {
			return Claim{}, err
		}
		ev.ID, ev.ProjectID, ev.ClaimID, ev.CreatedAt = NewID(), p.ProjectID, cl.ID, now
		cl.Evidence = append(cl.Evidence, ev)
	}
	entry := ClaimLogEntry{Type: LogClaimCreated, ClaimID: cl.ID, At: now}
	_, err := c.appendLog(ctx, op, p.ProjectID, entry, cl.Content(), func(e ClaimLogEntry, size int64) (bool, error) {
		cl.LogSeq = e.Seq
		return c.store.CreateClaim(ctx, p.ProjectID, cl, e, size)
	})
	if err != nil {
		return Claim{}, err
	}
	return cl, nil
}

// Get returns a claim with its evidence.
func (c *Claims) Get(ctx context.Context, p Principal, id string) (Claim, error) {
	const op = "core.Claims.Get"
	if err := p.Authorize(OpClaimGet); err != nil {
		return Claim{}, err
	}
	return c.load(ctx, op, p, id)
}

func (c *Claims) load(ctx context.Context, op string, p Principal, id string) (Claim, error) {
	cl, err := c.store.Claim(ctx, p.ProjectID, id)
	if err != nil {
		return Claim{}, Internal(op, err)
	}
	if cl == nil || !p.CanTouch(cl.SubjectID) {
		return Claim{}, E(op, CodeNotFound, MsgClaimNotFound)
	}
	return *cl, nil
}

// Verify re-checks every evidence item now, records the run and logs it.
func (c *Claims) Verify(ctx context.Context, p Principal, id string) (VerificationRun, error) {
	const op = "core.Claims.Verify"
	if err := p.Authorize(OpClaimVerify); err != nil {
		return VerificationRun{}, err
	}
	cl, err := c.load(ctx, op, p, id)
	if err != nil {
		return VerificationRun{}, err
	}
	run := VerificationRun{ID: NewID(), ProjectID: p.ProjectID, ClaimID: id, CreatedAt: NowMs(c.clock),
		Verifier: issuerOf(p), Details: RunDetails{Results: []EvidenceResult{}}}
	passed := len(cl.Evidence) > 0
	for _, ev := range cl.Evidence {
		ok, msg, err := c.check(ctx, p.ProjectID, ev)
		if err != nil {
			return VerificationRun{}, Internal(op, err)
		}
		passed = passed && ok
		run.Details.Results = append(run.Details.Results, EvidenceResult{EvidenceID: ev.ID, Kind: ev.Kind, Source: ev.Source, Passed: ok, Message: msg})
	}
	run.Status = ClaimFailed
	if passed {
		run.Status = ClaimVerified
	}
	entry := ClaimLogEntry{Type: LogClaimVerified, ClaimID: id, RunID: run.ID, At: run.CreatedAt}
	_, err = c.appendLog(ctx, op, p.ProjectID, entry, run, func(e ClaimLogEntry, size int64) (bool, error) {
		return c.store.AddRun(ctx, p.ProjectID, run, e, size)
	})
	if err != nil {
		return VerificationRun{}, err
	}
	return run, nil
}

// check evaluates one evidence item with v1's result messages.
func (c *Claims) check(ctx context.Context, project string, ev Evidence) (bool, string, error) {
	switch ev.Kind {
	case EvidenceTextHash:
		var s string
		_ = json.Unmarshal(ev.Data, &s)
		if SHA256Hex([]byte(s)) == *ev.Hash {
			return true, "hash matched", nil
		}
		return false, "hash mismatch", nil
	case EvidenceJSONValue:
		return jsonValueCheck(ev, ev.Data, "")
	}
	var se *StateEvent
	var err error
	if seq, perr := strconv.ParseInt(ev.Source, 10, 64); perr == nil && seq > 0 {
		se, err = c.store.EventBySequence(ctx, project, seq)
	} else {
		se, err = c.store.EventByID(ctx, project, ev.Source)
	}
	if err != nil {
		return false, "", err
	}
	if se == nil {
		return false, "state event not found", nil
	}
	data := se.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	if ev.Hash != nil {
		// The stored bytes are the client's own (compact, key order kept): v1's hash rule.
		if SHA256Hex(data) == *ev.Hash {
			return true, "state event hash matched", nil
		}
		return false, "state event hash mismatch", nil
	}
	return jsonValueCheck(ev, data, "state event ")
}

func jsonValueCheck(ev Evidence, doc json.RawMessage, prefix string) (bool, string, error) {
	jp, err := ParseJSONPath("core.Claims.check", *ev.JSONPath)
	if err != nil {
		return false, prefix + "json path did not resolve", nil
	}
	v, ok := jp.Lookup(doc)
	if !ok {
		return false, prefix + "json path did not resolve", nil
	}
	if JSONEqual(v, ev.ExpectedValue) {
		return true, prefix + "json value matched", nil
	}
	return false, prefix + "json value mismatch", nil
}

// ParseTimeCursor reads "<ms>.<id>" (a bare number is accepted, as in v1).
func ParseTimeCursor(op, s string) (*TimeCursor, error) {
	if s == "" {
		return nil, nil
	}
	ms, id, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || n <= 0 {
		return nil, E(op, CodeInvalidCursor, "Cursor must be a valid positive number (Unix timestamp in milliseconds)")
	}
	return &TimeCursor{At: n, ID: id}, nil
}

// claimScanPages bounds how many store pages one list reads when the credential may see only
// some subjects; past it the page ends early with a cursor, so nothing is skipped.
const claimScanPages = 20

// List pages through claims, newest first by default, optionally by subject (from the subject
// index, so a match behind any number of other claims is found).
func (c *Claims) List(ctx context.Context, p Principal, q ClaimQuery) (ClaimPage, error) {
	const op = "core.Claims.List"
	if err := p.Authorize(OpClaimList); err != nil {
		return ClaimPage{}, err
	}
	cur, err := ParseTimeCursor(op, q.Cursor)
	if err != nil {
		return ClaimPage{}, err
	}
	limit := ClampLimit(q.Limit, DefaultClaimsLimit, MaxClaimsLimit)
	desc := q.Order != "asc"
	subject := ClaimSubject{Type: q.SubjectType, ID: q.SubjectID}
	out := []Claim{}
	more := true // the index may hold claims past cur
	for range claimScanPages {
		batch, err := c.store.ClaimsAfter(ctx, p.ProjectID, subject, cur, desc, limit)
		if err != nil {
			return ClaimPage{}, Internal(op, err)
		}
		for _, cl := range batch {
			cur = &TimeCursor{At: cl.CreatedAt, ID: cl.ID}
			if !p.CanTouch(cl.SubjectID) {
				continue
			}
			cl.Evidence = nil
			if out = append(out, cl); len(out) == limit {
				break
			}
		}
		if len(out) == limit {
			break
		}
		if len(batch) < limit {
			more = false
			break
		}
	}
	page := ClaimPage{Data: out, Pagination: Pagination{Limit: len(out)}}
	if more && cur != nil {
		s := fmt.Sprintf("%d.%s", cur.At, cur.ID)
		page.Pagination.NextCursor = &s
	}
	return page, nil
}

// Runs lists a claim's verification runs, oldest first.
func (c *Claims) Runs(ctx context.Context, p Principal, id string) (RunList, error) {
	const op = "core.Claims.Runs"
	if err := p.Authorize(OpClaimRuns); err != nil {
		return RunList{}, err
	}
	if _, err := c.load(ctx, op, p, id); err != nil {
		return RunList{}, err
	}
	runs, err := c.store.Runs(ctx, p.ProjectID, id)
	if err != nil {
		return RunList{}, Internal(op, err)
	}
	return RunList{Data: runs}, nil
}

// requireWholeLog: the log carries every claim of the project, so a credential limited to some
// subjects may not read it.
func requireWholeLog(o Operation, p Principal) error {
	if err := p.Authorize(o); err != nil {
		return err
	}
	if p.Resources != nil {
		return E(o.Name, CodeForbidden, "The claims log holds every subject; this credential is limited to some state keys")
	}
	return nil
}

// Log pages through the chain, oldest first.
func (c *Claims) Log(ctx context.Context, p Principal, after int64, limit int) (LogPage, error) {
	const op = "core.Claims.Log"
	if err := requireWholeLog(OpClaimLog, p); err != nil {
		return LogPage{}, err
	}
	if err := CheckSequenceCursor(op, after); err != nil {
		return LogPage{}, err
	}
	entries, err := c.store.ClaimLogEntries(ctx, p.ProjectID, after, ClampLimit(limit, DefaultClaimsLimit, MaxLogPage))
	if err != nil {
		return LogPage{}, Internal(op, err)
	}
	page := LogPage{Data: entries, Pagination: Pagination{Limit: len(entries)}}
	if len(entries) > 0 {
		s := strconv.FormatInt(entries[len(entries)-1].Seq, 10)
		page.Pagination.NextCursor = &s
	}
	return page, nil
}

// Checkpoint signs the log's current head.
func (c *Claims) Checkpoint(ctx context.Context, p Principal) (Checkpoint, error) {
	const op = "core.Claims.Checkpoint"
	if err := p.Authorize(OpClaimCheckpoint); err != nil {
		return Checkpoint{}, err
	}
	return c.checkpoint(ctx, op, p.ProjectID)
}

func (c *Claims) checkpoint(ctx context.Context, op, project string) (Checkpoint, error) {
	size, head, err := c.store.ClaimLogHead(ctx, project)
	if err != nil {
		return Checkpoint{}, Internal(op, err)
	}
	if head == "" {
		head = GenesisHash
	}
	return c.signer.Sign(Checkpoint{ProjectID: project, Size: size, HeadHash: head, At: NowMs(c.clock)}), nil
}

// Export returns the whole log with a checkpoint over it, for the offline verifier.
func (c *Claims) Export(ctx context.Context, p Principal) (LogExport, error) {
	const op = "core.Claims.Export"
	if err := requireWholeLog(OpClaimExport, p); err != nil {
		return LogExport{}, err
	}
	cp, err := c.checkpoint(ctx, op, p.ProjectID)
	if err != nil {
		return LogExport{}, err
	}
	if cp.Size > MaxLogExport {
		return LogExport{}, &Error{Op: op, Code: CodePayloadTooLarge,
			Message: fmt.Sprintf("The log has %d entries; export pages of GET /api/v1/claims/log instead (at most %d here)", cp.Size, MaxLogExport)}
	}
	entries, err := c.entriesThrough(ctx, op, p.ProjectID, 0, cp.Size)
	if err != nil {
		return LogExport{}, err
	}
	return LogExport{Entries: entries, Checkpoint: cp, PublicKey: c.signer.PublicKey()}, nil
}

// entriesThrough reads entries after..through (inclusive) so they end exactly at a checkpoint.
func (c *Claims) entriesThrough(ctx context.Context, op, project string, after, through int64) ([]ClaimLogEntry, error) {
	out := []ClaimLogEntry{}
	for after < through {
		batch, err := c.store.ClaimLogEntries(ctx, project, after, int(min(through-after, MaxLogPage)))
		if err != nil {
			return nil, Internal(op, err)
		}
		if len(batch) == 0 {
			break
		}
		out = append(out, batch...)
		after = batch[len(batch)-1].Seq
	}
	return out, nil
}

// Bundle is the portable proof of one claim.
func (c *Claims) Bundle(ctx context.Context, p Principal, id string) (ClaimBundle, error) {
	const op = "core.Claims.Bundle"
	if err := p.Authorize(OpClaimBundle); err != nil {
		return ClaimBundle{}, err
	}
	cl, err := c.load(ctx, op, p, id)
	if err != nil {
		return ClaimBundle{}, err
	}
	runs, err := c.store.Runs(ctx, p.ProjectID, id)
	if err != nil {
		return ClaimBundle{}, Internal(op, err)
	}
	cp, err := c.checkpoint(ctx, op, p.ProjectID)
	if err != nil {
		return ClaimBundle{}, err
	}
	entries, err := c.entriesThrough(ctx, op, p.ProjectID, cl.LogSeq-1, cp.Size)
	if err != nil {
		return ClaimBundle{}, err
	}
	return ClaimBundle{Claim: cl, Runs: runs, Entries: entries, Checkpoint: cp, PublicKey: c.signer.PublicKey()}, nil
}
