package textindex

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Named bounds of full-text search.
const (
	MaxTokenBytes    = 64 // longer runs (hashes, base64) are not indexed
	MaxTerms         = 16
	SnippetLeadRunes = 40
	SnippetMaxRunes  = 200
)

var folder = cases.Fold()

func isTokenRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Mn, r)
}

// foldToken is the one normalisation of index and query, so "Straße" and "STRASSE", or
// composed and decomposed "é", meet. NFC runs again after folding because full folding can
// emit decomposed sequences (ǰ → j+U+030C); without it the output would not be NFC and
// folding an already folded term would not be a no-op.
func foldToken(s string) string { return norm.NFC.String(folder.String(norm.NFC.String(s))) }

// SearchTokens splits text into folded tokens (maximal runs of letters, digits and combining
// marks), in order of first appearance, without duplicates. A run of Han characters is one
// token, as there is no word segmentation.
func Tokens(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, t := range AllTokens(text) {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// SearchTokensAll is SearchTokens with repeats kept (relevance counts occurrences).
func AllTokens(text string) []string {
	var out []string
	for _, raw := range strings.FieldsFunc(text, func(r rune) bool { return !isTokenRune(r) }) {
		if t := foldToken(raw); len(t) <= MaxTokenBytes {
			out = append(out, t)
		}
	}
	return out
}

// SearchQueryTerms are the terms of a query: its tokens, at most MaxSearchTerms.
func QueryTerms(q string) []string {
	t := Tokens(strings.TrimSpace(q))
	if len(t) > MaxTerms {
		t = t[:MaxTerms]
	}
	return t
}

// MatchesAllTerms reports whether every term is among tokens (false for no terms).
func MatchesAllTerms(tokens map[string]bool, terms []string) bool {
	if len(terms) == 0 {
		return false
	}
	for _, t := range terms {
		if !tokens[t] {
			return false
		}
	}
	return true
}

// SearchSnippet is v1's snippet: from SnippetLeadRunes runes before the first occurrence of
// any term (as a whole token, compared folded), at most SnippetMaxRunes runes, with "…" on
// each cut side; the start of the text when no term occurs. Offsets are in runes so
// multibyte text is never split inside a character.
func Snippet(content string, terms []string) string {
	// Terms are refolded so raw user words work too; folding is idempotent on folded terms.
	want := map[string]bool{}
	for _, t := range terms {
		want[foldToken(t)] = true
	}
	// Matching whole tokens, as the index does, both avoids hits inside longer words and
	// sidesteps folding changing lengths: positions come from the original text, and only
	// each token is folded for the comparison.
	hit := -1
	start := -1
	flush := func(end int) bool {
		if start >= 0 && want[foldToken(content[start:end])] {
			hit = utf8.RuneCountInString(content[:start])
			return true
		}
		return false
	}
	for i, r := range content {
		if isTokenRune(r) {
			if start < 0 {
				start = i
			}
		} else {
			if flush(i) {
				break
			}
			start = -1
		}
	}
	if hit < 0 {
		flush(len(content))
	}
	runes := []rune(content)
	from := 0
	if hit > SnippetLeadRunes {
		from = hit - SnippetLeadRunes
	}
	to := min(len(runes), from+SnippetMaxRunes)
	s := string(runes[from:to])
	if from > 0 {
		s = "…" + s
	}
	if to < len(runes) {
		s += "…"
	}
	return s
}
