package core

// Access says which credentials an operation accepts.
type Access int

const (
	// KeysAndTokens: API keys and capability tokens (v1: states, leases, claims).
	KeysAndTokens Access = iota
	// KeysOnly: API keys only; a capability token is refused with 401 (v1: everything else).
	KeysOnly
	// Operator: the operator's AGENTSTATE_ADMIN_TOKEN instead of a project credential.
	Operator
	// Public: no bearer credential; the operation authenticates what it needs itself (the
	// OAuth endpoints: client credentials, a code with its PKCE verifier, the consenting key).
	Public
)

// Operation is the one declaration of what a caller may do: the scope it needs, the credentials
// it accepts and whether it changes anything. Services check it (Principal.Authorize); the REST
// route table, the MCP tool inventory, the API reference and the OpenAPI document read it, so
// no face can disagree with another about who may call what.
type Operation struct {
	Name    string // stable id ("states.put"): docs, errors, metrics
	Scope   string // the scope the credential needs; "" for Operator operations
	Access  Access
	Mutates bool
	// Delegation also opens the operation to a capability token that may delegate (max_depth > 0),
	// whatever its scopes: such a token manages its own descendants.
	Delegation bool
	// ReadsState: the operation reads the current state of the key the request names, and the
	// authentication round trip may carry that read (StateRead; no query options): a REST
	// GET's, or the one in which the operation settles an admission its face deferred
	// (States.Get; a 2026-07-28 MCP get_state).
	ReadsState bool
	// GuardsAdmission: the operation's only store write carries the admission check of a
	// remembered credential (AdmissionCheck), and nothing is written before it, so a request is
	// admitted by its write: one round trip (admission.go; REST only). The face settles the
	// admission (Principal.Settle) before it answers anything the write did not.
	GuardsAdmission bool
}

// SettlesAdmission reports whether the operation settles a deferred admission in its own
// round trip to the store (GuardsAdmission, ReadsState), so a face that deferred one need not
// settle it first.
func (o Operation) SettlesAdmission() bool { return o.GuardsAdmission || o.ReadsState }

// AcceptsTokens reports whether a capability token may call the operation.
func (o Operation) AcceptsTokens() bool { return o.Access == KeysAndTokens }

func read(name, scope string, a Access) Operation {
	return Operation{Name: name, Scope: scope, Access: a}
}
func write(name, scope string, a Access) Operation {
	return Operation{Name: name, Scope: scope, Access: a, Mutates: true}
}

