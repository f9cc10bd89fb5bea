package core

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// StateQuery is the body of POST /api/v1/states/query (compat-v1.md §6.6).
type StateQuery struct {
	AgentID       string          `json:"agent_id,omitempty" jsonschema_description:"Only states last written by this agent."`
	Tags          []string        `json:"tags,omitempty" jsonschema:"maxItems=50,minLength=1,maxLength=128,pattern=^[a-zA-Z0-9_:.-]+$" jsonschema_description:"Only states carrying all of these tags."`
	UpdatedAfter  *int64          `json:"updated_after,omitempty" jsonschema_description:"Only states updated at or after this time (Unix ms)."`
	UpdatedBefore *int64          `json:"updated_before,omitempty" jsonschema:"minimum=1" jsonschema_description:"Only states updated at or before this time (Unix ms)."`
	JSONPath      *string         `json:"json_path,omitempty" jsonschema_description:"A path into data: $ then .name or [index] segments, e.g. $.status or $.items[0].id."`
	JSONEquals    json.RawMessage `json:"json_equals,omitempty" jsonschema_description:"The JSON value json_path must equal (compared as serialised JSON)."`
	Predicates    []Predicate     `json:"predicates,omitempty" jsonschema:"maxItems=10" jsonschema_description:"Further path/equals conditions; all must hold."`
	AtSequence    *int64          `json:"at_sequence,omitempty" jsonschema:"minimum=1" jsonschema_description:"Time travel: states as of this sequence."`
	AtTime        *int64          `json:"at_time,omitempty" jsonschema:"minimum=1" jsonschema_description:"Time travel: states as of this time (Unix ms)."`
	Limit         *int            `json:"limit,omitempty" jsonschema:"minimum=1,maximum=100" jsonschema_description:"Rows per page (default 50)."`
	Cursor        *string         `json:"cursor,omitempty" jsonschema_description:"next_cursor of the previous page."`
}

// Predicate is one JSON-path equality condition on data.
type Predicate struct {
	Path   string          `json:"path" jsonschema_description:"A path into data, as json_path."`
	Equals json.RawMessage `json:"equals,omitempty" jsonschema_description:"The value the path must equal; omitted means the path must be absent."`
}

// StatePage is the query response: v1 has no total.
type StatePage struct {
	Data       []State    `json:"data"`
	Pagination Pagination `json:"pagination"`
}

type compiledPredicate struct {
	path   JSONPath
	equals json.RawMessage
}

type compiledQuery struct {
	agent         string
	tags          []string
	after, before int64 // updated bounds; 0 = none
	preds         []compiledPredicate
	at            At
	limit         int
	cursor        int64
}

func (s *States) compileQuery(op string, q StateQuery) (compiledQuery, error) {
	c := compiledQuery{agent: q.AgentID, limit: s.limits.DefaultQueryLimit}
	if q.Limit != nil {
		switch {
		case *q.Limit < 1:
			return c, BadRequest(op, "limit", "Number must be greater than or equal to 1")
		case *q.Limit > s.limits.MaxQueryLimit:
			return c, BadRequest(op, "limit", fmt.Sprintf("Number must be less than or equal to %d", s.limits.MaxQueryLimit))
		}
		c.limit = *q.Limit
	}
	if q.AgentID != "" {
		if err := s.validateAgentID(op, q.AgentID); err != nil {
			return c, err
		}
	}
	tags, err := s.NormalizeTags(op, q.Tags)
	if err != nil {
		return c, err
	}
	c.tags = tags
	if q.UpdatedAfter != nil {
		c.after = *q.UpdatedAfter
	}
	if q.UpdatedBefore != nil {
		c.before = *q.UpdatedBefore
		if c.before <= 0 {
			return c, BadRequest(op, "updated_before", "updated_before must be a positive time in ms")
		}
	}
	if len(q.Predicates) > s.limits.MaxPredicates {
		return c, BadRequest(op, "predicates", fmt.Sprintf("Array must contain at most %d element(s)", s.limits.MaxPredicates))
	}
	preds := q.Predicates
	if q.JSONPath != nil {
		preds = append(slices.Clone(preds), Predicate{Path: *q.JSONPath, Equals: q.JSONEquals})
	}
	for _, pr := range preds {
		jp, err := ParseJSONPath(op, pr.Path)
		if err != nil {
			return c, err
		}
		c.preds = append(c.preds, compiledPredicate{path: jp, equals: pr.Equals})
	}
	for name, v := range map[string]*int64{"at_sequence": q.AtSequence, "at_time": q.AtTime} {
		if v != nil && *v <= 0 {
			return c, BadRequest(op, name, "Number must be greater than 0")
		}
	}
	if q.AtSequence != nil {
		c.at.Sequence = *q.AtSequence
	}
	if q.AtTime != nil {
		c.at.Time = *q.AtTime
	}
	if q.Cursor != nil {
		n, err := ParseSequenceCursor(op, *q.Cursor)
		if err != nil || n == 0 {
			return c, E(op, CodeInvalidCursor, MsgSequenceCursor)
		}
		c.cursor = n
	}
	return c, nil
}

