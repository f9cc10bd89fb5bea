package core

import "time"

// Prefetch names what a request's operation reads first once admitted, so that a remembered
// credential's authentication round trip can carry those reads (Auth.Admit): the credential is
// checked in that same round trip, so the store fills them unseen, and Admit hands them on (in
// the Principal) only once the request is admitted. Each is taken only for the project and name
// it was read for, once; everything else reads again.
type Prefetch struct {
	// StateKey is the key of an operation that ReadsState (StateRead).
	StateKey string
	// MCPSession is the session id a streamable HTTP MCP request names (MCPSessionRead), read
	// as the session check reads it: its idle time starts again, MCPSessionIdle long.
	MCPSession     string
	MCPSessionIdle time.Duration
	// GuardsAdmission is set for an operation that GuardsAdmission: a remembered credential's
	// admission is deferred to the operation's write (AdmissionCheck), which reads nothing first.
	GuardsAdmission bool
}

// Prefetched are the reads a Prefetch sends with the credential; nil = not sent.
type Prefetched struct {
	State      *StateRead
	MCPSession *MCPSessionRead
}

// reads are w's reads for the remembered principal p; a state key States.Get would refuse p
// before reading (no read scope, another resource, a malformed key) is not read, so a refused
// request's answer does not wait on a read it may not see.
func (w Prefetch) reads(p Principal) Prefetched {
	var r Prefetched
	if w.StateKey != "" && p.Authorize(OpStateGet) == nil && validateStateKey("", w.StateKey) == nil && p.CanTouch(w.StateKey) {
		r.State = &StateRead{Project: p.ProjectID, Key: w.StateKey}
	}
	if w.MCPSession != "" {
		r.MCPSession = &MCPSessionRead{Project: p.ProjectID, ID: w.MCPSession, Idle: w.MCPSessionIdle}
	}
	return r
}

// StateRead is a key's current state read in the authentication round trip (Prefetch.StateKey),
// taken by States.Get only for a plain current read.
type StateRead struct {
	Project, Key string
	// Filled by the store: what StateEventsAt(Project, [Key], 0, 0) would answer.
	Event *StateEvent // nil: no event
	Err   error       // the error StateEventsAt would have returned
	once
}

// take reports whether the read may answer a current read of key in project, and uses it up.
func (r *StateRead) take(project, key string) bool {
	return r != nil && r.once.take(r.Project == project && r.Key == key)
}

// MCPSessionRead is an MCP session's check read in the authentication round trip
// (Prefetch.MCPSession), taken by the session check (Principal.PrefetchedMCPSession).
type MCPSessionRead struct {
	Project, ID string
	Idle        time.Duration
	// Filled by the store: what MCPSession(Project, ID, Idle) would answer.
	Credential string // "": the store does not know the session
	Err        error
	once
}

// PrefetchedMCPSession is the session check's answer read with p's credential (MCPSessionRead)
// when it was read for session id in p's project and not taken yet; ok = false: read it.
func (p Principal) PrefetchedMCPSession(id string) (credential string, ok bool, err error) {
	r := p.prefetched.MCPSession
	if r == nil && p.admission != nil {
		r = p.admission.sessionRead // checked by the write that settled the admission
	}
	if r == nil || !r.once.take(r.Project == p.ProjectID && r.ID == id) {
		return "", false, nil
	}
	return r.Credential, true, r.Err
}

// once lets a prefetched read answer one read. A Principal is handled by one request at a time,
// so the flag needs no lock.
type once struct{ taken bool }

func (o *once) take(match bool) bool {
	if !match || o.taken {
		return false
	}
	o.taken = true
	return true
}
