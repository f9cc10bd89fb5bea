package tools

import (
	"context"

	"github.com/agentstate/agentstate-go/conversations"

	"github.com/agentstate/agentstate-go/core"
)

// ConvIDArgs name one conversation.
type ConvIDArgs struct {
	ID string `json:"id" jsonschema:"minLength=1" jsonschema_description:"The conversation id."`
}

// AppendArgs are append_messages' arguments.
type AppendArgs struct {
	ID string `json:"id" jsonschema:"minLength=1" jsonschema_description:"The conversation id."`
	conversations.AppendMessages
}

// ConvListResult is list_conversations' result (v1): the page plus the project's conversation count.
type ConvListResult struct {
	Data       []conversations.Conversation `json:"data"`
	Pagination ConvListPagination           `json:"pagination"`
}

// ConvListPagination is v1's MCP page trailer: limit is the rows returned.
type ConvListPagination struct {
	Limit      int     `json:"limit"`
	NextCursor *string `json:"next_cursor"`
	Total      int64   `json:"total"`
}

// TagArgs are conversation_tags' arguments.
type TagArgs struct {
	ID     string   `json:"id" jsonschema:"minLength=1" jsonschema_description:"The conversation id."`
	Add    []string `json:"add,omitempty" jsonschema:"maxItems=50" jsonschema_description:"Tags to add (1..50 characters of letters, digits, _ or -)."`
	Remove []string `json:"remove,omitempty" jsonschema:"maxItems=50" jsonschema_description:"Tags to remove."`
}

func conversationTools() []Tool {
	return []Tool{
		define(Tool{
			Name: "store_conversation", Title: "Store a conversation", Op: core.OpConversationCreate,
			Description: "Save a conversation, optionally with its first messages; returns it without them. Add more with append_messages.",
		}, func(ctx context.Context, d Deps, p core.Principal, in conversations.CreateConversation) (conversations.Conversation, error) {
			c, err := d.Conversations.Create(ctx, p, in)
			c.Messages = nil
			return c, err
		}),
		define(Tool{
			Name: "recall_conversation", Title: "Recall a conversation", Op: core.OpConversationGet,
			Description: "A conversation with all its messages, by id.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, in ConvIDArgs) (conversations.Conversation, error) {
			return d.Conversations.Get(ctx, p, in.ID, 0)
		}),
		define(Tool{
			Name: "list_conversations", Title: "List conversations", Op: core.OpConversationList,
			Description: "Conversations, most recently updated first (order=asc for oldest), optionally with a tag; page with next_cursor.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, in conversations.ListQuery) (ConvListResult, error) {
			page, err := d.Conversations.List(ctx, p, in)
			if err != nil {
				return ConvListResult{}, err
			}
			total, err := d.Conversations.Count(ctx, p)
			return ConvListResult{Data: page.Data, Pagination: ConvListPagination{Limit: len(page.Data),
				NextCursor: page.Pagination.NextCursor, Total: total}}, err
		}),
		define(Tool{
			Name: "append_messages", Title: "Append messages", Op: core.OpMessageAppend,
			Description: "Add messages to the end of a conversation; its counts and updated_at move with them.",
		}, func(ctx context.Context, d Deps, p core.Principal, in AppendArgs) (conversations.MessagesResult, error) {
			return d.Conversations.Append(ctx, p, in.ID, in.AppendMessages)
		}),
		define(Tool{
			Name: "search_conversations", Title: "Search conversations", Op: core.OpConversationSearch,
			Description: "Find conversations whose messages contain every word of q (case-insensitive); each result has a snippet around the first match.",
			Hints:       Hints{ReadOnly: true, Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, in conversations.SearchQuery) (conversations.SearchPage, error) {
			return d.Conversations.Search(ctx, p, in)
		}),
		define(Tool{
			Name: "conversation_tags", Title: "Tag a conversation", Op: core.OpConversationEditTags,
			Description: "Add and/or remove tags on a conversation and return its tags (with neither, just return them).",
			Hints:       Hints{Idempotent: true},
		}, func(ctx context.Context, d Deps, p core.Principal, in TagArgs) (conversations.TagList, error) {
			return d.Conversations.EditTags(ctx, p, in.ID, in.Add, in.Remove)
		}),
	}
}
