package core

import (
	"slices"
	"testing"
)

// Admit's check that a credential still has the identity it was admitted with compares
// lineages without building one: it must agree with comparing Lineage().
func TestHasLineageIsLineageEquality(t *testing.T) {
	creds := []Credential{{ID: "k"}, {ID: "t", MintedBy: "k"}, {ID: "t", Ancestors: []string{"p"}},
		{ID: "t", MintedBy: "k", Ancestors: []string{"p", "q"}}, {ID: "k", MintedBy: "k"}}
	lineages := [][]string{nil, {}, {"k"}, {"t"}, {"k", "t"}, {"p", "t"}, {"k", "p", "t"}, {"k", "p", "q", "t"},
		{"k", "q", "p", "t"}, {"k", "p", "q"}, {"p", "q", "t"}, {"k", "k"}, {"k", "p", "q", "t", "t"}}
	for _, c := range creds {
		for _, l := range lineages {
			if got, want := c.hasLineage(l), slices.Equal(c.Lineage(), l); got != want {
				t.Errorf("%+v hasLineage(%q) = %v, want %v", c, l, got, want)
			}
		}
	}
}
