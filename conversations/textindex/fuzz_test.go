package textindex

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzTokensAndSnippet: tokenizing, query parsing and snippets of any text and query never
// panic, and on valid UTF-8 give valid UTF-8: tokens that are non-empty, and a snippet of at
// most SnippetMaxRunes runes (plus the "…" marks) taken from the text.
func FuzzTokensAndSnippet(f *testing.F) {
	for _, s := range [][2]string{{"Deploying Redis on Kubernetes", "redis"}, {"", ""}, {"ÉCOLE école", "ecole*"},
		{"ß straße STRASSE", "strasse"}, {"日本語のテキスト", "日本"}, {strings.Repeat("word ", 100) + "needle", "needle"},
		{"\xff\xfe bad", "bad"}, {"a\u0301 combining", "á"}, {"İstanbul", "istanbul"}, {"x*y -z \"q\"", "* -"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, text, q string) {
		for _, tok := range append(Tokens(text), AllTokens(text)...) {
			if tok == "" {
				t.Fatalf("%q: empty token", text)
			}
		}
		terms := QueryTerms(q)
		_ = ParseQuery(q)
		sn := Snippet(text, terms)
		if !utf8.ValidString(text) {
			return
		}
		if !utf8.ValidString(sn) {
			t.Fatalf("%q / %q: snippet %q is not UTF-8", text, q, sn)
		}
		body := strings.TrimSuffix(strings.TrimPrefix(sn, "…"), "…")
		if utf8.RuneCountInString(body) > SnippetMaxRunes || !strings.Contains(text, body) {
			t.Fatalf("%q / %q: snippet %q", text, q, sn)
		}
	})
}
