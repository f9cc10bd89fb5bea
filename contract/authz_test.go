package contract

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/agentstate/agentstate-go/conversations"
	"github.com/agentstate/agentstate-go/webhooks"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
	"github.com/agentstate/agentstate-go/rest"
	"github.com/agentstate/agentstate-go/tools"
)

// The authorization matrix: every REST route and every MCP tool, called with each kind of
// credential, against project A's objects. Routes and tools come from rest.Routes and
// tools.Inventory; each needs a probe below, so a new one without an entry fails the test.

// authzCase is one column of the matrix.
type authzCase string

const (
	caseNone            authzCase = "no credential"
	caseMalformed       authzCase = "malformed"
	caseUnknown         authzCase = "unknown key"
	caseRevokedKey      authzCase = "revoked key"
	caseRevokedAncestor authzCase = "token with a revoked ancestor"
	caseExpired         authzCase = "expired token"
	caseOtherProject    authzCase = "other project's key"
	caseMissingScope    authzCase = "missing scope"
	caseWildcard        authzCase = "wildcard scope"
	caseOutOfResource   authzCase = "out-of-resource key"
)

var authzCases = []authzCase{caseNone, caseMalformed, caseUnknown, caseRevokedKey, caseRevokedAncestor,
	caseExpired, caseOtherProject, caseMissingScope, caseWildcard, caseOutOfResource}

// fixture makes fresh objects in project A, so destructive probes can run once per case.
type fixture struct {
	t   *testing.T
	s   *testenv.Server
	a   *app.App
	n   int
	ctx context.Context
	// as is the credential the next probe is sent with: leases are acquired with it when it
	// may acquire them, since only a lease's own acquirer (or a full key) may renew or release.
	as string
}

// key is a fresh state key outside the out-of-resource key's "allowed/*".
func (fx *fixture) key() string {
	fx.n++
	return fmt.Sprintf("probe/%d", fx.n)
}

func (fx *fixture) state() string {
	k := fx.key()
	_, _, err := fx.a.States.Put(fx.ctx, fx.s.Project.P, core.PutState{Key: k, Body: core.StateWrite{AgentID: "a", Data: []byte(`{"v":1}`)}})
	require.NoError(fx.t, err)
	return k
}

func (fx *fixture) lease() core.Lease {
	p, key := fx.s.Project.P, fx.key()
	if q, err := fx.a.Auth.Authenticate(fx.ctx, fx.as); err == nil && q.ProjectID == p.ProjectID && q.Can(core.ScopeLeaseWrite) && q.CanTouch(key) {
		p = q
	}
	l, err := fx.a.Leases.Acquire(fx.ctx, p, key, core.AcquireLease{Holder: "h"})
	require.NoError(fx.t, err)
	return l
}

func (fx *fixture) apiKeyID() string {
	k, err := fx.a.Keys.CreateAPIKey(fx.ctx, fx.s.Project.P, core.CreateKeyRequest{Name: "victim", Scopes: []string{"state:read"}})
	require.NoError(fx.t, err)
	return k.ID
}

func (fx *fixture) tokenID() string {
	tok, err := fx.a.Keys.MintToken(fx.ctx, fx.s.Project.P, core.MintTokenRequest{Name: "victim", Scopes: []string{"state:read"}})
	require.NoError(fx.t, err)
	return tok.ID
}

func (fx *fixture) claim() string {
	c, err := fx.a.Claims.Create(fx.ctx, fx.s.Project.P, claimOn(fx.key()))
	require.NoError(fx.t, err)
	return c.ID
}

func claimOn(subject string) core.CreateClaim {
	return core.CreateClaim{SubjectType: "task", SubjectID: subject, Statement: "done",
		Evidence: []core.EvidenceInput{{Kind: "text_hash", Source: "s", Data: []byte(`"x"`), Hash: core.SHA256Hex([]byte("x"))}}}
}

func claimBody(subject string) map[string]any {
	return map[string]any{"subject_type": "task", "subject_id": subject, "statement": "done",
		"evidence": []map[string]any{{"kind": "text_hash", "source": "s", "data": "x", "hash": core.SHA256Hex([]byte("x"))}}}
}

func (fx *fixture) trace() string {
	tr, err := fx.a.Convs.IngestTrace(fx.ctx, fx.s.Project.P, conversations.TraceIngest{Observations: []conversations.MessageInput{{ObservationType: ptr("span"), Content: "x"}}})
	require.NoError(fx.t, err)
	return tr.Conversation.ID
}

