package core

// The client-facing texts that more than one layer produces, in one table. v1's texts are wire
// values (compat-v1.md §4, §6): SDKs and agents match on them, so they must not change. Stores
// and transports use these names and never write a text of their own; validation messages
// that belong to one check stay beside that check.
const (
	MsgUnauthorized     = "Unauthorized"
	MsgTokenLacksScope  = "Capability token does not have required scope"
	MsgMissingScope     = "Missing required scope: " // followed by the scope
	MsgCannotDelegate   = "This capability token cannot delegate (its max_depth is 0)"
	MsgBoundAgent       = "This credential is bound to agent " // followed by the agent
	MsgInternal         = "Internal server error"
	MsgStoreUnavailable = "The store is temporarily unavailable; retry shortly"
	MsgShuttingDown     = "The server is shutting down; reconnect to resume (a watch resumes from its Last-Event-ID)"

	MsgStoreReset        = "The store lost its data under this server (its generation key is gone or changed): writes are refused until an operator restores it and restarts the server"
	MsgLogWentBack       = "The project's event log went backwards (its data was lost or the project deleted); watch again from the latest sequence"
	MsgCursorAhead       = "The resume point is past the head of the log (the store may have lost writes); watch again without a cursor or from the latest sequence"
	MsgTooManyWatchers   = "Too many open watches and long-polls for this " // followed by the scope: credential, project
	MsgServerWatchesFull = "This server holds as many watches and long-polls as it allows; retry shortly or on another replica"

	MsgStateNotFound       = "State not found"
	MsgStateExists         = "State already exists"
	MsgStateContended      = "The state changed too often during this write; retry it"
	MsgIdempotencyConflict = "Idempotency-Key was already used for a different request"

	MsgLeaseNotFound     = "Lease not found"
	MsgLeaseRequired     = "Active lease requires lease_id"
	MsgLeaseMismatch     = "lease_id does not match active lease"
	MsgLeaseExpired      = "Lease has expired"
	MsgLeaseCursorExpiry = "Cursor lease is no longer active; list again from the start"
	MsgLeaseHeld         = "State already has an active lease"
	MsgLeaseNotYours     = "This lease belongs to another credential: only the credential that acquired it, the tokens it was delegated from and full-access keys may renew, release or write under it"

	MsgClaimNotFound        = "Claim not found"
	MsgConversationNotFound = "Conversation not found"
	MsgExternalIDTaken      = "A conversation with this external_id already exists"
	MsgWebhookNotFound      = "Webhook not found"
)
