package core

// The client-facing texts that more than one layer produces, in one table. v1's texts are wire
// values (compat-v1.md §4, §6): SDKs and agents match on them, so they must not change. Stores
// and transports use these names and never write a text of their own; validation messages
// that belong to one check stay beside that check.
const (
	MsgUnauthorized      = "Unauthorized"
	MsgTokenLacksScope   = "Capability token does not have required scope"
	MsgMissingScope      = "Missing required scope: " // followed by the scope
	MsgCannotDelegate    = "This capability token cannot delegate (its max_depth is 0)"
	MsgBoundAgent        = "This credential is bound to agent " // followed by the agent
	MsgInternal          = "Internal server error"
	MsgStoreUnavailable  = "The store is temporarily unavailable; retry shortly"
	MsgAudienceBound     = "This token is bound to one resource and cannot mint tokens for another"
	MsgMCPSessionUnknown = "MCP session not found; initialize a new session"
	MsgShuttingDown      = "The server is shutting down; reconnect to resume (a watch resumes from its Last-Event-ID)"

	MsgInvalidUTF8      = "Invalid JSON body: text must be valid UTF-8"
	MsgMalformedRequest = "Malformed request: the request line or a header cannot be parsed (in a path, % must be followed by two hex digits)"
	MsgSequenceCursor   = "Cursor must be a valid positive integer (an event sequence)"
	MsgStreamIDCursor   = "Cursor must be an event id such as 1700000000000-0"
	MsgWatchCursor      = "Cursor must be an event sequence (or <sequence>.<lease event id>)"
	// v1's tag message (conversation tags); state tags also take ':' and '.'.
	MsgTagChars          = "tag can only contain letters, numbers, hyphens, and underscores"
	MsgStateTagChars     = "tag can only contain letters, numbers, hyphens, underscores, colons, and periods"
	MsgStoreReset        = "The store lost data under this server (flushed, restored from an older copy, or failed over without its last writes): requests are refused until an operator restores it and restarts the server"
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

	// OAuth (error_description texts; the error codes are RFC 6749's).
	MsgOAuthUnknownClient      = "Unknown client_id"
	MsgOAuthClientAuth         = "Client authentication failed"
	MsgOAuthRedirectMismatch   = "redirect_uri is not one of the client's registered redirect URIs"
	MsgOAuthPKCERequired       = "code_challenge with code_challenge_method=S256 is required"
	MsgOAuthPKCEMismatch       = "code_verifier does not match the code_challenge"
	MsgOAuthCodeInvalid        = "The authorization code is invalid, expired or already used"
	MsgOAuthRefreshInvalid     = "The refresh token is invalid, expired or revoked"
	MsgOAuthReplay             = "This token was already used: every token of the grant is now revoked"
	MsgOAuthResourceMismatch   = "resource must be this server's MCP endpoint"
	MsgOAuthScopeInvalid       = "scope must be space-separated capability scopes: "
	MsgOAuthScopeWider         = "scope may not exceed the scope originally granted"
	MsgOAuthGrantType          = "Unsupported grant_type"
	MsgOAuthGrantNotAllowed    = "This client is not registered for that grant_type"
	MsgOAuthResponseType       = "response_type must be code"
	MsgOAuthRedirectURIs       = "redirect_uris must be https, http on a loopback address, or a private-use scheme, without a fragment"
	MsgOAuthCIMDUnsafe         = "The client metadata document URL must be https on a public address"
	MsgOAuthCIMDFetch          = "The client metadata document could not be fetched or is invalid"
	MsgOAuthCredentialsNeedKey = "Registering a client_credentials client needs Authorization: Bearer <API key of the project>"
	MsgOAuthRateLimited        = "Too many requests from this address; retry after "
	MsgOAuthConsentKey         = "That is not a valid API key: sign in with an API key (as_live_…) of the project"
	MsgOAuthCSRF               = "The form expired or was not sent from this page; reload and try again"
	MsgOAuthDenied             = "The user denied the request"
)
