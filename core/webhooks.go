package core

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
)

// WebhookEvents are the events a webhook may subscribe to (v1 has one).
var WebhookEvents = []string{"conversation.created"}

// MaxWebhookEvents is v1's bound on a webhook's event list.
const MaxWebhookEvents = 10

// Webhook is a registered receiver; Secret is shown on create only.
type Webhook struct {
	ID              string   `json:"id"`
	ProjectID       string   `json:"project_id"`
	URL             string   `json:"url"`
	Events          []string `json:"events"`
	Active          bool     `json:"active"`
	Secret          string   `json:"secret,omitempty" jsonschema_description:"64 hex characters; signs every delivery. Shown on create only."`
	CreatedAt       int64    `json:"created_at"`
	LastTriggeredAt *int64   `json:"last_triggered_at"`
}

// CreateWebhook is the body of POST /api/v1/webhooks.
type CreateWebhook struct {
	URL    string   `json:"url" jsonschema:"format=uri" jsonschema_description:"An https URL on a public address."`
	Events []string `json:"events" jsonschema:"minItems=1,maxItems=10,enum=conversation.created"`
}

// UpdateWebhook is the body of PUT /api/v1/webhooks/{id}.
type UpdateWebhook struct {
	URL    *string  `json:"url,omitempty"`
	Events []string `json:"events,omitempty" jsonschema:"minItems=1,maxItems=10"`
	Active *bool    `json:"active,omitempty"`
}

// WebhookList is GET /api/v1/webhooks.
type WebhookList struct {
	Data []Webhook `json:"data"`
}

// WebhookStore keeps a project's webhooks.
type WebhookStore interface {
	PutWebhook(ctx context.Context, project string, w Webhook) error
	Webhook(ctx context.Context, project, id string) (*Webhook, error)
	Webhooks(ctx context.Context, project string) ([]Webhook, error)
	DeleteWebhook(ctx context.Context, project, id string) (bool, error)
	TouchWebhook(ctx context.Context, project, id string, at int64) error
}

// Webhooks manages webhooks and delivers events to them in the background.
type Webhooks struct {
	store         WebhookStore
	clock         Clock
	deliverer     *WebhookDeliverer
	allowLoopback bool
	pending       sync.WaitGroup
}

// NewWebhooks builds the service; allowLoopback admits receivers on this machine (development).
func NewWebhooks(store WebhookStore, clock Clock, allowLoopback bool) *Webhooks {
	return &Webhooks{store: store, clock: clock, deliverer: NewWebhookDeliverer(allowLoopback, clock), allowLoopback: allowLoopback}
}

// Deliverer exposes the delivery policy (tests shorten its waits).
func (w *Webhooks) Deliverer() *WebhookDeliverer { return w.deliverer }

func (w *Webhooks) validate(op, url string, events []string) error {
	if err := ValidateWebhookURL(url, w.allowLoopback); err != nil {
		return badRequest(op, "url", err.(*Error).Message)
	}
	switch {
	case len(events) == 0:
		return badRequest(op, "events", "Array must contain at least 1 element(s)")
	case len(events) > MaxWebhookEvents:
		return badRequest(op, "events", fmt.Sprintf("Array must contain at most %d element(s)", MaxWebhookEvents))
	}
	for i, e := range events {
		if err := enumCheck(op, fmt.Sprintf("events.%d", i), e, WebhookEvents...); err != nil {
			return err
		}
	}
	return nil
}

// Create registers a webhook and returns it with its secret.
func (w *Webhooks) Create(ctx context.Context, p Principal, in CreateWebhook) (Webhook, error) {
	const op = "core.Webhooks.Create"
	if err := p.Require(op, ScopeWebhooksWrite); err != nil {
		return Webhook{}, err
	}
	if err := w.validate(op, in.URL, in.Events); err != nil {
		return Webhook{}, err
	}
	wh := Webhook{ID: NewID(), ProjectID: p.ProjectID, URL: in.URL, Events: slices.Compact(slices.Sorted(slices.Values(in.Events))),
		Active: true, Secret: SHA256Hex([]byte(RandomBase62(64))), CreatedAt: NowMs(w.clock)}
	if err := w.store.PutWebhook(ctx, p.ProjectID, wh); err != nil {
		return Webhook{}, Internal(op, err)
	}
	return wh, nil
}

