package conversations

import (
	"context"

	"github.com/agentstate/agentstate-go/conversations/titles"
	"github.com/agentstate/agentstate-go/core"
)

// GeneratedTitle is POST /conversations/{id}/generate-title.
type GeneratedTitle struct {
	Title string `json:"title"`
}

// FollowUpQuestions is POST /conversations/{id}/follow-ups.
type FollowUpQuestions struct {
	Questions []string `json:"questions"`
}

// GeneratedAll is POST /conversations/{id}/generate-all.
type GeneratedAll struct {
	Title     string   `json:"title"`
	FollowUps []string `json:"follow_ups"`
}

func (c *Service) titleInput(ctx context.Context, o core.Operation, p core.Principal, id string) ([]titles.Message, error) {
	if err := p.Authorize(o); err != nil {
		return nil, err
	}
	// v1 asks only for conversations:write here, though the messages are read.
	conv, err := c.withMessages(ctx, o.Name, p, id, ConvGetMessages)
	if err != nil {
		return nil, err
	}
	out := make([]titles.Message, len(conv.Messages))
	for i, m := range conv.Messages {
		out[i] = titles.Message{Role: m.Role, Content: m.Content}
	}
	return out, nil
}

// GenerateTitle makes a title from the conversation and stores it (v1 also overwrites with
// the fallback title).
func (c *Service) GenerateTitle(ctx context.Context, p core.Principal, id string) (GeneratedTitle, error) {
	const op = "conversations.GenerateTitle"
	msgs, err := c.titleInput(ctx, core.OpConversationGenerateTitle, p, id)
	if err != nil {
		return GeneratedTitle{}, err
	}
	title, err := c.setTitle(ctx, op, p, id, msgs)
	return GeneratedTitle{Title: title}, err
}

func (c *Service) setTitle(ctx context.Context, op string, p core.Principal, id string, msgs []titles.Message) (string, error) {
	title, err := c.titles.Title(ctx, msgs)
	if err != nil || title == "" {
		title = titles.UntitledConversation
	}
	if _, err := c.store.UpdateConversation(ctx, p.ProjectID, id, &title, nil, false, core.NowMs(c.clock)); err != nil {
		return "", core.Internal(op, err)
	}
	return title, nil
}

// FollowUps suggests up to three follow-up questions.
func (c *Service) FollowUps(ctx context.Context, p core.Principal, id string) (FollowUpQuestions, error) {
	msgs, err := c.titleInput(ctx, core.OpConversationFollowUps, p, id)
	if err != nil {
		return FollowUpQuestions{}, err
	}
	q, err := c.titles.FollowUps(ctx, msgs)
	if err != nil || q == nil {
		q = []string{}
	}
	return FollowUpQuestions{Questions: q}, nil
}

// GenerateAll is GenerateTitle and FollowUps in one call.
func (c *Service) GenerateAll(ctx context.Context, p core.Principal, id string) (GeneratedAll, error) {
	const op = "conversations.GenerateAll"
	msgs, err := c.titleInput(ctx, core.OpConversationGenerateAll, p, id)
	if err != nil {
		return GeneratedAll{}, err
	}
	title, err := c.setTitle(ctx, op, p, id, msgs)
	if err != nil {
		return GeneratedAll{}, err
	}
	q, err := c.titles.FollowUps(ctx, msgs)
	if err != nil || q == nil {
		q = []string{}
	}
	return GeneratedAll{Title: title, FollowUps: q}, nil
}