func (c compiledQuery) matches(st State) bool {
	if c.agent != "" && st.AgentID != c.agent {
		return false
	}
	for _, t := range c.tags {
		if _, ok := slices.BinarySearch(st.Tags, t); !ok {
			return false
		}
	}
	if c.after != 0 && st.UpdatedAt < c.after {
		return false
	}
	if c.before != 0 && st.UpdatedAt > c.before {
		return false
	}
	for _, pr := range c.preds {
		v, ok := pr.path.Lookup(st.Data)
		if !ok {
			v = nil
		}
		if !JSONEqual(v, pr.equals) {
			return false
		}
	}
	return true
}

// Query searches the project's states, newest first. Like v1 it scans a bounded number of
// candidates per call, so a page may be short and still carry a cursor.
func (s *States) Query(ctx context.Context, p Principal, q StateQuery) (StatePage, error) {
	const op = "core.States.Query"
	if err := p.Authorize(OpStateQuery); err != nil {
		return StatePage{}, err
	}
	c, err := s.compileQuery(op, q)
	if err != nil {
		return StatePage{}, err
	}
	var next func(before int64, count int) ([]IndexedKey, error)
	before := c.cursor
	if c.at.IsSet() {
		if c.at.Sequence > 0 && (before == 0 || before > c.at.Sequence) {
			before = c.at.Sequence + 1
		}
		next = func(before int64, count int) ([]IndexedKey, error) {
			return s.store.LogEntries(ctx, p.ProjectID, before, count)
		}
	} else {
		idx, err := s.pickIndex(ctx, p.ProjectID, c)
		if err != nil {
			return StatePage{}, Internal(op, err)
		}
		next = func(before int64, count int) ([]IndexedKey, error) {
			return s.store.IndexedKeys(ctx, p.ProjectID, idx, before, count)
		}
	}
	page := StatePage{Data: []State{}}
	count := c.limit * s.limits.QueryPageFactor
	if c.decidedByIndex(p) {
		count = c.limit // every candidate is a result, short of a write racing this read
	}
	exhausted := false
	for range s.limits.QueryScanPages {
		raw, err := next(before, count)
		if err != nil {
			return StatePage{}, Internal(op, err)
		}
		cands := firstPerKey(raw)
		keys := make([]string, len(cands))
		for i, k := range cands {
			keys[i] = k.Key
		}
		evs, err := s.store.StateEventsAt(ctx, p.ProjectID, keys, c.at.Sequence, c.at.Time)
		if err != nil {
			return StatePage{}, Internal(op, err)
		}
		for i, ev := range evs {
			// A candidate whose newest event is not the one indexed has moved (or, in time
			// travel, is not the key's state at the bound): it is skipped here and, if it
			// still matches, found at its own sequence.
			if ev == nil || ev.Sequence != cands[i].Sequence || ev.EventType == EventDelete || !p.CanTouch(ev.StateKey) {
				continue
			}
			st := ev.State()
			if c.at.IsSet() {
				st.CreatedAt = ev.CreatedAt
			}
			if !c.matches(st) {
				continue
			}
			page.Data = append(page.Data, st)
			if len(page.Data) == c.limit {
				cur := strconv.FormatInt(st.LatestSequence, 10)
				page.Pagination = Pagination{Limit: len(page.Data), NextCursor: &cur}
				return page, nil
			}
		}
		if len(raw) < count {
			exhausted = true
			break
		}
		before = raw[len(raw)-1].Sequence
		if before <= 1 {
			exhausted = true
			break
		}
	}
	page.Pagination.Limit = len(page.Data)
	if !exhausted {
		cur := strconv.FormatInt(before, 10)
		page.Pagination.NextCursor = &cur
	}
	return page, nil
}

// decidedByIndex says whether every key the query's index holds (at its own sequence) is a
// result: then a page reads about limit records, not QueryPageFactor times as many.
func (c compiledQuery) decidedByIndex(p Principal) bool {
	return !c.at.IsSet() && len(c.preds) == 0 && c.after == 0 && c.before == 0 && p.Resources == nil &&
		(len(c.tags) == 0 || (len(c.tags) == 1 && c.agent == ""))
}

// firstPerKey drops later (older) candidates of a key already seen in the same page.
func firstPerKey(cands []IndexedKey) []IndexedKey {
	seen := make(map[string]bool, len(cands))
	out := cands[:0:0]
	for _, c := range cands {
		if !seen[c.Key] {
			seen[c.Key] = true
			out = append(out, c)
		}
	}
	return out
}

// pickIndex chooses the narrowest index that every result must be in.
func (s *States) pickIndex(ctx context.Context, project string, c compiledQuery) (StateIndex, error) {
	if c.agent != "" {
		return StateIndex{Kind: "agent", Value: c.agent}, nil
	}
	if len(c.tags) == 0 {
		return StateIndex{Kind: "live"}, nil
	}
	idx := make([]StateIndex, len(c.tags))
	for i, t := range c.tags {
		idx[i] = StateIndex{Kind: "tag", Value: t}
	}
	sizes, err := s.store.IndexSizes(ctx, project, idx)
	if err != nil {
		return StateIndex{}, err
	}
	best := 0
	for i, n := range sizes {
		if n < sizes[best] {
			best = i
		}
	}
	return idx[best], nil
}
