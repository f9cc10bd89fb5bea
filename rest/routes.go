package rest

import (
	"net/http"

	"github.com/agentstate/agentstate-go/core"
)

// Route is one authenticated REST route. The table drives the router, the API reference and
// the authorization tests, so a route cannot exist without being documented and tested.
type Route struct {
	Method   string
	Pattern  string // chi pattern
	Scope    string // scope the credential needs (checked in core)
	Summary  string
	Request  any // zero value of the JSON body type; nil when there is no body
	Response any // zero value of the success body type
	Status   int // success status
	Access   Access
	handle   func(*Server, http.ResponseWriter, *http.Request)
}

// Access says which credentials a route accepts.
type Access int

const (
	keyOrToken Access = iota // API keys and capability tokens (v1: states, leases, claims)
	keyOnly                  // API keys only; a capability token gets 401 (v1: everything else)
	adminOnly                // the operator's AGENTSTATE_ADMIN_TOKEN (project management)
)

// AcceptsTokens reports whether a capability token may call the route.
func (r Route) AcceptsTokens() bool { return r.Access == keyOrToken }

// AdminOnly reports whether the route takes the operator token instead of a project credential.
func (r Route) AdminOnly() bool { return r.Access == adminOnly }

// queryTokenRoutes also accept a capability token as ?token= (v1: SSE clients cannot set headers).
var queryTokenRoutes = map[string]bool{http.MethodGet + " /api/v1/states/watch": true}

