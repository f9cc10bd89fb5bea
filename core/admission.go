package core

import (
	"context"
	"errors"
	"time"
)

// A deferred admission lets a write be one round trip. For an operation that GuardsAdmission,
// a credential this replica has admitted before is not read before the work: Auth.Admit answers
// with the principal it remembers (everything about a credential but its revocation never
// changes once issued), and the operation's one write carries the rest of the check
// (AdmissionCheck) into the store's script, which runs it first, in the same atomic step: the
// credential's record still exists in its project, nothing in its lineage is revoked, and the
// request is counted against its rate budget. A revoke is one SADD to the project's revoked set
// (and deleting a project deletes the records), so a revoke that has returned refuses the very
// next write, as before; nothing is cached.
//
// Until the check has run, nothing may be written or answered with data: a refusal found on the
// way (a bad body, a missing scope) is answered only once the admission is settled
// (Principal.Settle), and a settled refusal of the credential replaces it.

// AdmissionCheck is a deferred admission's check, run by the store inside the write it guards
// (StateMutation.Admission). The store fills Outcome and Counts.
type AdmissionCheck struct {
	Kind         CredentialKind // the record to find: an API key's or a token's
	CredentialID string
	Lineage      []string // every id whose revocation refuses the credential (Credential.Lineage)
	// Counters are the rate counters to add one to in the window starting at Window (Unix ms),
	// each with its expiry of 2×RateWindow, set as RateCounter.SetExpiry asks and whenever the
	// count creates the counter; refused (Outcome AdmissionLimited) once one is above Limit.
	// None with the limiter off.
	Window   int64
	Counters []RateCounter
	Limit    int64
	// Session is the legacy MCP session the request names (its Mcp-Session-Id), checked as the
	// face's session check would: it must be this credential's, and its idle time starts again,
	// SessionIdle long; refused with AdmissionNoSession. "" = none.
	Session     string
	SessionIdle time.Duration

	Outcome AdmissionOutcome
	Count   int64 // the highest of the counters' counts after this request
}

// AdmissionOutcome is what the store found.
type AdmissionOutcome int

const (
	// AdmissionUnknown: the check did not run (or its answer was lost); settle it the long way.
	AdmissionUnknown AdmissionOutcome = iota
	// AdmissionPassed: admitted and counted (Count), the write went ahead. A retried execution
	// that finds its own earlier write passed before: its Count is the counters' as they stand
	// (this request was counted once, by the first execution).
	AdmissionPassed
	// AdmissionRefused: the record is gone or the lineage revoked; nothing counted or written.
	AdmissionRefused
	// AdmissionLimited: counted (Count) and over budget; nothing written.
	AdmissionLimited
	// AdmissionNoSession: the credential passed, but Session is unknown or another credential's;
	// nothing counted or written. The face answers as for an unknown session.
	AdmissionNoSession
)

// ErrNotAdmitted is the store's answer to a write whose AdmissionCheck refused it
// (AdmissionRefused or AdmissionLimited): nothing was written.
var ErrNotAdmitted = errors.New("admission refused")

// admission is a deferred admission of one request, shared by the copies of its Principal (a
// Principal is handled by one request at a time, so it needs no lock).
type admission struct {
	auth          *Auth
	limiter       *RateLimiter
	raw, resource string
	keysOnly      bool
	// session is a legacy MCP request's session check (Prefetch.MCPSession, MCPSessionIdle):
	// it goes in whichever round trip settles the admission, as it went in Admit's.
	session Prefetch
	id      *credentialIdentity
	at      time.Time // when the request was charged (check's window)

	settled bool
	status  RateStatus
	err     error
	// admitted is the principal a settlement the long way admitted; set only when that was
	// needed and succeeded.
	admitted *Principal
	// sessionRead is the session check the write's script passed (AdmissionCheck.Session), for
	// the face's session check to take (Principal.PrefetchedMCPSession).
	sessionRead *MCPSessionRead
}

// deferred returns the remembered principal of id with its admission left to the write, or
// ok = false when the request must be admitted now: a kind this route refuses, another
// audience, an expired token (each refused the long way, with the usual answer).
func (a *Auth) deferred(id *credentialIdentity, raw, resource string, l *RateLimiter, keysOnly bool, want Prefetch) (Principal, bool) {
	p := id.principal
	if (keysOnly && p.Kind != KindAPIKey) || (p.Audience != "" && p.Audience != resource) ||
		(p.ExpiresAt != 0 && p.ExpiresAt <= NowMs(a.clock)) {
		return Principal{}, false
	}
	p.admission = &admission{auth: a, limiter: l, raw: raw, resource: resource, keysOnly: keysOnly, id: id,
		session: Prefetch{MCPSession: want.MCPSession, MCPSessionIdle: want.MCPSessionIdle}}
	return p, true
}