// Every operation. Names are <primitive>.<verb>.
var (
	OpStatePut    = guardsAdmission(write("states.put", ScopeStateWrite, KeysAndTokens))
	OpStateGet    = readsState(read("states.get", ScopeStateRead, KeysAndTokens))
	OpStateDelete = guardsAdmission(write("states.delete", ScopeStateWrite, KeysAndTokens))
	OpStateEvents = read("states.events", ScopeStateRead, KeysAndTokens)
	OpStateQuery  = read("states.query", ScopeStateRead, KeysAndTokens)
	OpStateWatch  = read("states.watch", ScopeStateWatch, KeysAndTokens)
	OpStateWait   = read("states.wait", ScopeStateRead, KeysAndTokens)

	OpLeaseAcquire = guardsAdmission(write("leases.acquire", ScopeLeaseWrite, KeysAndTokens))
	OpLeaseRenew   = guardsAdmission(write("leases.renew", ScopeLeaseWrite, KeysAndTokens))
	OpLeaseRelease = guardsAdmission(write("leases.release", ScopeLeaseWrite, KeysAndTokens))
	OpLeaseGet     = read("leases.get", ScopeStateRead, KeysAndTokens)
	OpLeaseOnKey   = read("leases.on_key", ScopeStateRead, KeysAndTokens)
	OpLeaseList    = read("leases.list", ScopeStateRead, KeysAndTokens)
	OpLeaseEvents  = read("leases.events", ScopeStateRead, KeysAndTokens)
	OpLeaseWaiters = read("leases.waiters", ScopeStateRead, KeysAndTokens)

	OpTokenMint   = delegation(write("tokens.mint", ScopeKeysWrite, KeysAndTokens))
	OpTokenList   = delegation(read("tokens.list", ScopeKeysRead, KeysAndTokens))
	OpTokenRevoke = delegation(write("tokens.revoke", ScopeKeysWrite, KeysAndTokens))
	OpKeyCreate   = write("keys.create", ScopeKeysWrite, KeysOnly)
	OpKeyList     = read("keys.list", ScopeKeysRead, KeysOnly)
	OpKeyRevoke   = write("keys.revoke", ScopeKeysWrite, KeysOnly)
	// OpUsage reads per-credential request counts and watchers connected (the console's overview).
	OpUsage = read("usage.get", ScopeKeysRead, KeysOnly)

	OpProjectCreate = write("projects.create", "", Operator)
	OpProjectList   = read("projects.list", "", Operator)
	OpProjectUpdate = write("projects.update", "", Operator)
	OpProjectDelete = write("projects.delete", "", Operator)

	OpClaimCreate     = write("claims.create", ScopeClaimWrite, KeysAndTokens)
	OpClaimGet        = read("claims.get", ScopeClaimRead, KeysAndTokens)
	OpClaimList       = read("claims.list", ScopeClaimRead, KeysAndTokens)
	OpClaimVerify     = write("claims.verify", ScopeClaimWrite, KeysAndTokens)
	OpClaimRuns       = read("claims.runs", ScopeClaimRead, KeysAndTokens)
	OpClaimBundle     = read("claims.bundle", ScopeClaimRead, KeysAndTokens)
	OpClaimLog        = read("claims.log", ScopeClaimRead, KeysAndTokens)
	OpClaimCheckpoint = read("claims.checkpoint", ScopeClaimRead, KeysAndTokens)
	OpClaimExport     = read("claims.export", ScopeClaimRead, KeysAndTokens)

	OpConversationCreate        = write("conversations.create", ScopeConversationsWrite, KeysOnly)
	OpConversationGet           = read("conversations.get", ScopeConversationsRead, KeysOnly)
	OpConversationByExternalID  = read("conversations.get_by_external_id", ScopeConversationsRead, KeysOnly)
	OpConversationList          = read("conversations.list", ScopeConversationsRead, KeysOnly)
	OpConversationCount         = read("conversations.count", ScopeConversationsRead, KeysOnly)
	OpConversationUpdate        = write("conversations.update", ScopeConversationsWrite, KeysOnly)
	OpConversationDelete        = write("conversations.delete", ScopeConversationsWrite, KeysOnly)
	OpConversationExport        = read("conversations.export", ScopeConversationsRead, KeysOnly)
	OpConversationBulkDelete    = write("conversations.bulk_delete", ScopeConversationsWrite, KeysOnly)
	OpConversationSearch        = read("conversations.search", ScopeConversationsRead, KeysOnly)
	OpMessageAppend             = write("messages.append", ScopeConversationsWrite, KeysOnly)
	OpMessageList               = read("messages.list", ScopeConversationsRead, KeysOnly)
	OpTraceIngest               = write("traces.ingest", ScopeConversationsWrite, KeysOnly)
	OpTraceList                 = read("traces.list", ScopeConversationsRead, KeysOnly)
	OpTraceGet                  = read("traces.get", ScopeConversationsRead, KeysOnly)
	OpConversationTags          = read("conversations.tags", ScopeConversationsRead, KeysOnly)
	OpConversationAddTags       = write("conversations.add_tags", ScopeConversationsWrite, KeysOnly)
	OpConversationRemoveTag     = write("conversations.remove_tag", ScopeConversationsWrite, KeysOnly)
	OpConversationEditTags      = write("conversations.edit_tags", ScopeConversationsWrite, KeysOnly)
	OpProjectTags               = read("tags.list", ScopeConversationsRead, KeysOnly)
	OpConversationGenerateTitle = write("conversations.generate_title", ScopeConversationsWrite, KeysOnly)
	// Follow-ups are suggested, not stored, but v1 asks for the write scope.
	OpConversationFollowUps   = read("conversations.follow_ups", ScopeConversationsWrite, KeysOnly)
	OpConversationGenerateAll = write("conversations.generate_all", ScopeConversationsWrite, KeysOnly)
	OpConversationAnalytics   = read("analytics.conversation", ScopeAnalyticsRead, KeysOnly)
	OpAnalyticsSummary        = read("analytics.summary", ScopeAnalyticsRead, KeysOnly)
	OpAnalyticsTimeseries     = read("analytics.timeseries", ScopeAnalyticsRead, KeysOnly)
	OpAnalyticsTags           = read("analytics.tags", ScopeAnalyticsRead, KeysOnly)

	// The OAuth 2.1 authorization server for /api/mcp (compat-v1.md §17).
	OpOAuthRegister  = write("oauth.register", "", Public)
	OpOAuthAuthorize = read("oauth.authorize", "", Public)
	OpOAuthDecision  = write("oauth.decision", "", Public)
	OpOAuthToken     = write("oauth.token", "", Public)
	OpOAuthRevoke    = write("oauth.revoke", "", Public)

	// v1 guards every webhook route, reads included, with webhooks:write.
	OpWebhookCreate = write("webhooks.create", ScopeWebhooksWrite, KeysOnly)
	OpWebhookList   = read("webhooks.list", ScopeWebhooksWrite, KeysOnly)
	OpWebhookGet    = read("webhooks.get", ScopeWebhooksWrite, KeysOnly)
	OpWebhookUpdate = write("webhooks.update", ScopeWebhooksWrite, KeysOnly)
	OpWebhookDelete = write("webhooks.delete", ScopeWebhooksWrite, KeysOnly)
	// Dead letters hold payloads as sent to receivers, so they need the same scope as webhooks.
	OpWebhookDeadLetters = read("webhooks.dead_letters", ScopeWebhooksWrite, KeysOnly)
)

func readsState(o Operation) Operation {
	o.ReadsState = true
	return o
}

func guardsAdmission(o Operation) Operation {
	o.GuardsAdmission = true
	return o
}

func delegation(o Operation) Operation {
	o.Delegation = true
	return o
}

// Authorize is the one check of an operation against a caller: the credential kind, then the
// scope (or, for delegation operations, a token's right to delegate). Errors carry v1's texts.
func (p Principal) Authorize(o Operation) error {
	if o.Access == KeysOnly && p.Kind != KindAPIKey {
		return E(o.Name, CodeUnauthorized, MsgUnauthorized)
	}
	if o.Delegation && p.Kind == KindCapabilityToken {
		if p.MaxDepth > 0 {
			return nil
		}
		return E(o.Name, CodeForbidden, MsgCannotDelegate)
	}
	if p.Can(o.Scope) {
		return nil
	}
	if p.Kind == KindCapabilityToken {
		return E(o.Name, CodeForbidden, MsgTokenLacksScope)
	}
	return E(o.Name, CodeForbidden, MsgMissingScope+o.Scope)
}
