package conversations

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/agentstate/agentstate-go/core"

	"github.com/agentstate/agentstate-go/conversations/textindex"
	"github.com/agentstate/agentstate-go/conversations/titles"
)

// Named limits of conversations. v1 bounds some (pages, fields, ids); the rest are ours so
// that one request cannot grow without limit.
const (
	MaxMessagesPerWrite      = 1000
	MaxMessageContentBytes   = 256 << 10
	MaxModelLen              = 100
	MaxConvIDs               = 100 // export, bulk delete
	ConvGetMessages          = 1000
	DefaultConvLimit         = 50
	MaxConvLimit             = 100
	DefaultMessagesLimit     = 100
	MaxMessagesLimit         = 500
	DefaultSearchLimit       = 20
	MaxSearchLimit           = 100
	MaxConvTags              = 50
	MaxTraceObservations     = 100
	MaxSearchCandidates      = 10_000 // matches a search sorts itself; beyond, it walks the recency order
	SnippetScanMessages      = 1000   // messages a snippet looks through
	MaxExternalIDLen         = 1024
	MaxConversationTitleRune = 1000
)

var convIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

// MessageInput is one message of a create, append or trace ingest.
type MessageInput struct {
	Role             string          `json:"role,omitempty" jsonschema:"enum=system,enum=user,enum=assistant,enum=tool"`
	Content          string          `json:"content" jsonschema:"minLength=1"`
	Metadata         json.RawMessage `json:"metadata,omitempty" jsonschema:"type=object"`
	TokenCount       *int64          `json:"token_count,omitempty" jsonschema:"minimum=0"`
	Model            *string         `json:"model,omitempty" jsonschema:"maxLength=100"`
	InputTokens      *int64          `json:"input_tokens,omitempty" jsonschema:"minimum=0"`
	OutputTokens     *int64          `json:"output_tokens,omitempty" jsonschema:"minimum=0"`
	CostMicrodollars *int64          `json:"cost_microdollars,omitempty" jsonschema:"minimum=0"`
	ParentMessageID  *string         `json:"parent_message_id,omitempty"`
	ObservationType  *string         `json:"observation_type,omitempty" jsonschema:"enum=generation,enum=tool,enum=agent,enum=chain,enum=span,enum=event"`
	StartTime        *int64          `json:"start_time,omitempty"`
	EndTime          *int64          `json:"end_time,omitempty"`
	Status           *string         `json:"status,omitempty" jsonschema:"enum=success,enum=error"`
	Level            *string         `json:"level,omitempty" jsonschema:"enum=debug,enum=default,enum=warning,enum=error"`
}

// Message is a stored message (compat-v1.md §10.1).
type Message struct {
	ID               string          `json:"id"`
	Role             string          `json:"role"`
	Content          string          `json:"content"`
	Metadata         json.RawMessage `json:"metadata" jsonschema:"oneof_type=object;null"`
	TokenCount       int64           `json:"token_count"`
	Model            *string         `json:"model"`
	InputTokens      *int64          `json:"input_tokens"`
	OutputTokens     *int64          `json:"output_tokens"`
	CostMicrodollars *int64          `json:"cost_microdollars"`
	ParentMessageID  *string         `json:"parent_message_id"`
	ObservationType  *string         `json:"observation_type"`
	StartTime        *int64          `json:"start_time"`
	EndTime          *int64          `json:"end_time"`
	Status           *string         `json:"status"`
	Level            *string         `json:"level"`
	CreatedAt        int64           `json:"created_at"`
}

// Conversation is the conversation object; Messages is set where v1 includes them.
type Conversation struct {
	ID                    string          `json:"id"`
	ProjectID             string          `json:"project_id"`
	ExternalID            *string         `json:"external_id"`
	Title                 *string         `json:"title"`
	Metadata              json.RawMessage `json:"metadata" jsonschema:"oneof_type=object;null"`
	MessageCount          int64           `json:"message_count"`
	TokenCount            int64           `json:"token_count"`
	TotalCostMicrodollars int64           `json:"total_cost_microdollars"`
	TotalTokens           int64           `json:"total_tokens"`
	CreatedAt             int64           `json:"created_at"`
	UpdatedAt             int64           `json:"updated_at"`
	Messages              []Message       `json:"messages,omitempty"`
}

