package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"sync"
	"time"

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

// Store keeps a project's webhooks and their outbox.
type Store interface {
	PutWebhook(ctx context.Context, project string, w Webhook) error
	Webhook(ctx context.Context, project, id string) (*Webhook, error)
	Webhooks(ctx context.Context, project string) ([]Webhook, error)
	DeleteWebhook(ctx context.Context, project, id string) (bool, error)
	TouchWebhook(ctx context.Context, project, id string, at int64) error

	EnqueueDeliveries(ctx context.Context, project string, ds []Delivery) error
	OutboxProjects(ctx context.Context) ([]string, error)
	ClaimDeliveries(ctx context.Context, project, consumer string, max int, retryAfter func(attempts int) time.Duration) ([]Delivery, error)
	AckDelivery(ctx context.Context, project, id string) error
	DeadLetterDelivery(ctx context.Context, project string, d Delivery, lastErr string, at int64) (bool, error)
	DeadLetters(ctx context.Context, project, before string, limit int) ([]DeadLetter, bool, error)
}

// Policy says when the outbox tries a delivery again.
type Policy struct {
	// Delays[i] is the time from the start of attempt i+1 to the start of attempt i+2;
	// attempts = len(Delays)+1, then the delivery is dead-lettered. Each delay is raised to at
	// least Timeout+claimMargin, so a delivery is claimed again only once its previous attempt
	// has certainly ended: no two attempts of one delivery overlap, on any replica.
	Delays   []time.Duration
	Timeout  time.Duration // per attempt
	Poll     time.Duration // how often a worker looks for new and due deliveries
	Parallel int           // attempts in flight per worker at most
}

// claimMargin covers the time between Redis granting a claim and the attempt's deadline
// starting in this process.
const claimMargin = 250 * time.Millisecond

// DefaultPolicy: five attempts over about 37 minutes. v1 made three within a few seconds from
// memory; a durable outbox can afford to outwait a receiver's deploy or short outage.
func DefaultPolicy() Policy {
	return Policy{Delays: []time.Duration{15 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute},
		Timeout: webhookAttemptTimeout, Poll: time.Second, Parallel: 16}
}

// retryAfter is how long after the start of attempt n attempt n+1 may be claimed.
func (p Policy) retryAfter(n int) time.Duration {
	floor := p.Timeout + claimMargin
	if len(p.Delays) == 0 {
		return floor
	}
	return max(p.Delays[min(max(n, 1), len(p.Delays))-1], floor)
}

func (p Policy) attempts() int { return len(p.Delays) + 1 }

// Service manages webhooks and delivers their events through a per-project outbox in Redis: an
// event is queued in the request that caused it, before that request is answered, and workers
// on every replica deliver it at least once, retrying with backoff across restarts; deliveries
// that fail every attempt land in a dead-letter list readable over the API.
type Service struct {
	store         Store
	clock         core.Clock
	deliverer     *Deliverer
	allowLoopback bool
	consumer      string // this worker's name in the outbox consumer groups

	// Policy is read when deliveries are claimed; set it before the worker starts.
	Policy Policy
	// Projects lists the outboxes the worker drains; nil = every project with one (the
	// store's index). Tests narrow it so test binaries sharing one Redis do not drain each
	// other's.
	Projects func(ctx context.Context) ([]string, error)
	Observer core.Observer // counts deliveries by outcome; nil = not counted

	slots   chan struct{} // one per attempt in flight
	pending sync.WaitGroup
	// base outlives the pass that claimed a delivery and ends when Shutdown's deadline passes;
	// an attempt cut short stays pending and is resumed by whichever worker claims it next.
	base   context.Context
	cancel context.CancelFunc
}

// New builds the service; allowLoopback admits receivers on this machine (development).
func New(store Store, clock core.Clock, allowLoopback bool) *Service {
	base, cancel := context.WithCancel(context.Background())
	host, _ := os.Hostname()
	return &Service{store: store, clock: clock, deliverer: NewDeliverer(allowLoopback), allowLoopback: allowLoopback,
		consumer: fmt.Sprintf("%s-%d-%s", host, os.Getpid(), core.NewID()), Policy: DefaultPolicy(),
		base: base, cancel: cancel}
}
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