// Routes is every authenticated REST route.
var Routes = []Route{
	{http.MethodPut, "/api/v1/states/{state_key}", core.ScopeStateWrite,
		"Create or replace a state", core.StateWrite{}, core.State{}, http.StatusOK, keyOrToken, (*Server).putState},
	{http.MethodGet, "/api/v1/states/{state_key}", core.ScopeStateRead,
		"Read a state, now or as of at_sequence / at_time", nil, core.State{}, http.StatusOK, keyOrToken, (*Server).getState},
	{http.MethodDelete, "/api/v1/states/{state_key}", core.ScopeStateWrite,
		"Soft-delete a state", nil, core.DeleteResult{}, http.StatusOK, keyOrToken, (*Server).deleteState},
	{http.MethodGet, "/api/v1/states/{state_key}/events", core.ScopeStateRead,
		"List a state's events", nil, core.EventPage{}, http.StatusOK, keyOrToken, (*Server).listStateEvents},
	{http.MethodGet, "/api/v1/states/watch", core.ScopeStateWatch,
		"Server-sent events of every state event: backlog after ?after / Last-Event-ID, then live", nil, nil, http.StatusOK, keyOrToken, (*Server).watchStates},
	{http.MethodPost, "/api/v1/states/query", core.ScopeStateRead,
		"Query states across the project", core.StateQuery{}, core.StatePage{}, http.StatusOK, keyOrToken, (*Server).queryStates},
	{http.MethodPost, "/api/v1/states/{state_key}/lease", core.ScopeLeaseWrite,
		"Acquire the lease on a state key (wait_ms waits, first come first served)", core.AcquireLease{}, core.Lease{}, http.StatusCreated, keyOrToken, (*Server).acquireLease},
	{http.MethodGet, "/api/v1/states/{state_key}/lease", core.ScopeStateRead,
		"The live lease on a state key", nil, core.Lease{}, http.StatusOK, keyOrToken, (*Server).leaseOnKey},
	{http.MethodPost, "/api/v1/leases/{id}/renew", core.ScopeLeaseWrite,
		"Renew a lease: expiry becomes now + ttl_ms", core.RenewLease{}, core.Lease{}, http.StatusOK, keyOrToken, (*Server).renewLease},
	{http.MethodDelete, "/api/v1/leases/{id}", core.ScopeLeaseWrite,
		"Release a lease", nil, nil, http.StatusNoContent, keyOrToken, (*Server).releaseLease},
	{http.MethodGet, "/api/v1/leases/{id}", core.ScopeStateRead,
		"A lease by id, whatever its status", nil, core.Lease{}, http.StatusOK, keyOrToken, (*Server).getLease},
	{http.MethodGet, "/api/v1/leases", core.ScopeStateRead,
		"Active leases of the project, soonest expiry first", nil, core.LeasePage{}, http.StatusOK, keyOrToken, (*Server).listLeases},
	{http.MethodGet, "/api/v1/leases/events", core.ScopeStateRead,
		"Lease transitions (acquired, renewed, released, expired), oldest first", nil, core.LeaseEventPage{}, http.StatusOK, keyOrToken, (*Server).listLeaseEvents},

	{http.MethodPost, "/api/v1/capability-tokens", core.ScopeKeysWrite,
		"Mint a capability token (a key needs keys:write; a token with max_depth > 0 mints a narrower child)", core.MintTokenRequest{}, core.CapabilityToken{}, http.StatusCreated, keyOrToken, (*Server).mintToken},
	{http.MethodGet, "/api/v1/capability-tokens", core.ScopeKeysRead,
		"Live capability tokens (a token sees its own descendants)", nil, core.TokenList{}, http.StatusOK, keyOrToken, (*Server).listTokens},
	{http.MethodDelete, "/api/v1/capability-tokens/{id}", core.ScopeKeysWrite,
		"Revoke a capability token and every token it minted", nil, nil, http.StatusNoContent, keyOrToken, (*Server).revokeToken},
	{http.MethodPost, "/api/v1/keys", core.ScopeKeysWrite,
		"Create an API key no wider than the caller's", core.CreateKeyRequest{}, core.APIKey{}, http.StatusCreated, keyOnly, (*Server).createKey},
	{http.MethodGet, "/api/v1/keys", core.ScopeKeysRead,
		"Every API key of the project, revoked ones included", nil, core.KeyList{}, http.StatusOK, keyOnly, (*Server).listKeys},
	{http.MethodDelete, "/api/v1/keys/{id}", core.ScopeKeysWrite,
		"Revoke an API key", nil, nil, http.StatusNoContent, keyOnly, (*Server).revokeKey},
	{http.MethodPost, "/api/projects/{projectId}/keys", core.ScopeKeysWrite,
		"Legacy: create an API key (projectId must be the caller's)", core.CreateKeyRequest{}, core.APIKey{}, http.StatusCreated, keyOnly, (*Server).createKey},
	{http.MethodGet, "/api/projects/{projectId}/keys", core.ScopeKeysRead,
		"Legacy: list API keys", nil, core.KeyList{}, http.StatusOK, keyOnly, (*Server).listKeys},
	{http.MethodDelete, "/api/projects/{projectId}/keys/{id}", core.ScopeKeysWrite,
		"Legacy: revoke an API key", nil, nil, http.StatusNoContent, keyOnly, (*Server).revokeKey},
	{http.MethodPost, "/api/v1/projects", "",
		"Admin: create a project and its first full-access key", core.CreateProjectRequest{}, core.ProjectWithKey{}, http.StatusCreated, adminOnly, (*Server).createProject},
	{http.MethodGet, "/api/v1/projects", "",
		"Admin: list projects", nil, core.ProjectList{}, http.StatusOK, adminOnly, (*Server).listProjects},
	{http.MethodPatch, "/api/v1/projects/{id}", "",
		"Admin: set or clear a project's conversation retention_days", core.UpdateProjectRequest{}, core.Project{}, http.StatusOK, adminOnly, (*Server).updateProject},
	{http.MethodDelete, "/api/v1/projects/{id}", "",
		"Admin: delete a project, every key and token it issued, and all its data", nil, nil, http.StatusNoContent, adminOnly, (*Server).deleteProject},
	{http.MethodPost, "/api/v1/claims", core.ScopeClaimWrite,
		"Create a claim with 1..50 evidence items; it is appended to the project's claims log", core.CreateClaim{}, core.Claim{}, http.StatusCreated, keyOrToken, (*Server).createClaim},
	{http.MethodGet, "/api/v1/claims", core.ScopeClaimRead,
		"List claims (without evidence), newest first", nil, core.ClaimPage{}, http.StatusOK, keyOrToken, (*Server).listClaims},
	{http.MethodGet, "/api/v1/claims/{id}", core.ScopeClaimRead,
		"A claim with its evidence", nil, core.Claim{}, http.StatusOK, keyOrToken, (*Server).getClaim},
	{http.MethodPost, "/api/v1/claims/{id}/verify", core.ScopeClaimWrite,
		"Verify every evidence item now; the run is stored and logged", nil, core.VerificationRun{}, http.StatusCreated, keyOrToken, (*Server).verifyClaim},
	{http.MethodGet, "/api/v1/claims/{id}/verifications", core.ScopeClaimRead,
		"Every verification run of a claim, oldest first", nil, core.RunList{}, http.StatusOK, keyOrToken, (*Server).listRuns},
	{http.MethodGet, "/api/v1/claims/{id}/bundle", core.ScopeClaimRead,
		"Portable proof: the claim, its runs, the log from its creation to the head and a signed checkpoint", nil, core.ClaimBundle{}, http.StatusOK, keyOrToken, (*Server).claimBundle},
	{http.MethodGet, "/api/v1/claims/log", core.ScopeClaimRead,
		"The project's claims log (hash chain), oldest first", nil, core.LogPage{}, http.StatusOK, keyOrToken, (*Server).claimLog},
	{http.MethodGet, "/api/v1/claims/log/checkpoint", core.ScopeClaimRead,
		"A signed checkpoint of the claims log head", nil, core.Checkpoint{}, http.StatusOK, keyOrToken, (*Server).claimCheckpoint},
	{http.MethodGet, "/api/v1/claims/log/export", core.ScopeClaimRead,
		"The whole claims log with a signed checkpoint, for the offline verifier", nil, core.LogExport{}, http.StatusOK, keyOrToken, (*Server).exportClaimLog},
	{http.MethodPost, "/api/v1/conversations", core.ScopeConversationsWrite,
		"Create a conversation with its first messages (fires conversation.created webhooks)", core.CreateConversation{}, core.Conversation{}, http.StatusCreated, keyOnly, (*Server).createConversation},
	{http.MethodGet, "/api/v1/conversations", core.ScopeConversationsRead,
		"List conversations by updated_at (cursor, order, tag)", nil, core.ConversationPage{}, http.StatusOK, keyOnly, (*Server).listConversations},
	{http.MethodGet, "/api/v1/conversations/search", core.ScopeConversationsRead,
		"Full-text search: conversations whose messages hold every word, with a snippet", nil, core.SearchPage{}, http.StatusOK, keyOnly, (*Server).searchConversations},
	{http.MethodPost, "/api/v1/conversations/export", core.ScopeConversationsRead,
		"Export up to 100 conversations with their messages (default: the 100 most recently updated)", core.IDList{}, core.ExportResult{}, http.StatusOK, keyOnly, (*Server).exportConversations},
	{http.MethodPost, "/api/v1/conversations/bulk-delete", core.ScopeConversationsWrite,
		"Delete up to 100 conversations", core.IDList{}, core.DeletedCount{}, http.StatusOK, keyOnly, (*Server).bulkDeleteConversations},
	{http.MethodPost, "/api/v1/conversations/traces/ingest", core.ScopeConversationsWrite,
		"Ingest a trace: a conversation of observations ($N parent references resolved)", core.TraceIngest{}, core.TraceResult{}, http.StatusCreated, keyOnly, (*Server).ingestTrace},
	{http.MethodGet, "/api/v1/conversations/traces", core.ScopeConversationsRead,
		"List conversations holding observations", nil, core.TracePage{}, http.StatusOK, keyOnly, (*Server).listTraces},
	{http.MethodGet, "/api/v1/conversations/traces/{id}", core.ScopeConversationsRead,
		"A trace: the conversation and its observation tree", nil, core.Trace{}, http.StatusOK, keyOnly, (*Server).getTrace},
	{http.MethodGet, "/api/v1/conversations/by-external-id/{externalId}", core.ScopeConversationsRead,
		"A conversation by external_id, with all messages", nil, core.Conversation{}, http.StatusOK, keyOnly, (*Server).getConversationByExternalID},
	{http.MethodGet, "/api/v1/conversations/{id}", core.ScopeConversationsRead,
		"A conversation with its first 1000 messages (fields= picks keys)", nil, core.Conversation{}, http.StatusOK, keyOnly, (*Server).getConversation},
	{http.MethodPut, "/api/v1/conversations/{id}", core.ScopeConversationsWrite,
		"Update title and/or metadata", core.UpdateConversation{}, core.Conversation{}, http.StatusOK, keyOnly, (*Server).updateConversation},
	{http.MethodDelete, "/api/v1/conversations/{id}", core.ScopeConversationsWrite,
		"Delete a conversation with its messages and tags", nil, nil, http.StatusNoContent, keyOnly, (*Server).deleteConversation},
	{http.MethodPost, "/api/v1/conversations/{id}/messages", core.ScopeConversationsWrite,
		"Append messages; aggregates move in the same write", core.AppendMessages{}, core.MessagesResult{}, http.StatusCreated, keyOnly, (*Server).appendMessages},
	{http.MethodGet, "/api/v1/conversations/{id}/messages", core.ScopeConversationsRead,
		"Page a conversation's messages (after = message id)", nil, core.MessagePage{}, http.StatusOK, keyOnly, (*Server).listMessages},
	{http.MethodGet, "/api/v1/conversations/{id}/analytics", core.ScopeAnalyticsRead,
		"One conversation's analytics", nil, core.ConversationAnalytics{}, http.StatusOK, keyOnly, (*Server).conversationAnalytics},
	{http.MethodPost, "/api/v1/conversations/{id}/generate-title", core.ScopeConversationsWrite,
		"Generate and store a title", nil, core.GeneratedTitle{}, http.StatusOK, keyOnly, (*Server).generateTitle},
	{http.MethodPost, "/api/v1/conversations/{id}/follow-ups", core.ScopeConversationsWrite,
		"Suggest up to three follow-up questions", nil, core.FollowUpQuestions{}, http.StatusOK, keyOnly, (*Server).followUps},
	{http.MethodPost, "/api/v1/conversations/{id}/generate-all", core.ScopeConversationsWrite,
		"Generate and store a title, and suggest follow-ups", nil, core.GeneratedAll{}, http.StatusOK, keyOnly, (*Server).generateAll},
	{http.MethodGet, "/api/v1/conversations/{id}/tags", core.ScopeConversationsRead,
		"A conversation's tags", nil, core.TagList{}, http.StatusOK, keyOnly, (*Server).conversationTags},
	{http.MethodPost, "/api/v1/conversations/{id}/tags", core.ScopeConversationsWrite,
		"Add tags (insert or ignore); returns all of them", core.AddTagsRequest{}, core.TagList{}, http.StatusCreated, keyOnly, (*Server).addConversationTags},
	{http.MethodDelete, "/api/v1/conversations/{id}/tags/{tag}", core.ScopeConversationsWrite,
		"Remove a tag", nil, nil, http.StatusNoContent, keyOnly, (*Server).removeConversationTag},
	{http.MethodGet, "/api/v1/tags", core.ScopeConversationsRead,
		"Distinct tags of the project's conversations", nil, core.TagList{}, http.StatusOK, keyOnly, (*Server).projectTags},
	{http.MethodGet, "/api/v1/analytics/summary", core.ScopeAnalyticsRead,
		"Totals and averages of conversations created in [start, end]", nil, core.Summary{}, http.StatusOK, keyOnly, (*Server).analyticsSummary},
	{http.MethodGet, "/api/v1/analytics/timeseries", core.ScopeAnalyticsRead,
		"Conversations, messages or tokens per day, week or month", nil, core.Timeseries{}, http.StatusOK, keyOnly, (*Server).analyticsTimeseries},
	{http.MethodGet, "/api/v1/analytics/tags", core.ScopeAnalyticsRead,
		"Conversations, messages and tokens per tag", nil, core.TagStats{}, http.StatusOK, keyOnly, (*Server).analyticsTags},
	{http.MethodPost, "/api/v1/webhooks", core.ScopeWebhooksWrite,
		"Register a webhook (https, public address); the secret is shown once", core.CreateWebhook{}, core.Webhook{}, http.StatusCreated, keyOnly, (*Server).createWebhook},
	{http.MethodGet, "/api/v1/webhooks", core.ScopeWebhooksWrite,
		"List webhooks", nil, core.WebhookList{}, http.StatusOK, keyOnly, (*Server).listWebhooks},
	{http.MethodGet, "/api/v1/webhooks/{id}", core.ScopeWebhooksWrite,
		"A webhook", nil, core.Webhook{}, http.StatusOK, keyOnly, (*Server).getWebhook},
	{http.MethodPut, "/api/v1/webhooks/{id}", core.ScopeWebhooksWrite,
		"Change a webhook's url, events or active flag", core.UpdateWebhook{}, core.Webhook{}, http.StatusOK, keyOnly, (*Server).updateWebhook},
	{http.MethodDelete, "/api/v1/webhooks/{id}", core.ScopeWebhooksWrite,
		"Delete a webhook", nil, nil, http.StatusNoContent, keyOnly, (*Server).deleteWebhook},
}