func (fx *fixture) conv() string {
	c, err := fx.a.Convs.Create(fx.ctx, fx.s.Project.P, conversations.CreateConversation{ExternalID: ptr(fx.key()),
		Messages: []conversations.MessageInput{{Role: "user", Content: "probe words"}}})
	require.NoError(fx.t, err)
	return c.ID
}

// webhook is an inactive webhook: probes that create conversations must not send anything.
func (fx *fixture) webhook() string {
	w, err := fx.a.Hooks.Create(fx.ctx, fx.s.Project.P, webhooks.CreateWebhook{URL: "https://example.com/hook", Events: []string{"conversation.created"}})
	require.NoError(fx.t, err)
	_, err = fx.a.Hooks.Update(fx.ctx, fx.s.Project.P, w.ID, webhooks.UpdateWebhook{Active: ptr(false)})
	require.NoError(fx.t, err)
	return w.ID
}

func esc(k string) string { return url.PathEscape(k) }

// routeProbe builds a request on fresh objects of project A and says what each credential
// that authenticates should get: ok with a wildcard scope, oor with a key limited to
// "allowed/*", other with project B's full-access key.
type routeProbe struct {
	req            func(fx *fixture) (path string, body any)
	ok, oor, other int
}

var routeProbes = map[string]routeProbe{
	"PUT /api/v1/states/{state_key}": {func(fx *fixture) (string, any) {
		return "/api/v1/states/" + esc(fx.key()), putBody
	}, 200, 403, 200},
	"GET /api/v1/states/{state_key}": {func(fx *fixture) (string, any) {
		return "/api/v1/states/" + esc(fx.state()), nil
	}, 200, 403, 404},
	"DELETE /api/v1/states/{state_key}": {func(fx *fixture) (string, any) {
		return "/api/v1/states/" + esc(fx.state()), nil
	}, 200, 403, 404},
	"GET /api/v1/states/{state_key}/events": {func(fx *fixture) (string, any) {
		return "/api/v1/states/" + esc(fx.state()) + "/events", nil
	}, 200, 403, 200},
	"GET /api/v1/states/watch": {func(fx *fixture) (string, any) {
		return "/api/v1/states/watch?once=true", nil
	}, 200, 200, 200},
	"POST /api/v1/states/query": {func(fx *fixture) (string, any) {
		return "/api/v1/states/query", map[string]any{}
	}, 200, 200, 200},
	"POST /api/v1/states/{state_key}/lease": {func(fx *fixture) (string, any) {
		return "/api/v1/states/" + esc(fx.key()) + "/lease", map[string]any{"holder": "h"}
	}, 201, 403, 201},
	"GET /api/v1/states/{state_key}/lease": {func(fx *fixture) (string, any) {
		return "/api/v1/states/" + esc(fx.lease().StateKey) + "/lease", nil
	}, 200, 403, 404},
	// Another project's queue on the same key is its own, and empty.
	"GET /api/v1/states/{state_key}/lease/waiters": {func(fx *fixture) (string, any) {
		return "/api/v1/states/" + esc(fx.lease().StateKey) + "/lease/waiters", nil
	}, 200, 403, 200},
	"POST /api/v1/leases/{id}/renew": {func(fx *fixture) (string, any) {
		return "/api/v1/leases/" + fx.lease().ID + "/renew", map[string]any{}
	}, 200, 403, 404},
	"DELETE /api/v1/leases/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/leases/" + fx.lease().ID, nil
	}, 204, 403, 404},
	"GET /api/v1/leases/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/leases/" + fx.lease().ID, nil
	}, 200, 403, 404},
	"GET /api/v1/leases":        {func(fx *fixture) (string, any) { return "/api/v1/leases", nil }, 200, 200, 200},
	"GET /api/v1/leases/events": {func(fx *fixture) (string, any) { return "/api/v1/leases/events", nil }, 200, 200, 200},
	"POST /api/v1/capability-tokens": {func(fx *fixture) (string, any) {
		return "/api/v1/capability-tokens", map[string]any{"name": "t", "scopes": []string{"state:read"}}
	}, 201, 201, 201},
	"GET /api/v1/capability-tokens": {func(fx *fixture) (string, any) { return "/api/v1/capability-tokens", nil }, 200, 200, 200},
	"DELETE /api/v1/capability-tokens/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/capability-tokens/" + fx.tokenID(), nil
	}, 204, 204, 404},
	"POST /api/v1/keys": {func(fx *fixture) (string, any) { return "/api/v1/keys", map[string]any{"name": "k"} }, 201, 201, 201},
	"GET /api/v1/keys":  {func(fx *fixture) (string, any) { return "/api/v1/keys", nil }, 200, 200, 200},
	"GET /api/v1/usage": {func(fx *fixture) (string, any) { return "/api/v1/usage", nil }, 200, 200, 200},
	"DELETE /api/v1/keys/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/keys/" + fx.apiKeyID(), nil
	}, 204, 204, 404},
	"POST /api/projects/{projectId}/keys": {func(fx *fixture) (string, any) {
		return "/api/projects/" + fx.s.Project.ID + "/keys", map[string]any{"name": "k"}
	}, 201, 201, 403},
	"GET /api/projects/{projectId}/keys": {func(fx *fixture) (string, any) {
		return "/api/projects/" + fx.s.Project.ID + "/keys", nil
	}, 200, 200, 403},
	"DELETE /api/projects/{projectId}/keys/{id}": {func(fx *fixture) (string, any) {
		return "/api/projects/" + fx.s.Project.ID + "/keys/" + fx.apiKeyID(), nil
	}, 204, 204, 403},
	"POST /api/v1/claims": {func(fx *fixture) (string, any) { return "/api/v1/claims", claimBody(fx.key()) }, 201, 403, 201},
	"GET /api/v1/claims":  {func(fx *fixture) (string, any) { return "/api/v1/claims", nil }, 200, 200, 200},
	"GET /api/v1/claims/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/claims/" + fx.claim(), nil
	}, 200, 404, 404},
	"POST /api/v1/claims/{id}/verify": {func(fx *fixture) (string, any) {
		return "/api/v1/claims/" + fx.claim() + "/verify", nil
	}, 201, 404, 404},
	"GET /api/v1/claims/{id}/verifications": {func(fx *fixture) (string, any) {
		return "/api/v1/claims/" + fx.claim() + "/verifications", nil
	}, 200, 404, 404},
	"GET /api/v1/claims/{id}/bundle": {func(fx *fixture) (string, any) {
		return "/api/v1/claims/" + fx.claim() + "/bundle", nil
	}, 200, 404, 404},
	"GET /api/v1/claims/log":            {func(fx *fixture) (string, any) { return "/api/v1/claims/log", nil }, 200, 403, 200},
	"GET /api/v1/claims/log/checkpoint": {func(fx *fixture) (string, any) { return "/api/v1/claims/log/checkpoint", nil }, 200, 200, 200},
	"GET /api/v1/claims/log/export":     {func(fx *fixture) (string, any) { return "/api/v1/claims/log/export", nil }, 200, 403, 200},
	"POST /api/v1/conversations": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations", map[string]any{"title": "t"}
	}, 201, 201, 201},
	"GET /api/v1/conversations": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations", nil
	}, 200, 200, 200},
	"GET /api/v1/conversations/search": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/search?q=probe", nil
	}, 200, 200, 200},
	"POST /api/v1/conversations/export": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/export", map[string]any{"ids": []string{fx.conv()}}
	}, 200, 200, 200},
	"POST /api/v1/conversations/bulk-delete": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/bulk-delete", map[string]any{"ids": []string{fx.conv()}}
	}, 200, 200, 200},
	"POST /api/v1/conversations/traces/ingest": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/traces/ingest", map[string]any{"trace": map[string]any{}, "observations": []map[string]any{{"observation_type": "span", "content": "x"}}}
	}, 201, 201, 201},
	"GET /api/v1/conversations/traces": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/traces", nil
	}, 200, 200, 200},
	"GET /api/v1/conversations/traces/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/traces/" + fx.trace(), nil
	}, 200, 200, 404},
	"GET /api/v1/conversations/by-external-id/{externalId}": {func(fx *fixture) (string, any) {
		id := fx.conv()
		c, _ := fx.a.Convs.Get(fx.ctx, fx.s.Project.P, id, 1)
		return "/api/v1/conversations/by-external-id/" + esc(*c.ExternalID), nil
	}, 200, 200, 404},
	"GET /api/v1/conversations/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv(), nil
	}, 200, 200, 404},
	"PUT /api/v1/conversations/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv(), map[string]any{"title": "x"}
	}, 200, 200, 404},
	"PATCH /api/v1/conversations/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv(), map[string]any{"title": "x"}
	}, 200, 200, 404},
	"DELETE /api/v1/conversations/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv(), nil
	}, 204, 204, 404},
	"POST /api/v1/conversations/{id}/messages": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv() + "/messages", map[string]any{"messages": []map[string]any{{"role": "user", "content": "x"}}}
	}, 201, 201, 404},
	"GET /api/v1/conversations/{id}/messages": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv() + "/messages", nil
	}, 200, 200, 404},
	"GET /api/v1/conversations/{id}/analytics": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv() + "/analytics", nil
	}, 200, 200, 404},
	"POST /api/v1/conversations/{id}/generate-title": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv() + "/generate-title", nil
	}, 200, 200, 404},
	"POST /api/v1/conversations/{id}/follow-ups": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv() + "/follow-ups", nil
	}, 200, 200, 404},
	"POST /api/v1/conversations/{id}/generate-all": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv() + "/generate-all", nil
	}, 200, 200, 404},
	"GET /api/v1/conversations/{id}/tags": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv() + "/tags", nil
	}, 200, 200, 404},
	"POST /api/v1/conversations/{id}/tags": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv() + "/tags", map[string]any{"tags": []string{"t"}}
	}, 201, 201, 404},
	"DELETE /api/v1/conversations/{id}/tags/{tag}": {func(fx *fixture) (string, any) {
		return "/api/v1/conversations/" + fx.conv() + "/tags/t", nil
	}, 204, 204, 404},
	"GET /api/v1/tags": {func(fx *fixture) (string, any) {
		return "/api/v1/tags", nil
	}, 200, 200, 200},
	"GET /api/v1/analytics/summary": {func(fx *fixture) (string, any) {
		return "/api/v1/analytics/summary", nil
	}, 200, 200, 200},
	"GET /api/v1/analytics/timeseries": {func(fx *fixture) (string, any) {
		return "/api/v1/analytics/timeseries", nil
	}, 200, 200, 200},
	"GET /api/v1/analytics/tags": {func(fx *fixture) (string, any) {
		return "/api/v1/analytics/tags", nil
	}, 200, 200, 200},
	"POST /api/v1/webhooks": {func(fx *fixture) (string, any) {
		return "/api/v1/webhooks", map[string]any{"url": "https://example.com/h", "events": []string{"conversation.created"}}
	}, 201, 201, 201},
	"GET /api/v1/webhooks": {func(fx *fixture) (string, any) {
		return "/api/v1/webhooks", nil
	}, 200, 200, 200},
	"GET /api/v1/webhooks/dead-letters": {func(fx *fixture) (string, any) {
		return "/api/v1/webhooks/dead-letters", nil
	}, 200, 200, 200},
	"GET /api/v1/webhooks/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/webhooks/" + fx.webhook(), nil
	}, 200, 200, 404},
	"PUT /api/v1/webhooks/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/webhooks/" + fx.webhook(), map[string]any{"active": false}
	}, 200, 200, 404},
	"DELETE /api/v1/webhooks/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/webhooks/" + fx.webhook(), nil
	}, 204, 204, 404},
	// Admin routes take no project credential at all: every case below is 401 (the operator
	// token is tested in TestProjectsAdminAPI).
	"POST /api/v1/projects": {func(fx *fixture) (string, any) { return "/api/v1/projects", map[string]any{"name": "p"} }, 401, 401, 401},
	"GET /api/v1/projects":  {func(fx *fixture) (string, any) { return "/api/v1/projects", nil }, 401, 401, 401},
	"PATCH /api/v1/projects/{id}": {func(fx *fixture) (string, any) {
		return "/api/v1/projects/" + fx.s.Project.ID, map[string]any{"retention_days": 1}
	}, 401, 401, 401},
	"DELETE /api/v1/projects/{id}": {func(fx *fixture) (string, any) { return "/api/v1/projects/" + fx.s.Project.ID, nil }, 401, 401, 401},
}

