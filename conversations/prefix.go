package conversations

import (
	"context"
	"unicode/utf8"

	"github.com/agentstate/agentstate-go/core"

	"github.com/agentstate/agentstate-go/conversations/textindex"
)

// Named bounds of prefix queries ("deplo*"): a prefix must be at least MinPrefixRunes letters
// after folding, and may stand for at most MaxPrefixExpansions distinct words of the project;
// a broader prefix is refused with a 400 rather than answered from an arbitrary subset.
const (
	MinPrefixRunes      = 3
	MaxPrefixExpansions = 200
)

// PrefixExpander lists the project's indexed words that start with a folded prefix, in byte
// order, at most n (the store's vocabulary of the portable index).
type PrefixExpander interface {
	ExpandPrefix(ctx context.Context, project, prefix string, n int) ([]string, error)
}

// TermGroups turns query terms into what both search paths evaluate: a conversation matches
// when, for every group, it holds one of the group's words. An exact word is a group of one; a
// prefix is the group of the project's words starting with it (empty: nothing can match).
func TermGroups(ctx context.Context, op string, x PrefixExpander, project string, terms []textindex.QueryTerm) ([][]string, error) {
	groups := make([][]string, 0, len(terms))
	for _, t := range terms {
		if !t.Prefix {
			groups = append(groups, []string{t.Text})
			continue
		}
		if utf8.RuneCountInString(t.Text) < MinPrefixRunes {
			return nil, core.BadRequest(op, "q", "A prefix ("+t.Text+"*) needs at least 3 letters")
		}
		words, err := x.ExpandPrefix(ctx, project, t.Text, MaxPrefixExpansions+1)
		if err != nil {
			return nil, core.Internal(op, err)
		}
		if len(words) > MaxPrefixExpansions {
			return nil, core.BadRequest(op, "q", "The prefix "+t.Text+"* matches more than 200 words; make it longer")
		}
		groups = append(groups, words)
	}
	return groups, nil
}

// flatWords are every word of the groups: what snippets look for and relevance counts.
func flatWords(groups [][]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, g := range groups {
		for _, w := range g {
			if !seen[w] {
				seen[w] = true
				out = append(out, w)
			}
		}
	}
	return out
}

// TextIndex is a server-side full-text index (RediSearch) that can answer a search instead of
// the portable posting sets. It holds the same folded tokens, so it returns the same matches.
type TextIndex interface {
	// Ready is false until the index holds every conversation (its backfill finished).
	Ready() bool
	// Matches returns up to n conversations holding one word of every group (and carrying tag,
	// unless it is ""), by (updated_at, id) descending, strictly after `after` when it is set.
	Matches(ctx context.Context, project, tag string, groups [][]string, after *core.TimeCursor, n int) ([]TextMatch, error)
}

// TextMatch is one conversation a TextIndex found.
type TextMatch struct {
	ID string
	At int64 // updated_at
}
