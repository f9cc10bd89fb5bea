package core

// StateRead is a key's current state read in the authentication round trip, for an operation
// that declares it (Operation.ReadsState): Auth.Admit sends it with the credential read, before
// the credential is checked, so the store fills it unseen. Admit hands it on (in the Principal)
// only once the request is admitted, and States.Get takes it only for the project and key it
// was read for, once, and only for a plain current read; everything else reads again.
type StateRead struct {
	Project, Key string
	// Filled by the store: what StateEventsAt(Project, [Key], 0, 0) would answer.
	Event *StateEvent // nil: no event
	Err   error       // the error StateEventsAt would have returned
	taken bool
}

// take reports whether the read may answer a current read of key in project, and uses it up.
// A Principal is handled by one request at a time, so the flag needs no lock.
func (r *StateRead) take(project, key string) bool {
	if r == nil || r.taken || r.Project != project || r.Key != key {
		return false
	}
	r.taken = true
	return true
}
