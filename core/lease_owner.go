package core

import "slices"

// Lease ownership: a lease is used (renewed, released, written under) by the credential that
// acquired it, by the tokens it was delegated from (they may act for what they delegated), and
// by the project's full-access keys. Everyone else with lease:write sees the lease but not its
// id, so an id cannot leak through a listing either.

// FullAccess reports whether p is a full-access API key: every scope, every state key.
func (p Principal) FullAccess() bool {
	return p.Kind == KindAPIKey && p.Resources == nil && slices.Contains(p.Scopes, "*")
}

// leaseChain is what a lease records about its acquirer: its ancestors, then itself.
func (p Principal) leaseChain() []string {
	return append(slices.Clone(p.Ancestors), p.CredentialID)
}

// MayUseLease reports whether p may renew, release and write under l.
func (p Principal) MayUseLease(l Lease) bool { return p.mayUse(l.OwnerChain) }

func (p Principal) mayUse(chain []string) bool {
	return p.FullAccess() || (p.CredentialID != "" && slices.Contains(chain, p.CredentialID))
}

// shown is l as p may see it: status as of now, id only for those who may use it.
func (s *Leases) shown(p Principal, l Lease) Lease {
	l = s.view(l)
	if !p.MayUseLease(l) {
		l.ID = ""
	}
	return l
}

// ShownLeaseEvent is e as p may see it (listings and the watch stream).
func (p Principal) ShownLeaseEvent(e LeaseEvent) LeaseEvent {
	if !p.mayUse(e.OwnerChain) {
		e.LeaseID = ""
	}
	return e
}

func (p Principal) leaseWriter() LeaseWriter {
	return LeaseWriter{CredentialID: p.CredentialID, FullAccess: p.FullAccess()}
}
