package core

import (
	"slices"
	"strings"
)

// The 13 v1 scopes (compat-v1.md §3.3).
const (
	ScopeConversationsRead  = "conversations:read"
	ScopeConversationsWrite = "conversations:write"
	ScopeStateRead          = "state:read"
	ScopeStateWrite         = "state:write"
	ScopeStateWatch         = "state:watch"
	ScopeLeaseWrite         = "lease:write"
	ScopeClaimRead          = "claim:read"
	ScopeClaimWrite         = "claim:write"
	ScopeAnalyticsRead      = "analytics:read"
	ScopeWebhooksWrite      = "webhooks:write"
	ScopeDomainsWrite       = "domains:write"
	ScopeKeysRead           = "keys:read"
	ScopeKeysWrite          = "keys:write"
)

// AllScopes lists every grantable scope.
var AllScopes = []string{
	ScopeConversationsRead, ScopeConversationsWrite, ScopeStateRead, ScopeStateWrite,
	ScopeStateWatch, ScopeLeaseWrite, ScopeClaimRead, ScopeClaimWrite, ScopeAnalyticsRead,
	ScopeWebhooksWrite, ScopeDomainsWrite, ScopeKeysRead, ScopeKeysWrite,
}

// CapabilityScopes are the only scopes a capability token may carry.
var CapabilityScopes = []string{
	ScopeStateRead, ScopeStateWrite, ScopeStateWatch, ScopeLeaseWrite, ScopeClaimRead, ScopeClaimWrite,
}

// ScopesSatisfy is v1's satisfaction rule: the granted set holds "*", the exact scope, or
// "<resource>:*". Read never implies write and write never implies read.
func ScopesSatisfy(granted []string, required string) bool {
	resource, _, _ := strings.Cut(required, ":")
	return slices.ContainsFunc(granted, func(g string) bool {
		return g == "*" || g == required || g == resource+":*"
	})
}