// toolProbe is routeProbe for MCP: arguments on fresh objects and the error code ("" =
// success) for the out-of-resource key and for project B's key.
type toolProbe struct {
	args       func(fx *fixture) map[string]any
	oor, other core.Code
}

var toolProbes = map[string]toolProbe{
	"whoami": {func(fx *fixture) map[string]any { return map[string]any{} }, "", ""},
	"upsert_state": {func(fx *fixture) map[string]any {
		return map[string]any{"state_key": fx.key(), "agent_id": "a", "data": map[string]any{}}
	}, core.CodeForbidden, ""},
	"get_state": {func(fx *fixture) map[string]any {
		return map[string]any{"state_key": fx.state()}
	}, core.CodeForbidden, core.CodeNotFound},
	"delete_state": {func(fx *fixture) map[string]any {
		return map[string]any{"state_key": fx.state()}
	}, core.CodeForbidden, core.CodeNotFound},
	"list_state_events": {func(fx *fixture) map[string]any {
		return map[string]any{"state_key": fx.state()}
	}, core.CodeForbidden, ""},
	"query_states": {func(fx *fixture) map[string]any { return map[string]any{} }, "", ""},
	"wait_for_state_change": {func(fx *fixture) map[string]any {
		return map[string]any{"state_key": fx.state(), "after_version": 0, "timeout_ms": 1}
	}, core.CodeForbidden, ""},
	"acquire_lease": {func(fx *fixture) map[string]any {
		return map[string]any{"state_key": fx.key(), "holder": "h"}
	}, core.CodeForbidden, ""},
	"renew_lease": {func(fx *fixture) map[string]any {
		return map[string]any{"lease_id": fx.lease().ID}
	}, core.CodeForbidden, core.CodeNotFound},
	"release_lease": {func(fx *fixture) map[string]any {
		return map[string]any{"lease_id": fx.lease().ID}
	}, core.CodeForbidden, core.CodeNotFound},
	"get_lease": {func(fx *fixture) map[string]any {
		return map[string]any{"lease_id": fx.lease().ID}
	}, core.CodeForbidden, core.CodeNotFound},
	"list_leases":  {func(fx *fixture) map[string]any { return map[string]any{} }, "", ""},
	"create_claim": {func(fx *fixture) map[string]any { return claimBody(fx.key()) }, core.CodeForbidden, ""},
	"verify_claim": {func(fx *fixture) map[string]any {
		return map[string]any{"claim_id": fx.claim()}
	}, core.CodeNotFound, core.CodeNotFound},
	"get_claim": {func(fx *fixture) map[string]any {
		return map[string]any{"claim_id": fx.claim()}
	}, core.CodeNotFound, core.CodeNotFound},
	"list_claims":        {func(fx *fixture) map[string]any { return map[string]any{} }, "", ""},
	"store_conversation": {func(fx *fixture) map[string]any { return map[string]any{"title": "t"} }, "", ""},
	"recall_conversation": {func(fx *fixture) map[string]any {
		return map[string]any{"id": fx.conv()}
	}, "", core.CodeNotFound},
	"list_conversations": {func(fx *fixture) map[string]any { return map[string]any{} }, "", ""},
	"append_messages": {func(fx *fixture) map[string]any {
		return map[string]any{"id": fx.conv(), "messages": []map[string]any{{"role": "user", "content": "x"}}}
	}, "", core.CodeNotFound},
	"search_conversations": {func(fx *fixture) map[string]any { return map[string]any{"q": "probe"} }, "", ""},
	"conversation_tags": {func(fx *fixture) map[string]any {
		return map[string]any{"id": fx.conv(), "add": []string{"t"}}
	}, "", core.CodeNotFound},
	"mint_capability_token": {func(fx *fixture) map[string]any {
		return map[string]any{"name": "t", "scopes": []string{"state:read"}}
	}, "", ""},
	"list_capability_tokens": {func(fx *fixture) map[string]any { return map[string]any{} }, "", ""},
	"revoke_capability_token": {func(fx *fixture) map[string]any {
		return map[string]any{"id": fx.tokenID()}
	}, "", core.CodeNotFound},
	"create_api_key": {func(fx *fixture) map[string]any { return map[string]any{"name": "k"} }, "", ""},
	"list_api_keys":  {func(fx *fixture) map[string]any { return map[string]any{} }, "", ""},
	"revoke_api_key": {func(fx *fixture) map[string]any {
		return map[string]any{"id": fx.apiKeyID()}
	}, "", core.CodeNotFound},
}

