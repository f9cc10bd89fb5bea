package conversations

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/agentstate/agentstate-go/core"
)

// TraceIngest is the body of POST /api/v1/conversations/traces/ingest.
type TraceIngest struct {
	Trace        CreateConversation `json:"trace" jsonschema_description:"external_id, title and metadata of the trace's conversation (messages are ignored)."`
	Observations []MessageInput     `json:"observations" jsonschema:"minItems=1,maxItems=100" jsonschema_description:"Observations: message-like items that need observation_type; role defaults to assistant; parent_message_id may be \"$N\", the N-th item of this batch."`
}

// TraceResult is the ingest response.
type TraceResult struct {
	Conversation Conversation `json:"conversation"`
	Observations []Message    `json:"observations"`
}

// Observation is a node of a trace tree.
type Observation struct {
	Message
	// Left out of the schema: it is recursive, and schemas are inlined.
	Children []*Observation `json:"children" jsonschema:"-"`
}

// Trace is GET /api/v1/conversations/traces/{id}: the conversation and its observation tree.
type Trace struct {
	Conversation
	Observations []*Observation `json:"observations" jsonschema_description:"Root observations by start_time; each node is a message with children: [] of the same shape."`
}

// TracePage is GET /api/v1/conversations/traces.
type TracePage struct {
	Data       []Conversation `json:"data"`
	HasMore    bool           `json:"has_more"`
	NextCursor *string        `json:"next_cursor"`
}

// IngestTrace stores a trace as a conversation whose messages are observations, resolving
// "$N" parent references to the ids of this batch.
func (c *Service) IngestTrace(ctx context.Context, p core.Principal, in TraceIngest) (TraceResult, error) {
	const op = "conversations.IngestTrace"
	if err := p.Authorize(core.OpTraceIngest); err != nil {
		return TraceResult{}, err
	}
	switch {
	case len(in.Observations) == 0:
		return TraceResult{}, core.BadRequest(op, "observations", "Array must contain at least 1 element(s)")
	case len(in.Observations) > MaxTraceObservations:
		return TraceResult{}, core.BadRequest(op, "observations", fmt.Sprintf("Array must contain at most %d element(s)", MaxTraceObservations))
	}
	for i, o := range in.Observations {
		if o.ObservationType == nil {
			return TraceResult{}, core.BadRequest(op, fmt.Sprintf("observations.%d.observation_type", i), "Required")
		}
	}
	now := core.NowMs(c.clock)
	in.Trace.Messages = in.Observations
	conv, msgs, err := c.newConversation(op, p, in.Trace, now, "assistant")
	if err != nil {
		return TraceResult{}, err
	}
	for i := range msgs {
		ref := msgs[i].ParentMessageID
		if ref == nil || !strings.HasPrefix(*ref, "$") {
			continue
		}
		n, err := strconv.Atoi((*ref)[1:])
		if err != nil || n < 1 || n > len(msgs) || n == i+1 {
			continue // v1 stores a reference it cannot resolve as written (the node becomes a root)
		}
		id := msgs[n-1].ID
		msgs[i].ParentMessageID = &id
	}
	if err := c.write(ctx, op, p.ProjectID, Write{Create: true, Conv: conv, Messages: msgs, Now: now}); err != nil {
		return TraceResult{}, err
	}
	return TraceResult{Conversation: conv, Observations: msgs}, nil
}

// ListTraces pages conversations that hold at least one observation.
func (c *Service) ListTraces(ctx context.Context, p core.Principal, q ListQuery) (TracePage, error) {
	const op = "conversations.ListTraces"
	if err := p.Authorize(core.OpTraceList); err != nil {
		return TracePage{}, err
	}
	q.Tag = ""
	page, err := c.page(ctx, op, p, "traces", q)
	if err != nil {
		return TracePage{}, err
	}
	return TracePage{Data: page.Data, HasMore: page.Pagination.NextCursor != nil, NextCursor: page.Pagination.NextCursor}, nil
}

// GetTrace returns a conversation with its observations as a tree: roots sorted by start_time
// (else created_at), each node's children likewise.
func (c *Service) GetTrace(ctx context.Context, p core.Principal, id string) (Trace, error) {
	const op = "conversations.GetTrace"
	if err := p.Authorize(core.OpTraceGet); err != nil {
		return Trace{}, err
	}
	conv, err := c.Get(ctx, p, id, 0)
	if core.IsCode(err, core.CodeNotFound) || (err == nil && !hasObservation(conv.Messages)) {
		return Trace{}, core.E(op, core.CodeNotFound, "Trace not found")
	}
	if err != nil {
		return Trace{}, err
	}
	nodes := map[string]*Observation{}
	var order []*Observation
	for _, m := range conv.Messages {
		if m.ObservationType == nil {
			continue
		}
		n := &Observation{Message: m, Children: []*Observation{}}
		nodes[m.ID] = n
		order = append(order, n)
	}
	t := Trace{Conversation: conv, Observations: []*Observation{}}
	t.Messages = nil
	for _, n := range order {
		if n.ParentMessageID != nil && nodes[*n.ParentMessageID] != nil && *n.ParentMessageID != n.ID {
			parent := nodes[*n.ParentMessageID]
			parent.Children = append(parent.Children, n)
			continue
		}
		t.Observations = append(t.Observations, n)
	}
	start := func(o *Observation) int64 {
		if o.StartTime != nil {
			return *o.StartTime
		}
		return o.CreatedAt
	}
	var sortTree func([]*Observation)
	sortTree = func(l []*Observation) {
		slices.SortStableFunc(l, func(a, b *Observation) int { return int(start(a) - start(b)) })
		for _, o := range l {
			sortTree(o.Children)
		}
	}
	sortTree(t.Observations)
	return t, nil
}