// CreateConversation is the body of POST /api/v1/conversations and store_conversation's arguments.
type CreateConversation struct {
	ExternalID *string         `json:"external_id,omitempty" jsonschema_description:"Your id for the conversation, unique in the project."`
	Title      *string         `json:"title,omitempty"`
	Metadata   json.RawMessage `json:"metadata,omitempty" jsonschema:"type=object"`
	Messages   []MessageInput  `json:"messages,omitempty" jsonschema:"maxItems=1000"`
}

// UpdateConversation is the body of PUT /api/v1/conversations/{id}.
type UpdateConversation struct {
	Title    *string         `json:"title,omitempty"`
	Metadata json.RawMessage `json:"metadata,omitempty" jsonschema:"type=object" jsonschema_description:"Replaces the whole metadata object."`
}

// AppendMessages is the body of POST /api/v1/conversations/{id}/messages.
type AppendMessages struct {
	Messages []MessageInput `json:"messages" jsonschema:"minItems=1,maxItems=1000"`
}

// MessagesResult is the append response.
type MessagesResult struct {
	Messages []Message `json:"messages"`
}

// MessagePage is GET /conversations/{id}/messages.
type MessagePage struct {
	Data       []Message       `json:"data"`
	Pagination core.Pagination `json:"pagination"`
}

// ConversationPage is GET /conversations.
type ConversationPage struct {
	Data       []Conversation  `json:"data"`
	Pagination core.Pagination `json:"pagination"`
}

// ConvQuery lists conversations.
type ListQuery struct {
	Limit  int    `json:"limit,omitempty" jsonschema:"minimum=1,maximum=100"`
	Cursor string `json:"cursor,omitempty" jsonschema_description:"next_cursor of the previous page (\"<updated_at>.<id>\")."`
	Order  string `json:"order,omitempty" jsonschema:"enum=asc,enum=desc"`
	Tag    string `json:"tag,omitempty" jsonschema_description:"Only conversations with this tag."`
}

// IDList is the body of export and bulk delete.
type IDList struct {
	IDs []string `json:"ids,omitempty" jsonschema:"maxItems=100"`
}

// ExportResult is POST /conversations/export.
type ExportResult struct {
	Data  []Conversation `json:"data"`
	Count int            `json:"count"`
}

// DeletedCount is POST /conversations/bulk-delete.
type DeletedCount struct {
	Deleted int `json:"deleted"`
}

// ConvWrite is one atomic conversation write: a create (with its first messages) or an append.
type Write struct {
	Create       bool
	Conv         Conversation // create: the new conversation; append: only ID
	Messages     []Message
	Now          int64
	SearchTokens []string // tokens of the new messages, for the inverted index
	Observations bool     // some message is a trace observation
}

// ConversationStore keeps conversations, messages, tags and the search index.
type Store interface {
	// WriteConversation applies w atomically: CONFLICT when a create's external_id is taken,
	// NOT_FOUND when an append's conversation is gone.
	WriteConversation(ctx context.Context, project string, w Write) error
	Conversation(ctx context.Context, project, id string) (*Conversation, error)
	ConversationIDByExternalID(ctx context.Context, project, externalID string) (string, error)
	// Messages returns up to n messages after position after (0 = from the first), in order.
	Messages(ctx context.Context, project, id string, after int64, n int) ([]Message, error)
	// MessagePosition is the 1-based position of a message id in its conversation (0 = unknown).
	MessagePosition(ctx context.Context, project, convID, msgID string) (int64, error)
	UpdateConversation(ctx context.Context, project, id string, title *string, metadata json.RawMessage, setMetadata bool, now int64) (bool, error)
	DeleteConversation(ctx context.Context, project, id string) (bool, error)
	// ConversationsAfter pages an index ("updated", "created", "traces" or "tag:<tag>") in (score, id) order.
	ConversationsAfter(ctx context.Context, project, index string, after *core.TimeCursor, desc bool, n int) ([]Conversation, error)
	// ConversationsBetween returns ids with created_at in [from, to], bounded by n.
	ConversationsBetween(ctx context.Context, project string, from, to int64, n int) ([]Conversation, error)
	AddTags(ctx context.Context, project, id string, tags []string) ([]string, error)
	RemoveTag(ctx context.Context, project, id, tag string) error
	ConversationTags(ctx context.Context, project, id string) ([]string, error)
	ProjectTags(ctx context.Context, project string) ([]string, error)
	// SearchCandidates returns the ids of conversations holding every term, or ok=false when
	// there are more than n (the caller then walks the recency order instead).
	// Each group is a set of alternatives (a prefix's words): a conversation must hold one of each.
	SearchCandidates(ctx context.Context, project string, groups [][]string, n int) (ids []string, ok bool, err error)
	// HoldAllTerms reports, for each conversation, whether it holds one word of every group.
	HoldAllTerms(ctx context.Context, project string, ids []string, groups [][]string) ([]bool, error)
	PrefixExpander
	// ConversationCount is the number of conversations in the project.
	ConversationCount(ctx context.Context, project string) (int64, error)
	// UpdatedAts returns each conversation's updated_at (0 when gone).
	UpdatedAts(ctx context.Context, project string, ids []string) ([]int64, error)
	// TagsOf returns each conversation's tags.
	TagsOf(ctx context.Context, project string, ids []string) ([][]string, error)
}

