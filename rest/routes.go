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
}
