package core

import (
	"context"
	"testing"
)

// A PrincipalSlot answers for the principal once set, and until then (and for every other
// key) asks the context beneath; contexts derived from it see what it holds.
func TestPrincipalSlot(t *testing.T) {
	type key struct{}
	below := context.WithValue(context.Background(), key{}, "v")
	s := &PrincipalSlot{Context: below}
	if _, ok := PrincipalFrom(s); ok {
		t.Fatal("an empty slot has a principal")
	}
	s.Context = WithPrincipal(below, Principal{CredentialID: "below"})
	if p, _ := PrincipalFrom(s); p.CredentialID != "below" {
		t.Fatalf("empty slot: principal %q, want the one beneath", p.CredentialID)
	}
	s.Set(Principal{CredentialID: "c1", Scopes: []string{"*"}})
	derived, cancel := context.WithCancel(s)
	defer cancel()
	if p, ok := PrincipalFrom(derived); !ok || p.CredentialID != "c1" || !p.Can("states:write") {
		t.Fatalf("principal = %+v, %v", p, ok)
	}
	if derived.Value(key{}) != "v" {
		t.Fatal("the slot hides the context beneath")
	}
}
