package conversations

import (
	"context"

	"github.com/agentstate/agentstate-go/core"
)

// TagList is v1's tag response shape: {"data":{"tags":[...]}}.
type TagList struct {
	Data struct {
		Tags []string `json:"tags"`
	} `json:"data"`
}

func tagList(tags []string) TagList {
	var l TagList
	l.Data.Tags = tags
	if l.Data.Tags == nil {
		l.Data.Tags = []string{}
	}
	return l
}

// AddTagsRequest is the body of POST /api/v1/conversations/{id}/tags.
type AddTagsRequest struct {
	Tags []string `json:"tags" jsonschema:"minItems=1,maxItems=50"`
}

// ProjectTags lists the distinct tags in use in the project, sorted.
func (c *Service) ProjectTags(ctx context.Context, p core.Principal) (TagList, error) {
	const op = "conversations.ProjectTags"
	if err := p.Authorize(core.OpProjectTags); err != nil {
		return TagList{}, err
	}
	tags, err := c.store.ProjectTags(ctx, p.ProjectID)
	if err != nil {
		return TagList{}, core.Internal(op, err)
	}
	return tagList(tags), nil
}

// Tags lists a conversation's tags, sorted.
func (c *Service) Tags(ctx context.Context, p core.Principal, id string) (TagList, error) {
	const op = "conversations.Tags"
	if err := p.Authorize(core.OpConversationTags); err != nil {
		return TagList{}, err
	}
	return c.currentTags(ctx, op, p, id)
}

// AddTags adds tags (insert-or-ignore) and returns all of the conversation's tags.
func (c *Service) AddTags(ctx context.Context, p core.Principal, id string, in AddTagsRequest) (TagList, error) {
	const op = "conversations.AddTags"
	if err := p.Authorize(core.OpConversationAddTags); err != nil {
		return TagList{}, err
	}
	if len(in.Tags) == 0 {
		return TagList{}, core.BadRequest(op, "tags", "Array must contain at least 1 element(s)")
	}
	tags, err := core.NormalizeTags(op, in.Tags, MaxConvTags, core.ConversationTags)
	if err != nil {
		return TagList{}, err
	}
	if _, err := c.load(ctx, op, p, id); err != nil {
		return TagList{}, err
	}
	all, err := c.store.AddTags(ctx, p.ProjectID, id, tags)
	if err != nil {
		if core.IsCode(err, core.CodeNotFound) {
			return TagList{}, core.E(op, core.CodeNotFound, core.MsgConversationNotFound)
		}
		return TagList{}, core.Internal(op, err)
	}
	return tagList(all), nil
}

// RemoveTag removes one tag; removing an absent tag succeeds (v1).
func (c *Service) RemoveTag(ctx context.Context, p core.Principal, id, tag string) error {
	const op = "conversations.RemoveTag"
	if err := p.Authorize(core.OpConversationRemoveTag); err != nil {
		return err
	}
	if !core.ConversationTags.Valid(tag) {
		return core.E(op, core.CodeInvalidTag, "Tag must be 1..50 characters of letters, digits, _ or -")
	}
	if _, err := c.load(ctx, op, p, id); err != nil {
		return err
	}
	if err := c.store.RemoveTag(ctx, p.ProjectID, id, tag); err != nil {
		return core.Internal(op, err)
	}
	return nil
}

// EditTags adds and removes tags in one call and returns the conversation's tags: what the
// MCP tag tool does, so a write-only credential can tag without also reading.
func (c *Service) EditTags(ctx context.Context, p core.Principal, id string, add, remove []string) (TagList, error) {
	const op = "conversations.EditTags"
	if err := p.Authorize(core.OpConversationEditTags); err != nil {
		return TagList{}, err
	}
	if len(add) > 0 {
		if _, err := c.AddTags(ctx, p, id, AddTagsRequest{Tags: add}); err != nil {
			return TagList{}, err
		}
	}
	for _, t := range remove {
		if err := c.RemoveTag(ctx, p, id, t); err != nil {
			return TagList{}, err
		}
	}
	return c.currentTags(ctx, op, p, id)
}

func (c *Service) currentTags(ctx context.Context, op string, p core.Principal, id string) (TagList, error) {
	if _, err := c.load(ctx, op, p, id); err != nil {
		return TagList{}, err
	}
	tags, err := c.store.ConversationTags(ctx, p.ProjectID, id)
	if err != nil {
		return TagList{}, core.Internal(op, err)
	}
	return tagList(tags), nil
}
