package core

import (
	"strings"
	"testing"
)

// Ids keep nanoid's format (v1's): its length and URL-safe alphabet, every character in use.
func TestIDsAreNanoids(t *testing.T) {
	seen, chars := map[string]bool{}, map[rune]bool{}
	for range 2000 {
		for _, c := range []struct {
			id string
			n  int
		}{{NewID(), 21}, {NewShortID(), 16}} {
			if len(c.id) != c.n || seen[c.id] {
				t.Fatalf("id %q: want %d characters, never repeated", c.id, c.n)
			}
			seen[c.id] = true
			for _, r := range c.id {
				if !strings.ContainsRune(nanoidAlphabet, r) {
					t.Fatalf("id %q: %q is not in nanoid's alphabet", c.id, r)
				}
				chars[r] = true
			}
		}
	}
	if len(chars) != len(nanoidAlphabet) {
		t.Fatalf("%d of the alphabet's %d characters seen in 74,000", len(chars), len(nanoidAlphabet))
	}
}
