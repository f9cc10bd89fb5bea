package titles

import (
	"testing"
	"unicode/utf8"
)

// FuzzClean: any model reply cleans into a title of at most titleMaxRunes runes without a
// panic ("»" alone once panicked), valid UTF-8 when the reply was, with no surrounding space.
func FuzzClean(f *testing.F) {
	for _, s := range []string{"", "»", "«»", "\"", "Title: \"Deploying Redis\"", "“x”", "'a'", "title:", "Title:»",
		"one two three four five six seven", "é\u0301", "\xff", "»\xff", "   «  »   "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Clean(s)
		if utf8.RuneCountInString(c) > titleMaxRunes {
			t.Fatalf("%q: %d runes", s, utf8.RuneCountInString(c))
		}
		if utf8.ValidString(s) && !utf8.ValidString(c) {
			t.Fatalf("%q: cleaned into invalid UTF-8 %q", s, c)
		}
		if len(c) > 0 && (c[0] == ' ' || c[len(c)-1] == ' ') {
			t.Fatalf("%q: %q keeps surrounding space", s, c)
		}
	})
}