// AdmissionDeferred reports whether p's admission is still to be settled by its write or by
// Settle.
func (p Principal) AdmissionDeferred() bool { return p.admission != nil && !p.admission.settled }

// Settle finishes p's admission if it was deferred and is not settled yet (authenticating and
// counting the request the usual way, one round trip) and returns the principal to go on with,
// its rate status and, when the credential is refused, the error to answer with instead of
// anything the request found. A principal admitted when it was built returns at once.
func (p Principal) Settle(ctx context.Context) (Principal, RateStatus, error) {
	return p.settle(ctx, Prefetch{})
}

// settle is Settle with want's reads in the round trip that settles the admission (as
// Auth.Admit sends them), for the operation to take from the principal it returns: an
// operation that reads settles its own admission with its read (States.Get), one round trip.
func (p Principal) settle(ctx context.Context, want Prefetch) (Principal, RateStatus, error) {
	a := p.admission
	if a == nil {
		return p, RateStatus{}, nil
	}
	if !a.settled {
		want.MCPSession, want.MCPSessionIdle = a.session.MCPSession, a.session.MCPSessionIdle
		q, st, err := a.auth.Admit(ctx, a.raw, a.resource, a.limiter, a.keysOnly, want)
		a.settled, a.status, a.err = true, st, err
		if err == nil {
			a.admitted = &q
		}
	}
	if a.admitted != nil {
		p = *a.admitted
	}
	return p, a.status, a.err
}

// admissionCheck is the check p's one write carries; nil when p's admission is not deferred.
// A legacy MCP session the request names is checked by it too (AdmissionCheck.Session).
func (p Principal) admissionCheck() *AdmissionCheck {
	a := p.admission
	if a == nil || a.settled {
		return nil
	}
	now, window, counters := a.limiter.charge(p.CredentialID, p.MintedBy)
	a.at = now
	limit := int64(0)
	if a.limiter != nil {
		limit = a.limiter.perWindow
	}
	return &AdmissionCheck{Kind: p.Kind, CredentialID: p.CredentialID, Lineage: a.id.lineage,
		Window: window, Counters: counters, Limit: limit, Session: a.session.MCPSession, SessionIdle: a.session.MCPSessionIdle}
}

// checked settles p's admission from its write's check c, given the store's answer err. A
// refusal is an error to answer with; again, when set, is the principal to do the operation
// over with: the check refused what the long way admits (the raw credential was issued again
// after its project was deleted, so the remembered identity named the old one). A nil c (the
// write carried no check) settles nothing.
func (p Principal) checked(ctx context.Context, c *AdmissionCheck, err error) (again *Principal, refusal error) {
	if c == nil {
		return nil, nil
	}
	a := p.admission
	switch c.Outcome {
	case AdmissionPassed:
		a.settled = true
		if c.Session != "" {
			a.sessionRead = &MCPSessionRead{Project: p.ProjectID, ID: c.Session, Credential: p.CredentialID}
		}
		if len(c.Counters) > 0 && c.Count > 0 {
			a.status, _ = a.limiter.verdict(a.at, []int64{c.Count})
		}
		a.auth.touch(ctx, a.id)
		return nil, nil
	case AdmissionLimited:
		a.settled = true
		a.status, a.err = a.limiter.verdict(a.at, []int64{c.Count})
		return nil, a.err
	case AdmissionRefused:
		if _, _, err := p.Settle(ctx); err != nil {
			return nil, err
		}
		if c.Session != "" {
			// Admitted the long way: done over only under the session (read by that settlement).
			if cred, _, err := a.admitted.PrefetchedMCPSession(c.Session); err != nil || cred != a.admitted.CredentialID {
				return nil, errNoSession
			}
		}
		return a.admitted, nil
	case AdmissionNoSession:
		return nil, errNoSession // unsettled: the face's session check settles it, and refuses
	}
	if err != nil {
		// The answer was lost: the counters' expiries may not be set, and the request is
		// settled when it is answered.
		a.limiter.failed(c.Window, c.Counters)
	}
	return nil, nil
}