// Service is the conversations service.
type Service struct {
	store  Store
	clock  core.Clock
	titles titles.Provider
	// SearchCap is how many matches a search sorts itself (MaxSearchCandidates; tests lower it).
	SearchCap int
	// Text, when set and ready, answers searches instead of the portable index (RediSearch).
	Text TextIndex
}

// New builds the service.
func New(store Store, clock core.Clock, tp titles.Provider) *Service {
	if tp == nil {
		tp = titles.Local{}
	}
	return &Service{store: store, clock: clock, titles: tp, SearchCap: MaxSearchCandidates}
}

// ValidConversationID applies v1's id rule.
func ValidConversationID(op, id string) error {
	if !convIDRe.MatchString(id) {
		return core.E(op, core.CodeBadRequest, "Invalid conversation id")
	}
	return nil
}

func nonNegative(op, path string, v *int64) error {
	if v != nil && *v < 0 {
		return core.BadRequest(op, path, "Number must be greater than or equal to 0")
	}
	return nil
}

// buildMessages validates inputs and turns them into stored messages sharing one created_at.
func buildMessages(op string, in []MessageInput, now int64, defaultRole string) ([]Message, error) {
	if len(in) > MaxMessagesPerWrite {
		return nil, core.BadRequest(op, "messages", fmt.Sprintf("Array must contain at most %d element(s)", MaxMessagesPerWrite))
	}
	out := make([]Message, 0, len(in))
	for i, m := range in {
		at := func(f string) string { return fmt.Sprintf("messages.%d.%s", i, f) }
		if m.Role == "" {
			m.Role = defaultRole
		}
		if err := core.EnumCheck(op, at("role"), m.Role, "system", "user", "assistant", "tool"); err != nil {
			return nil, err
		}
		if m.Content == "" {
			return nil, core.BadRequest(op, at("content"), "String must contain at least 1 character(s)")
		}
		if len(m.Content) > MaxMessageContentBytes {
			return nil, &core.Error{Op: op, Code: core.CodePayloadTooLarge, Message: fmt.Sprintf("Message content exceeds %d bytes", MaxMessageContentBytes),
				Details: map[string]string{"path": at("content")}}
		}
		for f, v := range map[string]*int64{"token_count": m.TokenCount, "input_tokens": m.InputTokens, "output_tokens": m.OutputTokens, "cost_microdollars": m.CostMicrodollars} {
			if err := nonNegative(op, at(f), v); err != nil {
				return nil, err
			}
		}
		if m.Model != nil && utf8.RuneCountInString(*m.Model) > MaxModelLen {
			return nil, core.BadRequest(op, at("model"), fmt.Sprintf("String must contain at most %d character(s)", MaxModelLen))
		}
		for f, v := range map[string]struct {
			val     *string
			allowed []string
		}{
			"observation_type": {m.ObservationType, []string{"generation", "tool", "agent", "chain", "span", "event"}},
			"status":           {m.Status, []string{"success", "error"}},
			"level":            {m.Level, []string{"debug", "default", "warning", "error"}},
		} {
			if v.val != nil {
				if err := core.EnumCheck(op, at(f), *v.val, v.allowed...); err != nil {
					return nil, err
				}
			}
		}
		meta, err := optionalObject(op, at("metadata"), m.Metadata)
		if err != nil {
			return nil, err
		}
		msg := Message{ID: core.NewID(), Role: m.Role, Content: m.Content, Metadata: meta, Model: m.Model,
			InputTokens: m.InputTokens, OutputTokens: m.OutputTokens, CostMicrodollars: m.CostMicrodollars,
			ParentMessageID: m.ParentMessageID, ObservationType: m.ObservationType, StartTime: m.StartTime,
			EndTime: m.EndTime, Status: m.Status, Level: m.Level, CreatedAt: now}
		if m.TokenCount != nil {
			msg.TokenCount = *m.TokenCount
		}
		out = append(out, msg)
	}
	return out, nil
}

