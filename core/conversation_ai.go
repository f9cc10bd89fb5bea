package core

import "context"

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

func (c *Conversations) titleInput(ctx context.Context, op string, p Principal, id string) ([]TitleMessage, error) {
	if err := p.Require(op, ScopeConversationsWrite); err != nil {
		return nil, err
	}
	conv, err := c.Get(ctx, p, id, ConvGetMessages)
	if err != nil {
		return nil, err
	}
	out := make([]TitleMessage, len(conv.Messages))
	for i, m := range conv.Messages {
		out[i] = TitleMessage{Role: m.Role, Content: m.Content}
	}
	return out, nil
}

// GenerateTitle makes a title from the conversation and stores it (v1 also overwrites with
// the fallback title).
func (c *Conversations) GenerateTitle(ctx context.Context, p Principal, id string) (GeneratedTitle, error) {
	const op = "core.Conversations.GenerateTitle"
	msgs, err := c.titleInput(ctx, op, p, id)
	if err != nil {
		return GeneratedTitle{}, err
	}
	title, err := c.setTitle(ctx, op, p, id, msgs)
	return GeneratedTitle{Title: title}, err
}

func (c *Conversations) setTitle(ctx context.Context, op string, p Principal, id string, msgs []TitleMessage) (string, error) {
	title, err := c.titles.Title(ctx, msgs)
	if err != nil || title == "" {
		title = UntitledConversation
	}
	if _, err := c.store.UpdateConversation(ctx, p.ProjectID, id, &title, nil, false, NowMs(c.clock)); err != nil {
		return "", Internal(op, err)
	}
	return title, nil
}

// FollowUps suggests up to three follow-up questions.
func (c *Conversations) FollowUps(ctx context.Context, p Principal, id string) (FollowUpQuestions, error) {
	const op = "core.Conversations.FollowUps"
	msgs, err := c.titleInput(ctx, op, p, id)
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
func (c *Conversations) GenerateAll(ctx context.Context, p Principal, id string) (GeneratedAll, error) {
	const op = "core.Conversations.GenerateAll"
	msgs, err := c.titleInput(ctx, op, p, id)
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