// ConversationCreated queues conversation.created for every active subscriber. It runs before
// the creating request is answered, so an acknowledged conversation has its deliveries in the
// outbox; the request does not wait for receivers.
func (w *Service) ConversationCreated(ctx context.Context, project string, c conversations.Conversation) {
	const event = "conversation.created"
	// The client hanging up must not cancel the enqueue of a conversation already created.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	hooks, err := w.store.Webhooks(ctx, project)
	if err != nil {
		core.Observe(w.Observer, core.EventWebhookLost, 1)
		slog.ErrorContext(ctx, "webhooks: event lost, subscribers unreadable", "project", project, "event", event, "conversation", c.ID, "err", err)
		return
	}
	ts := core.NowMs(w.clock)
	body, err := payload(event, ts, map[string]any{"conversation_id": c.ID, "project_id": project, "external_id": c.ExternalID,
		"title": c.Title, "message_count": c.MessageCount, "token_count": c.TokenCount, "created_at": c.CreatedAt})
	if err != nil {
		slog.ErrorContext(ctx, "webhooks: encode", "err", err)
		return
	}
	var ds []Delivery
	for _, h := range hooks {
		if h.Active && slices.Contains(h.Events, event) {
			ds = append(ds, Delivery{WebhookID: h.ID, Event: event, Timestamp: ts, Body: body})
		}
	}
	if err := w.store.EnqueueDeliveries(ctx, project, ds); err != nil {
		core.Observe(w.Observer, core.EventWebhookLost, len(ds))
		slog.ErrorContext(ctx, "webhooks: event lost, outbox unwritable", "project", project, "event", event, "conversation", c.ID,
			"deliveries", len(ds), "err", err)
	}
}

// enqueueTimeout bounds the outbox write a creating request waits for.
const enqueueTimeout = 5 * time.Second

// Worker is the background job that claims due deliveries from every outbox and attempts
// them, at most Policy.Parallel at once. Every replica runs one; the consumer group shares the
// work. Shutdown (of the Service, after the Loop's) waits for the attempts in flight.
func (w *Service) Worker(onErr func(error)) *core.Loop {
	w.slots = make(chan struct{}, max(w.Policy.Parallel, 1))
	return &core.Loop{Name: "webhooks.Worker", Every: w.Policy.Poll, Immediately: true, OnErr: onErr, Pass: w.pass}
}

func (w *Service) pass(ctx context.Context) error {
	list := w.Projects
	if list == nil {
		list = w.store.OutboxProjects
	}
	projects, err := list(ctx)
	if err != nil {
		return err
	}
	// Shuffled so that when the slots run out, the same projects are not always the ones left.
	rand.Shuffle(len(projects), func(i, j int) { projects[i], projects[j] = projects[j], projects[i] })
	var errs []error
	for _, p := range projects {
		free := cap(w.slots) - len(w.slots) // only this goroutine takes slots
		if free == 0 || ctx.Err() != nil {
			break
		}
		ds, err := w.store.ClaimDeliveries(ctx, p, w.consumer, free, w.Policy.retryAfter)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, d := range ds {
			w.slots <- struct{}{}
			w.pending.Go(func() {
				defer func() { <-w.slots }()
				w.attempt(p, d)
			})
		}
	}
	return errors.Join(errs...)
}