// optionalObject checks an optional JSON object field, returning null when absent.
func optionalObject(op, path string, raw json.RawMessage) (json.RawMessage, error) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || string(t) == "null" {
		return json.RawMessage("null"), nil
	}
	if k := core.JSONKind(t); k != "object" {
		return nil, core.BadRequest(op, path, "Expected object, received "+k)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, t); err != nil {
		return nil, core.BadRequest(op, path, "Invalid JSON")
	}
	return b.Bytes(), nil
}

func messageTokens(msgs []Message) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range msgs {
		for _, t := range textindex.Tokens(m.Content) {
			if !seen[t] {
				seen[t] = true
				out = append(out, t)
			}
		}
	}
	return out
}

func hasObservation(msgs []Message) bool {
	return slices.ContainsFunc(msgs, func(m Message) bool { return m.ObservationType != nil })
}

// Create stores a conversation with its first messages.
func (c *Service) Create(ctx context.Context, p core.Principal, in CreateConversation) (Conversation, error) {
	const op = "conversations.Create"
	if err := p.Authorize(core.OpConversationCreate); err != nil {
		return Conversation{}, err
	}
	now := core.NowMs(c.clock)
	conv, msgs, err := c.newConversation(op, p, in, now, "")
	if err != nil {
		return Conversation{}, err
	}
	if err := c.write(ctx, op, p.ProjectID, Write{Create: true, Conv: conv, Messages: msgs, Now: now}); err != nil {
		return Conversation{}, err
	}
	conv.Messages = msgs
	return conv, nil
}

func (c *Service) newConversation(op string, p core.Principal, in CreateConversation, now int64, defaultRole string) (Conversation, []Message, error) {
	if in.ExternalID != nil && (*in.ExternalID == "" || len(*in.ExternalID) > MaxExternalIDLen) {
		return Conversation{}, nil, core.BadRequest(op, "external_id", fmt.Sprintf("external_id must be 1..%d bytes", MaxExternalIDLen))
	}
	if in.Title != nil && utf8.RuneCountInString(*in.Title) > MaxConversationTitleRune {
		return Conversation{}, nil, core.BadRequest(op, "title", fmt.Sprintf("String must contain at most %d character(s)", MaxConversationTitleRune))
	}
	meta, err := optionalObject(op, "metadata", in.Metadata)
	if err != nil {
		return Conversation{}, nil, err
	}
	msgs, err := buildMessages(op, in.Messages, now, defaultRole)
	if err != nil {
		return Conversation{}, nil, err
	}
	conv := Conversation{ID: core.NewID(), ProjectID: p.ProjectID, ExternalID: in.ExternalID, Title: in.Title,
		Metadata: meta, CreatedAt: now, UpdatedAt: now}
	addAggregates(&conv, msgs)
	return conv, msgs, nil
}

func addAggregates(conv *Conversation, msgs []Message) {
	for _, m := range msgs {
		conv.MessageCount++
		conv.TokenCount += m.TokenCount
		if m.InputTokens != nil {
			conv.TotalTokens += *m.InputTokens
		}
		if m.OutputTokens != nil {
			conv.TotalTokens += *m.OutputTokens
		}
		if m.CostMicrodollars != nil {
			conv.TotalCostMicrodollars += *m.CostMicrodollars
		}
	}
}

func (c *Service) write(ctx context.Context, op, project string, w Write) error {
	w.SearchTokens = messageTokens(w.Messages)
	w.Observations = hasObservation(w.Messages)
	if err := c.store.WriteConversation(ctx, project, w); err != nil {
		return core.Internal(op, err)
	}
	return nil
}

