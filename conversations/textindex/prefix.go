package textindex

import "strings"

// QueryTerm is one word of a search query, folded; Prefix when it was written with a trailing "*".
type QueryTerm struct {
	Text   string
	Prefix bool
}

// ParseQuery splits q like Tokens does, marking the words followed directly by "*"
// as prefixes. Repeats are dropped (a word and the same word as prefix are two terms); at most
// MaxTerms terms are kept.
func ParseQuery(q string) []QueryTerm {
	var out []QueryTerm
	seen := map[QueryTerm]bool{}
	start := -1
	emit := func(end int) {
		if start < 0 {
			return
		}
		t := foldToken(q[start:end])
		start = -1
		if len(t) > MaxTokenBytes {
			return
		}
		qt := QueryTerm{Text: t, Prefix: strings.HasPrefix(q[end:], "*")}
		if !seen[qt] {
			seen[qt] = true
			out = append(out, qt)
		}
	}
	for i, r := range q {
		if isTokenRune(r) {
			if start < 0 {
				start = i
			}
		} else {
			emit(i)
		}
	}
	emit(len(q))
	if len(out) > MaxTerms {
		out = out[:MaxTerms]
	}
	return out
}

// MatchesAllGroups reports whether tokens hold one word of every group (false for no groups).
func MatchesAllGroups(tokens map[string]bool, groups [][]string) bool {
	if len(groups) == 0 {
		return false
	}
	for _, g := range groups {
		found := false
		for _, w := range g {
			if tokens[w] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