// attempt makes one attempt of a claimed delivery and records the outcome. A failure with
// attempts left needs no write: the delivery stays pending and is claimed again after its
// backoff.
func (w *Service) attempt(project string, d Delivery) {
	// The deadline runs from the claim, so it ends before the delivery can be claimed again.
	ctx, cancel := context.WithTimeout(w.base, w.Policy.Timeout)
	defer cancel()
	log := slog.With("project", project, "webhook", d.WebhookID, "delivery", d.ID, "attempt", d.Attempt)
	hook, err := w.store.Webhook(ctx, project, d.WebhookID)
	if err != nil {
		log.Warn("webhook delivery: read webhook", "err", err)
		return
	}
	// Recording the outcome must not be cut by the attempt's deadline.
	after, stop := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer stop()
	switch {
	case hook == nil || !hook.Active:
		if err := w.store.AckDelivery(after, project, d.ID); err != nil {
			log.Warn("webhook delivery: drop", "err", err)
			return
		}
		core.Observe(w.Observer, core.EventWebhookDropped, 1)
		log.Info("webhook delivery dropped: the webhook was deleted or deactivated")
		return
	case d.Attempt > w.Policy.attempts():
		// Claimed again after its last attempt never finished (the process stopped during it).
		w.deadLetter(after, log, project, d, d.Attempt-1, "the last attempt was interrupted (the server stopped during it)")
		return
	}
	err = w.deliverer.Send(ctx, hook.URL, hook.Secret, d)
	switch {
	case err == nil:
		if err := w.store.AckDelivery(after, project, d.ID); err != nil {
			// Delivered but still pending: it will be sent again (at least once, not exactly).
			log.Warn("webhook delivery: acknowledge", "err", err)
			return
		}
		core.Observe(w.Observer, core.EventWebhookOK, 1)
		if err := w.store.TouchWebhook(after, project, d.WebhookID, core.NowMs(w.clock)); err != nil {
			log.Warn("webhook delivery: touch", "err", err)
		}
	case w.base.Err() != nil:
		log.Info("webhook attempt cut short by shutdown; it resumes after a restart or on another replica", "err", err)
	case d.Attempt >= w.Policy.attempts():
		w.deadLetter(after, log, project, d, d.Attempt, err.Error())
	default:
		core.Observe(w.Observer, core.EventWebhookRetry, 1)
		log.Info("webhook attempt failed; will retry", "err", err, "retry_in", (w.Policy.retryAfter(d.Attempt)).String())
	}
}

func (w *Service) deadLetter(ctx context.Context, log *slog.Logger, project string, d Delivery, attempts int, reason string) {
	d.Attempt = attempts
	moved, err := w.store.DeadLetterDelivery(ctx, project, d, reason, core.NowMs(w.clock))
	if err != nil {
		log.Warn("webhook delivery: dead-letter", "err", err)
		return
	}
	if moved {
		core.Observe(w.Observer, core.EventWebhookFailed, 1)
		log.Warn("webhook delivery failed every attempt; dead-lettered", "attempts", attempts, "err", reason)
	}
}

// deadLetterCursor is the shape of a dead-letter id (a Redis stream id).
var deadLetterCursor = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// DeadLetters pages the project's deliveries that failed every attempt, newest first.
func (w *Service) DeadLetters(ctx context.Context, p core.Principal, cursor string, limit int) (DeadLetterPage, error) {
	const op = "webhooks.DeadLetters"
	if err := p.Authorize(core.OpWebhookDeadLetters); err != nil {
		return DeadLetterPage{}, err
	}
	if cursor != "" && !deadLetterCursor.MatchString(cursor) {
		return DeadLetterPage{}, core.BadRequest(op, "cursor", "Invalid cursor: use next_cursor of the previous page")
	}
	limit = core.ClampLimit(limit, 50, 100)
	l, more, err := w.store.DeadLetters(ctx, p.ProjectID, cursor, limit)
	if err != nil {
		return DeadLetterPage{}, core.Internal(op, err)
	}
	page := DeadLetterPage{Data: l, Pagination: core.Pagination{Limit: len(l)}}
	if more {
		page.Pagination.NextCursor = &l[len(l)-1].ID
	}
	return page, nil
}

// Wait blocks until every attempt started so far has finished (tests).
func (w *Service) Wait() { w.pending.Wait() }

// Shutdown waits for the attempts in flight until ctx ends, then cuts them short; they stay
// pending in the outbox. Stop the Worker loop first, so that no new ones start.
func (w *Service) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	go func() { w.pending.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		w.cancel()
		<-done
		return core.E("webhooks.Shutdown", core.CodeServiceUnavailable, "webhook attempts were cut short by shutdown; they resume from the outbox")
	}
}