// Append adds messages to a conversation; its aggregates and updated_at move in the same write.
func (c *Service) Append(ctx context.Context, p core.Principal, id string, in AppendMessages) (MessagesResult, error) {
	const op = "conversations.Append"
	if err := p.Authorize(core.OpMessageAppend); err != nil {
		return MessagesResult{}, err
	}
	if err := ValidConversationID(op, id); err != nil {
		return MessagesResult{}, err
	}
	if len(in.Messages) == 0 {
		return MessagesResult{}, core.BadRequest(op, "messages", "Array must contain at least 1 element(s)")
	}
	now := core.NowMs(c.clock)
	msgs, err := buildMessages(op, in.Messages, now, "")
	if err != nil {
		return MessagesResult{}, err
	}
	if err := c.write(ctx, op, p.ProjectID, Write{Conv: Conversation{ID: id}, Messages: msgs, Now: now}); err != nil {
		return MessagesResult{}, err
	}
	return MessagesResult{Messages: msgs}, nil
}

func (c *Service) load(ctx context.Context, op string, p core.Principal, id string) (Conversation, error) {
	if err := ValidConversationID(op, id); err != nil {
		return Conversation{}, err
	}
	conv, err := c.store.Conversation(ctx, p.ProjectID, id)
	if err != nil {
		return Conversation{}, core.Internal(op, err)
	}
	if conv == nil {
		return Conversation{}, core.E(op, core.CodeNotFound, core.MsgConversationNotFound)
	}
	return *conv, nil
}

// Get returns a conversation with up to max messages (v1: the first 1000; 0 = all).
func (c *Service) Get(ctx context.Context, p core.Principal, id string, maxMessages int) (Conversation, error) {
	const op = "conversations.Get"
	if err := p.Authorize(core.OpConversationGet); err != nil {
		return Conversation{}, err
	}
	return c.withMessages(ctx, op, p, id, maxMessages)
}

// withMessages loads a conversation and its first maxMessages messages (0 = all); the caller
// has authorized its own operation.
func (c *Service) withMessages(ctx context.Context, op string, p core.Principal, id string, maxMessages int) (Conversation, error) {
	conv, err := c.load(ctx, op, p, id)
	if err != nil {
		return Conversation{}, err
	}
	n := int(conv.MessageCount)
	if maxMessages > 0 {
		n = min(n, maxMessages)
	}
	if conv.Messages, err = c.store.Messages(ctx, p.ProjectID, id, 0, n); err != nil {
		return Conversation{}, core.Internal(op, err)
	}
	return conv, nil
}

// GetByExternalID returns the conversation with that external_id and all its messages.
func (c *Service) GetByExternalID(ctx context.Context, p core.Principal, externalID string) (Conversation, error) {
	const op = "conversations.GetByExternalID"
	if err := p.Authorize(core.OpConversationByExternalID); err != nil {
		return Conversation{}, err
	}
	id, err := c.store.ConversationIDByExternalID(ctx, p.ProjectID, externalID)
	if err != nil {
		return Conversation{}, core.Internal(op, err)
	}
	if id == "" {
		return Conversation{}, core.E(op, core.CodeNotFound, core.MsgConversationNotFound)
	}
	return c.Get(ctx, p, id, 0)
}

// Update replaces the title and/or the whole metadata object.
func (c *Service) Update(ctx context.Context, p core.Principal, id string, in UpdateConversation) (Conversation, error) {
	const op = "conversations.Update"
	if err := p.Authorize(core.OpConversationUpdate); err != nil {
		return Conversation{}, err
	}
	if err := ValidConversationID(op, id); err != nil {
		return Conversation{}, err
	}
	setMeta := len(bytes.TrimSpace(in.Metadata)) > 0
	meta, err := optionalObject(op, "metadata", in.Metadata)
	if err != nil {
		return Conversation{}, err
	}
	if in.Title != nil && utf8.RuneCountInString(*in.Title) > MaxConversationTitleRune {
		return Conversation{}, core.BadRequest(op, "title", fmt.Sprintf("String must contain at most %d character(s)", MaxConversationTitleRune))
	}
	ok, err := c.store.UpdateConversation(ctx, p.ProjectID, id, in.Title, meta, setMeta, core.NowMs(c.clock))
	if err != nil {
		return Conversation{}, core.Internal(op, err)
	}
	if !ok {
		return Conversation{}, core.E(op, core.CodeNotFound, core.MsgConversationNotFound)
	}
	return c.load(ctx, op, p, id)
}

