package webhooks

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/agentstate/agentstate-go/conversations"
	"github.com/agentstate/agentstate-go/core"
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
type Store interface {
	PutWebhook(ctx context.Context, project string, w Webhook) error
	Webhook(ctx context.Context, project, id string) (*Webhook, error)
	Webhooks(ctx context.Context, project string) ([]Webhook, error)
	DeleteWebhook(ctx context.Context, project, id string) (bool, error)
	TouchWebhook(ctx context.Context, project, id string, at int64) error
}

// Service manages webhooks and delivers events to them in the background.
type Service struct {
	store         Store
	clock         core.Clock
	deliverer     *Deliverer
	allowLoopback bool
	pending       sync.WaitGroup
	// base outlives the request that fired a delivery (its retries run for minutes) and ends
	// when Shutdown's deadline passes.
	base   context.Context
	cancel context.CancelFunc

	Observer core.Observer // counts deliveries by outcome; nil = not counted
}

// New builds the service; allowLoopback admits receivers on this machine (development).
func New(store Store, clock core.Clock, allowLoopback bool) *Service {
	base, cancel := context.WithCancel(context.Background())
	return &Service{store: store, clock: clock, deliverer: NewDeliverer(allowLoopback, clock), allowLoopback: allowLoopback,
		base: base, cancel: cancel}
}

// Deliverer exposes the delivery policy (tests shorten its waits).
func (w *Service) Deliverer() *Deliverer { return w.deliverer }

func (w *Service) validate(op, url string, events []string) error {
	if err := ValidateURL(url, w.allowLoopback); err != nil {
		return core.BadRequest(op, "url", err.(*core.Error).Message)
	}
	switch {
	case len(events) == 0:
		return core.BadRequest(op, "events", "Array must contain at least 1 element(s)")
	case len(events) > MaxWebhookEvents:
		return core.BadRequest(op, "events", fmt.Sprintf("Array must contain at most %d element(s)", MaxWebhookEvents))
	}
	for i, e := range events {
		if err := core.EnumCheck(op, fmt.Sprintf("events.%d", i), e, WebhookEvents...); err != nil {
			return err
		}
	}
	return nil
}

// Create registers a webhook and returns it with its secret.
func (w *Service) Create(ctx context.Context, p core.Principal, in CreateWebhook) (Webhook, error) {
	const op = "webhooks.Create"
	if err := p.Authorize(core.OpWebhookCreate); err != nil {
		return Webhook{}, err
	}
	if err := w.validate(op, in.URL, in.Events); err != nil {
		return Webhook{}, err
	}
	wh := Webhook{ID: core.NewID(), ProjectID: p.ProjectID, URL: in.URL, Events: slices.Compact(slices.Sorted(slices.Values(in.Events))),
		Active: true, Secret: core.SHA256Hex([]byte(core.RandomBase62(64))), CreatedAt: core.NowMs(w.clock)}
	if err := w.store.PutWebhook(ctx, p.ProjectID, wh); err != nil {
		return Webhook{}, core.Internal(op, err)
	}
	return wh, nil
}

// List returns the project's webhooks (without secrets).
func (w *Service) List(ctx context.Context, p core.Principal) (WebhookList, error) {
	const op = "webhooks.List"
	if err := p.Authorize(core.OpWebhookList); err != nil {
		return WebhookList{}, err
	}
	l, err := w.store.Webhooks(ctx, p.ProjectID)
	if err != nil {
		return WebhookList{}, core.Internal(op, err)
	}
	for i := range l {
		l[i].Secret = ""
	}
	return WebhookList{Data: l}, nil
}

func (w *Service) load(ctx context.Context, o core.Operation, p core.Principal, id string) (Webhook, error) {
	op := o.Name
	if err := p.Authorize(o); err != nil {
		return Webhook{}, err
	}
	wh, err := w.store.Webhook(ctx, p.ProjectID, id)
	if err != nil {
		return Webhook{}, core.Internal(op, err)
	}
	if wh == nil {
		return Webhook{}, core.E(op, core.CodeNotFound, core.MsgWebhookNotFound)
	}
	return *wh, nil
}

// Get returns one webhook (without its secret).
func (w *Service) Get(ctx context.Context, p core.Principal, id string) (Webhook, error) {
	wh, err := w.load(ctx, core.OpWebhookGet, p, id)
	wh.Secret = ""
	return wh, err
}

// Update changes the URL, events or active flag.
func (w *Service) Update(ctx context.Context, p core.Principal, id string, in UpdateWebhook) (Webhook, error) {
	const op = "webhooks.Update"
	wh, err := w.load(ctx, core.OpWebhookUpdate, p, id)
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
		return Webhook{}, core.Internal(op, err)
	}
	wh.Secret = ""
	return wh, nil
}

// Delete removes a webhook.
func (w *Service) Delete(ctx context.Context, p core.Principal, id string) error {
	const op = "webhooks.Delete"
	if err := p.Authorize(core.OpWebhookDelete); err != nil {
		return err
	}
	ok, err := w.store.DeleteWebhook(ctx, p.ProjectID, id)
	if err != nil {
		return core.Internal(op, err)
	}
	if !ok {
		return core.E(op, core.CodeNotFound, core.MsgWebhookNotFound)
	}
	return nil
}

// ConversationCreated sends conversation.created to every active subscriber, in the background:
// the request that created the conversation does not wait for receivers.
func (w *Service) ConversationCreated(ctx context.Context, project string, c conversations.Conversation) {
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
			bg, stop := core.Detach(w.base, ctx)
			defer stop()
			if _, err := w.deliverer.Deliver(bg, h.URL, h.Secret, "conversation.created", data); err != nil {
				core.Observe(w.Observer, core.EventWebhookFailed, 1)
				slog.WarnContext(bg, "webhook delivery failed", "webhook", h.ID, "err", err)
				return
			}
			core.Observe(w.Observer, core.EventWebhookOK, 1)
			if err := w.store.TouchWebhook(bg, project, h.ID, core.NowMs(w.clock)); err != nil {
				slog.WarnContext(bg, "webhook: touch", "webhook", h.ID, "err", err)
			}
		})
	}
}

// Wait blocks until every delivery started so far has finished (tests).
func (w *Service) Wait() { w.pending.Wait() }

// Shutdown waits for the deliveries under way until ctx ends, then abandons the rest.
func (w *Service) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() { w.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		w.cancel()
		<-done
		return core.E("webhooks.Shutdown", core.CodeServiceUnavailable, "webhook deliveries were cut short by shutdown")
	}
}
