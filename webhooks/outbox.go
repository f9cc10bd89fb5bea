package webhooks

import (
	"encoding/json"

	"github.com/agentstate/agentstate-go/core"
)

// Delivery is one event for one webhook, waiting in its project's outbox (a Redis stream).
type Delivery struct {
	ID        string // outbox entry id; sent as X-AgentState-Delivery so receivers can deduplicate
	WebhookID string
	Event     string
	Timestamp int64  // the payload's timestamp (ms), also X-AgentState-Timestamp
	Body      []byte // built once at enqueue: every attempt sends exactly these bytes
	// Attempt is this attempt's number, 1 for the first. An attempt cut short by a crash
	// counts: the outbox cannot tell it from one that failed.
	Attempt int
}

// DeadLetter is a delivery that failed every attempt.
type DeadLetter struct {
	ID         string          `json:"id" jsonschema_description:"Dead-letter entry id; the list's cursor."`
	DeliveryID string          `json:"delivery_id" jsonschema_description:"The X-AgentState-Delivery id the attempts carried."`
	WebhookID  string          `json:"webhook_id"`
	Event      string          `json:"event"`
	Payload    json.RawMessage `json:"payload" jsonschema:"type=object" jsonschema_description:"The body every attempt sent."`
	Attempts   int             `json:"attempts"`
	LastError  string          `json:"last_error" jsonschema_description:"Why the last attempt failed: a status or a transport error."`
	FailedAt   int64           `json:"failed_at"`
}

// DeadLetterPage is GET /api/v1/webhooks/dead-letters, newest first.
type DeadLetterPage struct {
	Data       []DeadLetter    `json:"data"`
	Pagination core.Pagination `json:"pagination"`
}