// Delete removes a conversation with its messages, tags and index entries.
func (c *Service) Delete(ctx context.Context, p core.Principal, id string) error {
	const op = "conversations.Delete"
	if err := p.Authorize(core.OpConversationDelete); err != nil {
		return err
	}
	if err := ValidConversationID(op, id); err != nil {
		return err
	}
	ok, err := c.store.DeleteConversation(ctx, p.ProjectID, id)
	if err != nil {
		return core.Internal(op, err)
	}
	if !ok {
		return core.E(op, core.CodeNotFound, core.MsgConversationNotFound)
	}
	return nil
}

// ListMessages pages a conversation's messages after a message id (v1: an unknown id restarts).
func (c *Service) ListMessages(ctx context.Context, p core.Principal, id, after string, limit int) (MessagePage, error) {
	const op = "conversations.ListMessages"
	if err := p.Authorize(core.OpMessageList); err != nil {
		return MessagePage{}, err
	}
	if _, err := c.load(ctx, op, p, id); err != nil {
		return MessagePage{}, err
	}
	limit = core.ClampLimit(limit, DefaultMessagesLimit, MaxMessagesLimit)
	var pos int64
	if after != "" {
		var err error
		if pos, err = c.store.MessagePosition(ctx, p.ProjectID, id, after); err != nil {
			return MessagePage{}, core.Internal(op, err)
		}
	}
	msgs, err := c.store.Messages(ctx, p.ProjectID, id, pos, limit)
	if err != nil {
		return MessagePage{}, core.Internal(op, err)
	}
	page := MessagePage{Data: msgs, Pagination: core.Pagination{Limit: limit}}
	if len(msgs) == limit {
		last := msgs[len(msgs)-1].ID
		page.Pagination.NextCursor = &last
	}
	return page, nil
}

func convCursorString(c Conversation, byCreated bool) *string {
	at := c.UpdatedAt
	if byCreated {
		at = c.CreatedAt
	}
	s := strconv.FormatInt(at, 10) + "." + c.ID
	return &s
}

// List pages conversations by (updated_at, id), newest first by default, optionally by tag.
func (c *Service) List(ctx context.Context, p core.Principal, q ListQuery) (ConversationPage, error) {
	const op = "conversations.List"
	if err := p.Authorize(core.OpConversationList); err != nil {
		return ConversationPage{}, err
	}
	return c.page(ctx, op, p, "updated", q)
}

func (c *Service) page(ctx context.Context, op string, p core.Principal, index string, q ListQuery) (ConversationPage, error) {
	cur, err := core.ParseTimeCursor(op, q.Cursor)
	if err != nil {
		return ConversationPage{}, err
	}
	if q.Tag != "" {
		if !core.ConversationTags.Valid(q.Tag) {
			return ConversationPage{}, core.E(op, core.CodeInvalidTag, "Tag must be 1..50 characters of letters, digits, _ or -")
		}
		index = "tag:" + q.Tag
	}
	limit := core.ClampLimit(q.Limit, DefaultConvLimit, MaxConvLimit)
	// One more than asked says whether another page exists (v1: no trailing empty page).
	convs, err := c.store.ConversationsAfter(ctx, p.ProjectID, index, cur, q.Order != "asc", limit+1)
	if err != nil {
		return ConversationPage{}, core.Internal(op, err)
	}
	page := ConversationPage{Data: convs, Pagination: core.Pagination{Limit: q.Limit}}
	if q.Limit < 1 {
		page.Pagination.Limit = limit
	}
	if len(convs) > limit {
		page.Data = convs[:limit]
		page.Pagination.NextCursor = convCursorString(convs[limit-1], false)
	}
	return page, nil
}

// Count is the project's number of conversations.
func (c *Service) Count(ctx context.Context, p core.Principal) (int64, error) {
	const op = "conversations.Count"
	if err := p.Authorize(core.OpConversationCount); err != nil {
		return 0, err
	}
	n, err := c.store.ConversationCount(ctx, p.ProjectID)
	if err != nil {
		return 0, core.Internal(op, err)
	}
	return n, nil
}

