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
	handle   func(*Server, http.ResponseWriter, *http.Request)
}

// queryTokenRoutes also accept a capability token as ?token= (v1: SSE clients cannot set headers).
var queryTokenRoutes = map[string]bool{http.MethodGet + " /api/v1/states/watch": true}

// Routes is every authenticated REST route.
var Routes = []Route{
	{http.MethodPut, "/api/v1/states/{state_key}", core.ScopeStateWrite,
		"Create or replace a state", core.StateWrite{}, core.State{}, http.StatusOK, (*Server).putState},
	{http.MethodGet, "/api/v1/states/{state_key}", core.ScopeStateRead,
		"Read a state, now or as of at_sequence / at_time", nil, core.State{}, http.StatusOK, (*Server).getState},
	{http.MethodDelete, "/api/v1/states/{state_key}", core.ScopeStateWrite,
		"Soft-delete a state", nil, core.DeleteResult{}, http.StatusOK, (*Server).deleteState},
	{http.MethodGet, "/api/v1/states/{state_key}/events", core.ScopeStateRead,
		"List a state's events", nil, core.EventPage{}, http.StatusOK, (*Server).listStateEvents},
	{http.MethodGet, "/api/v1/states/watch", core.ScopeStateWatch,
		"Server-sent events of every state event: backlog after ?after / Last-Event-ID, then live", nil, nil, http.StatusOK, (*Server).watchStates},
	{http.MethodPost, "/api/v1/states/query", core.ScopeStateRead,
		"Query states across the project", core.StateQuery{}, core.StatePage{}, http.StatusOK, (*Server).queryStates},
	{http.MethodPost, "/api/v1/states/{state_key}/lease", core.ScopeLeaseWrite,
		"Acquire the lease on a state key (wait_ms waits, first come first served)", core.AcquireLease{}, core.Lease{}, http.StatusCreated, (*Server).acquireLease},
	{http.MethodGet, "/api/v1/states/{state_key}/lease", core.ScopeStateRead,
		"The live lease on a state key", nil, core.Lease{}, http.StatusOK, (*Server).leaseOnKey},
	{http.MethodPost, "/api/v1/leases/{id}/renew", core.ScopeLeaseWrite,
		"Renew a lease: expiry becomes now + ttl_ms", core.RenewLease{}, core.Lease{}, http.StatusOK, (*Server).renewLease},
	{http.MethodDelete, "/api/v1/leases/{id}", core.ScopeLeaseWrite,
		"Release a lease", nil, nil, http.StatusNoContent, (*Server).releaseLease},
	{http.MethodGet, "/api/v1/leases/{id}", core.ScopeStateRead,
		"A lease by id, whatever its status", nil, core.Lease{}, http.StatusOK, (*Server).getLease},
	{http.MethodGet, "/api/v1/leases", core.ScopeStateRead,
		"Active leases of the project, soonest expiry first", nil, core.LeasePage{}, http.StatusOK, (*Server).listLeases},
	{http.MethodGet, "/api/v1/leases/events", core.ScopeStateRead,
		"Lease transitions (acquired, renewed, released, expired), oldest first", nil, core.LeaseEventPage{}, http.StatusOK, (*Server).listLeaseEvents},
}