// credentials builds one credential per case for a route or tool needing scope.
type credentials struct {
	fx       *fixture
	fixed    map[authzCase]string
	wildcard map[string]string
}

func newCredentials(t *testing.T, fx *fixture, e *testenv.Env) *credentials {
	ctx, a, p := fx.ctx, fx.a, fx.s.Project.P
	key := func(req core.CreateKeyRequest) core.APIKey {
		k, err := a.Keys.CreateAPIKey(ctx, p, req)
		require.NoError(t, err)
		return k
	}
	revoked := key(core.CreateKeyRequest{Name: "revoked"})
	require.NoError(t, a.Keys.RevokeAPIKey(ctx, p, revoked.ID))
	root, err := a.Keys.MintToken(ctx, p, core.MintTokenRequest{Name: "root", Scopes: core.CapabilityScopes, MaxDepth: ptr(1)})
	require.NoError(t, err)
	rootP, err := a.Auth.Authenticate(ctx, root.Token)
	require.NoError(t, err)
	child, err := a.Keys.MintToken(ctx, rootP, core.MintTokenRequest{Name: "child", Scopes: core.CapabilityScopes})
	require.NoError(t, err)
	require.NoError(t, a.Keys.RevokeToken(ctx, p, root.ID))
	expired, err := a.Keys.MintToken(ctx, p, core.MintTokenRequest{Name: "old", Scopes: core.CapabilityScopes, ExpiresAt: ptr(int64(1000))})
	require.NoError(t, err)
	other := testenv.NewProject(t, a)
	return &credentials{fx: fx, wildcard: map[string]string{}, fixed: map[authzCase]string{
		caseNone:            "",
		caseMalformed:       "not-a-credential",
		caseUnknown:         core.NewAPIKeySecret(),
		caseRevokedKey:      revoked.Key,
		caseRevokedAncestor: child.Token,
		caseExpired:         expired.Token,
		caseOtherProject:    other.Key,
		caseMissingScope:    key(core.CreateKeyRequest{Name: "no-scope", Scopes: []string{core.ScopeDomainsWrite}}).Key,
		caseOutOfResource:   key(core.CreateKeyRequest{Name: "oor", Resources: []string{"allowed/*"}}).Key,
	}}
}