// Export returns the given conversations (unknown ids skipped), or the 100 most recently
// updated, each with its messages.
func (c *Service) Export(ctx context.Context, p core.Principal, in IDList) (ExportResult, error) {
	const op = "conversations.Export"
	if err := p.Authorize(core.OpConversationExport); err != nil {
		return ExportResult{}, err
	}
	if len(in.IDs) > MaxConvIDs {
		return ExportResult{}, core.BadRequest(op, "ids", fmt.Sprintf("Array must contain at most %d element(s)", MaxConvIDs))
	}
	ids := in.IDs
	if ids == nil {
		recent, err := c.store.ConversationsAfter(ctx, p.ProjectID, "updated", nil, true, MaxConvIDs)
		if err != nil {
			return ExportResult{}, core.Internal(op, err)
		}
		for _, r := range recent {
			ids = append(ids, r.ID)
		}
	}
	out := ExportResult{Data: []Conversation{}}
	for _, id := range ids {
		if !convIDRe.MatchString(id) {
			continue
		}
		conv, err := c.Get(ctx, p, id, 0)
		if core.IsCode(err, core.CodeNotFound) {
			continue
		}
		if err != nil {
			return ExportResult{}, err
		}
		out.Data = append(out.Data, conv)
	}
	out.Count = len(out.Data)
	return out, nil
}

// BulkDelete deletes up to 100 conversations of the project and says how many it found.
func (c *Service) BulkDelete(ctx context.Context, p core.Principal, in IDList) (DeletedCount, error) {
	const op = "conversations.BulkDelete"
	if err := p.Authorize(core.OpConversationBulkDelete); err != nil {
		return DeletedCount{}, err
	}
	if len(in.IDs) == 0 {
		return DeletedCount{}, core.BadRequest(op, "ids", "Array must contain at least 1 element(s)")
	}
	if len(in.IDs) > MaxConvIDs {
		return DeletedCount{}, core.BadRequest(op, "ids", fmt.Sprintf("Array must contain at most %d element(s)", MaxConvIDs))
	}
	n := 0
	for _, id := range in.IDs {
		if !convIDRe.MatchString(id) {
			continue
		}
		ok, err := c.store.DeleteConversation(ctx, p.ProjectID, id)
		if err != nil {
			return DeletedCount{}, core.Internal(op, err)
		}
		if ok {
			n++
		}
	}
	return DeletedCount{Deleted: n}, nil
}

// Retention bounds (v1: batches of 500 within a 25 s budget).
const (
	RetentionBatch  = 500
	RetentionBudget = 25 * time.Second
)

// PurgeExpired deletes the project's conversations not updated for days, oldest first, in
// bounded batches; it returns how many it deleted. What is left over the budget goes next run.
func (c *Service) PurgeExpired(ctx context.Context, project string, days int) (int, error) {
	const op = "conversations.PurgeExpired"
	cutoff := core.NowMs(c.clock) - int64(days)*24*time.Hour.Milliseconds()
	deadline := time.Now().Add(RetentionBudget)
	n := 0
	for time.Now().Before(deadline) {
		batch, err := c.store.ConversationsAfter(ctx, project, "updated", nil, false, RetentionBatch)
		if err != nil {
			return n, core.Internal(op, err)
		}
		done := 0
		for _, cv := range batch {
			if cv.UpdatedAt >= cutoff {
				return n, nil
			}
			if _, err := c.store.DeleteConversation(ctx, project, cv.ID); err != nil {
				return n, core.Internal(op, err)
			}
			n++
			done++
		}
		if done < RetentionBatch {
			return n, nil
		}
	}
	return n, nil
}

// Retention is the background job that purges, at start and then every interval, the
// expired conversations of every project with retention_days.
func (c *Service) Retention(projects func(context.Context) (core.ProjectList, error), every time.Duration, onErr func(error)) *core.Loop {
	return &core.Loop{Name: "conversations.Retention", Every: every, Immediately: true, OnErr: onErr, Pass: func(ctx context.Context) error {
		l, err := projects(ctx)
		if err != nil {
			return err
		}
		for _, p := range l.Data {
			if p.RetentionDays != nil {
				if _, err := c.PurgeExpired(ctx, p.ID, *p.RetentionDays); err != nil {
					onErr(err)
				}
			}
		}
		return nil
	}}
}
