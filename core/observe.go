package core

// Observer is told what happens inside the services, for metrics. Core names the events; the
// metrics package (or a test) decides what to do with them, so core imports no metrics library.
// A nil Observer on a service means nothing is counted.
type Observer interface {
	// Observe adds delta to event (a counter, or a gauge when delta may be negative).
	Observe(event Event, delta int)
}

// Event is something countable a service does.
type Event string

const (
	EventLeaseGranted   Event = "lease_granted"   // a lease taken at once, nobody waiting
	EventLeaseHandoff   Event = "lease_handoff"   // a lease granted to a caller that had queued for it
	EventLeaseConflict  Event = "lease_conflict"  // an acquire that gave up: LEASE_CONFLICT
	EventLeaseReleased  Event = "lease_released"  // released by its holder
	EventLeaseExpired   Event = "lease_expired"   // ended by the sweeper when its TTL passed
	EventLeaseWaiting   Event = "lease_waiting"   // gauge: acquirers queued in this process
	EventRateLimited    Event = "rate_limited"    // a request refused with RATE_LIMITED
	EventWebhookOK      Event = "webhook_ok"      // an event delivered to a receiver
	EventWebhookRetry   Event = "webhook_retry"   // an attempt failed; the delivery will be retried
	EventWebhookFailed  Event = "webhook_failed"  // every attempt failed: dead-lettered
	EventWebhookDropped Event = "webhook_dropped" // its webhook was deleted or deactivated first
	EventWebhookLost    Event = "webhook_lost"    // the outbox could not be written: never queued
	EventWatchOpen      Event = "watch_open"      // gauge: state watches streaming
	EventLongPollOpen   Event = "long_poll_open"  // gauge: long-polls waiting for a version
)

// Observe reports e to o when o is set.
func Observe(o Observer, e Event, delta int) {
	if o != nil {
		o.Observe(e, delta)
	}
}