func ptr[T any](v T) *T { return &v }

// get returns the credential for c; the wildcard key holds "<resource>:*" for scope (plus
// state:* so that minting a state:read token stays within it).
func (c *credentials) get(t *testing.T, cs authzCase, scope string) string {
	if cs != caseWildcard {
		return c.fixed[cs]
	}
	w := "*"
	if scope != "" {
		w = scope[:strings.IndexByte(scope, ':')] + ":*"
	}
	if c.wildcard[w] == "" {
		k, err := c.fx.a.Keys.CreateAPIKey(c.fx.ctx, c.fx.s.Project.P,
			core.CreateKeyRequest{Name: "wild", Scopes: slices.Compact([]string{w, "state:*"})})
		require.NoError(t, err)
		c.wildcard[w] = k.Key
	}
	return c.wildcard[w]
}

func TestAuthorizationMatrix(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		fx := &fixture{t: t, s: s, a: s.App, ctx: t.Context()}
		creds := newCredentials(t, fx, e)

		t.Run("rest", func(t *testing.T) {
			seen := map[string]bool{}
			for _, rt := range rest.Routes {
				if rt.Op.Access == core.Public {
					continue // no bearer credential: oauth/oauth_test.go covers who may do what there
				}
				name := rt.Method + " " + rt.Pattern
				seen[name] = true
				pr, ok := routeProbes[name]
				if !assert.True(t, ok, "route %s has no entry in routeProbes", name) {
					continue
				}
				for _, cs := range authzCases {
					want := 401
					switch cs {
					case caseOtherProject:
						want = pr.other
					case caseMissingScope:
						want = 403
					case caseWildcard:
						want = pr.ok
					case caseOutOfResource:
						want = pr.oor
					}
					if rt.Op.Access == core.Operator {
						want = 401
					}
					fx.as = creds.get(t, cs, rt.Op.Scope)
					path, body := pr.req(fx)
					resp, out := send(t, rt.Method, s.URL+path, fx.as, body, nil)
					assert.Equal(t, want, resp.StatusCode, "%s with %s: %s", name, cs, out)
				}
			}
			for name := range routeProbes {
				assert.True(t, seen[name], "routeProbes has %s, which is not a route", name)
			}
		})

		t.Run("mcp", func(t *testing.T) {
			seen := map[string]bool{}
			for _, tl := range tools.Inventory() {
				seen[tl.Name] = true
				pr, ok := toolProbes[tl.Name]
				if !assert.True(t, ok, "tool %s has no entry in toolProbes", tl.Name) {
					continue
				}
				for _, cs := range authzCases {
					cred := creds.get(t, cs, tl.Op.Scope)
					fx.as = cred
					args := pr.args(fx)
					switch cs {
					case caseNone, caseMalformed, caseUnknown, caseRevokedKey, caseRevokedAncestor, caseExpired:
						resp, _ := send(t, http.MethodPost, s.URL+"/api/mcp", cred, map[string]any{"jsonrpc": "2.0", "id": 1,
							"method": "tools/call", "params": map[string]any{"name": tl.Name, "arguments": args}}, nil)
						assert.Equal(t, 401, resp.StatusCode, "%s with %s", tl.Name, cs)
						continue
					}
					want := map[authzCase]core.Code{caseOtherProject: pr.other, caseMissingScope: core.CodeForbidden,
						caseWildcard: "", caseOutOfResource: pr.oor}[cs]
					if tl.Op.Scope == "" {
						want = "" // whoami needs no scope: any live credential may ask who it is
					}
					r := newMCP(s, cred).Call(t, tl.Name, args)
					assert.Equal(t, want, r.Code, "%s with %s: %s", tl.Name, cs, r.Message)
				}
			}
			for name := range toolProbes {
				assert.True(t, seen[name], "toolProbes has %s, which is not a tool", name)
			}
		})
	})
}