// List returns the project's webhooks (without secrets).
func (w *Webhooks) List(ctx context.Context, p Principal) (WebhookList, error) {
	const op = "core.Webhooks.List"
	if err := p.Require(op, ScopeWebhooksWrite); err != nil {
		return WebhookList{}, err
	}
	l, err := w.store.Webhooks(ctx, p.ProjectID)
	if err != nil {
		return WebhookList{}, Internal(op, err)
	}
	for i := range l {
		l[i].Secret = ""
	}
	return WebhookList{Data: l}, nil
}

func (w *Webhooks) load(ctx context.Context, op string, p Principal, id string) (Webhook, error) {
	if err := p.Require(op, ScopeWebhooksWrite); err != nil {
		return Webhook{}, err
	}
	wh, err := w.store.Webhook(ctx, p.ProjectID, id)
	if err != nil {
		return Webhook{}, Internal(op, err)
	}
	if wh == nil {
		return Webhook{}, E(op, CodeNotFound, "Webhook not found")
	}
	return *wh, nil
}

// Get returns one webhook (without its secret).
func (w *Webhooks) Get(ctx context.Context, p Principal, id string) (Webhook, error) {
	wh, err := w.load(ctx, "core.Webhooks.Get", p, id)
	wh.Secret = ""
	return wh, err
}

// Update changes the URL, events or active flag.
func (w *Webhooks) Update(ctx context.Context, p Principal, id string, in UpdateWebhook) (Webhook, error) {
	const op = "core.Webhooks.Update"
	wh, err := w.load(ctx, op, p, id)
	if err != nil {
		return Webhook{}, err
	}
	if in.URL != nil {
		wh.URL = *in.URL
	}
	if in.Events != nil {
		wh.Events = slices.Compact(slices.Sorted(slices.Values(in.Events)))
	}
	if in.Active != nil {
		wh.Active = *in.Active
	}
	if err := w.validate(op, wh.URL, wh.Events); err != nil {
		return Webhook{}, err
	}
	if err := w.store.PutWebhook(ctx, p.ProjectID, wh); err != nil {
		return Webhook{}, Internal(op, err)
	}
	wh.Secret = ""
	return wh, nil
}

// Delete removes a webhook.
func (w *Webhooks) Delete(ctx context.Context, p Principal, id string) error {
	const op = "core.Webhooks.Delete"
	if err := p.Require(op, ScopeWebhooksWrite); err != nil {
		return err
	}
	ok, err := w.store.DeleteWebhook(ctx, p.ProjectID, id)
	if err != nil {
		return Internal(op, err)
	}
	if !ok {
		return E(op, CodeNotFound, "Webhook not found")
	}
	return nil
}

// ConversationCreated sends conversation.created to every active subscriber, in the background:
// the request that created the conversation does not wait for receivers.
func (w *Webhooks) ConversationCreated(ctx context.Context, project string, c Conversation) {
	hooks, err := w.store.Webhooks(ctx, project)
	if err != nil {
		slog.ErrorContext(ctx, "webhooks: list", "project", project, "err", err)
		return
	}
	data := map[string]any{"conversation_id": c.ID, "project_id": project, "external_id": c.ExternalID,
		"title": c.Title, "message_count": c.MessageCount, "token_count": c.TokenCount, "created_at": c.CreatedAt}
	for _, h := range hooks {
		if !h.Active || !slices.Contains(h.Events, "conversation.created") {
			continue
		}
		w.pending.Go(func() {
			bg := context.WithoutCancel(ctx)
			if _, err := w.deliverer.Deliver(bg, h.URL, h.Secret, "conversation.created", data); err != nil {
				slog.WarnContext(bg, "webhook delivery failed", "webhook", h.ID, "err", err)
				return
			}
			if err := w.store.TouchWebhook(bg, project, h.ID, NowMs(w.clock)); err != nil {
				slog.WarnContext(bg, "webhook: touch", "webhook", h.ID, "err", err)
			}
		})
	}
}

// Wait blocks until every delivery started so far has finished (shutdown, tests).
func (w *Webhooks) Wait() { w.pending.Wait() }