// TestEachOperationNeedsExactlyItsDeclaredScope ties every route and tool to its one operation
// declaration: a key holding only the declared scope succeeds, and a key holding every other
// scope is refused with 403. A service checking a scope other than the one its route or tool
// declares fails here.
func TestEachOperationNeedsExactlyItsDeclaredScope(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		fx := &fixture{t: t, s: s, a: s.App, ctx: t.Context()}
		keys := map[string]string{}
		key := func(scopes ...string) string {
			name := strings.Join(scopes, " ")
			if keys[name] == "" {
				k, err := fx.a.Keys.CreateAPIKey(fx.ctx, fx.s.Project.P, core.CreateKeyRequest{Name: "exact", Scopes: scopes})
				require.NoError(t, err)
				keys[name] = k.Key
			}
			return keys[name]
		}
		// exact is the declared scope alone; minting also needs what the probe grants the child
		// (a key can only hand on what it holds), which is not an authorization of the operation.
		exact := func(op core.Operation) string {
			if op == core.OpTokenMint {
				return key(op.Scope, core.ScopeStateRead)
			}
			return key(op.Scope)
		}
		allBut := func(op core.Operation) string {
			return key(slices.DeleteFunc(slices.Clone(core.AllScopes), func(s string) bool { return s == op.Scope })...)
		}

		t.Run("rest", func(t *testing.T) {
			for _, rt := range rest.Routes {
				if rt.Op.Access == core.Operator || rt.Op.Access == core.Public {
					continue
				}
				name := rt.Method + " " + rt.Pattern
				pr := routeProbes[name]
				fx.as = exact(rt.Op)
				path, body := pr.req(fx)
				resp, out := send(t, rt.Method, s.URL+path, fx.as, body, nil)
				assert.Equal(t, pr.ok, resp.StatusCode, "%s with only %s: %s", name, rt.Op.Scope, out)
				fx.as = allBut(rt.Op)
				path, body = pr.req(fx)
				resp, out = send(t, rt.Method, s.URL+path, fx.as, body, nil)
				assert.Equal(t, 403, resp.StatusCode, "%s with every scope but %s: %s", name, rt.Op.Scope, out)
			}
		})
		t.Run("mcp", func(t *testing.T) {
			for _, tl := range tools.Inventory() {
				if tl.Op.Scope == "" {
					continue // whoami needs no scope (TestAuthorizationMatrix calls it with every credential)
				}
				pr := toolProbes[tl.Name]
				fx.as = exact(tl.Op)
				r := newMCP(s, fx.as).Call(t, tl.Name, pr.args(fx))
				assert.Equal(t, core.Code(""), r.Code, "%s with only %s: %s", tl.Name, tl.Op.Scope, r.Message)
				fx.as = allBut(tl.Op)
				r = newMCP(s, fx.as).Call(t, tl.Name, pr.args(fx))
				assert.Equal(t, core.CodeForbidden, r.Code, "%s with every scope but %s: %s", tl.Name, tl.Op.Scope, r.Message)
			}
		})
	})
}
