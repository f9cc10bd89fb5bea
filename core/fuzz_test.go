package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// The parsers and validators that read client input. Each fuzz target checks that any input
// is either accepted with a result that keeps the parser's promises, or refused with a client
// error (a 4xx code) — never a panic and never an internal error. `go test` runs the seeds;
// .ci/run fuzzes each for a few seconds.

// requireClientError fails unless err is a *Error whose code is a 400-class refusal.
func requireClientError(t *testing.T, in any, err error) {
	t.Helper()
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("%q: error %v is not a *core.Error", in, err)
	}
	switch ce.Code {
	case CodeBadRequest, CodeInvalidCursor, CodeInvalidField, CodeInvalidTag:
	default:
		t.Fatalf("%q: refused with %s, not a client error", in, ce.Code)
	}
	if ce.Message == "" {
		t.Fatalf("%q: refusal without a message", in)
	}
}

var cursorSeeds = []string{"", "0", "1", "42", "-1", "007", "+5", " 1", "1e3", "9007199254740991", "9007199254740992",
	"9223372036854775807", "9223372036854775808", "99999999999999999999", "abc", "1.1700000000000-0",
	"5.18446744073709551615-18446744073709551615", "5.18446744073709551616-0", "1.-", "1.1-", "1.-1", "1.+1-1", "1..1-1"}

func FuzzSequenceCursor(f *testing.F) {
	for _, s := range cursorSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseSequenceCursor("fuzz", s); err != nil {
			requireClientError(t, s, err)
		} else if n < 0 || n > MaxCursorSequence || (s == "" && n != 0) {
			t.Fatalf("%q: accepted as %d", s, n)
		}
		seq, lease, err := ParseWatchCursor(s)
		if err != nil {
			requireClientError(t, s, err)
			return
		}
		if seq < 0 || seq > MaxCursorSequence || (lease != "" && !ValidStreamID(lease)) {
			t.Fatalf("%q: accepted as %d / %q", s, seq, lease)
		}
	})
}

func FuzzStreamID(f *testing.F) {
	for _, s := range []string{"0-0", "1700000000000-0", "18446744073709551615-18446744073709551615", "18446744073709551616-0",
		"-", "1-", "-1", "+1-1", "1-+1", "1-1-1", "a-b", "", "٣-٣"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !ValidStreamID(s) {
			return
		}
		// What Redis accepts as a range bound: decimal parts that fit uint64.
		ms, seq, _ := strings.Cut(s, "-")
		for _, part := range []string{ms, seq} {
			if _, err := strconv.ParseUint(part, 10, 64); err != nil || strings.Trim(part, "0123456789") != "" {
				t.Fatalf("%q accepted", s)
			}
		}
	})
}

func FuzzTimeCursor(f *testing.F) {
	for _, s := range []string{"", "1700000000000", "1700000000000.abc", "0", "-1", ".", "1.", "9223372036854775807.x", "9223372036854775808"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseTimeCursor("fuzz", s)
		if err != nil {
			requireClientError(t, s, err)
			return
		}
		if s != "" && (c == nil || c.At <= 0) {
			t.Fatalf("%q: accepted as %+v", s, c)
		}
	})
}

func FuzzJSONPath(f *testing.F) {
	doc := `{"a":{"b":[1,{"c":"x"}]},"d":null,"e":"\u00e9","f":[[]]}`
	for _, p := range []string{"$", "$.a", "$.a.b[1].c", "$.a.b[99]", "$[0]", "$.f[0][0]", "$..a", "$.*", "$['a']", "a", "$.a.",
		"$.1a", "$.a[-1]", "$[99999999999999999999]", "$.é"} {
		f.Add(p, doc)
	}
	f.Add("$.x", `[`)
	f.Add("$[0]", `[1,2`)
	f.Fuzz(func(t *testing.T, p, doc string) {
		jp, err := ParseJSONPath("fuzz", p)
		if err != nil {
			requireClientError(t, p, err)
			return
		}
		if v, ok := jp.Lookup([]byte(doc)); ok && json.Valid([]byte(doc)) && !json.Valid(v) {
			t.Fatalf("%q in %q: found %q, not a JSON value", p, doc, v)
		}
	})
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"b":1,"a":[1.0,2e3,-0,1e-7]}`, `"\u00e9\ud800"`, `[1,2`, `{"a":1,"a":2}`, `1e400`,
		`123456789012345678901234567890`, `{"x":"` + "\xff" + `"}`, `null`, ` true `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := CanonicalJSON(b)
		if err != nil {
			return
		}
		if !json.Valid(c) {
			t.Fatalf("%q: canonical form %q is not JSON", b, c)
		}
		again, err := CanonicalJSON(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("%q: canonical form %q is not stable: %q, %v", b, c, again, err)
		}
		if !JSONEqual(b, c) {
			t.Fatalf("%q: not equal to its canonical form %q", b, c)
		}
	})
}

func FuzzTagsAndKeys(f *testing.F) {
	for _, s := range []string{"build", "a-b_c", "", "x y", "é", strings.Repeat("t", 51), "task/*", "*", "a*b", "\xff", "k\x00"} {
		f.Add(s, s+"2")
	}
	l := DefaultLimits()
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, rule := range []TagRule{StateTags, ConversationTags} {
			tags, err := NormalizeTags("fuzz", []string{a, b, a}, l.MaxTags, rule)
			if err != nil {
				requireClientError(t, a+","+b, err)
				continue
			}
			if !slices.IsSorted(tags) || len(slices.Compact(slices.Clone(tags))) != len(tags) {
				t.Fatalf("%q,%q: tags %q not sorted and unique", a, b, tags)
			}
			for _, tg := range tags {
				if !rule.Valid(tg) {
					t.Fatalf("%q,%q: invalid tag %q kept", a, b, tg)
				}
			}
		}
		if err := validateStateKey("fuzz", a); err != nil {
			requireClientError(t, a, err)
		} else if a == "" || len(a) > MaxStateKeyBytes || !utf8.ValidString(a) {
			t.Fatalf("state key %q accepted", a)
		}
		if err := validateKeyPattern("fuzz", "resources", a); err != nil {
			requireClientError(t, a, err)
			return
		}
		// A pattern the validator accepts matches what it names: itself, or its prefix.
		if name, prefix := strings.CutSuffix(a, "*"); !KeyPatternMatch(a, a) && !(prefix && KeyPatternMatch(a, name)) {
			t.Fatalf("pattern %q does not match itself", a)
		}
	})
}

// signedLog is a valid three-entry log and its checkpoint, as a bundle's JSON.
func signedLog(f *testing.F) []byte {
	s, err := NewSigner(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	var entries []ClaimLogEntry
	prev := GenesisHash
	for i := int64(1); i <= 3; i++ {
		e := ClaimLogEntry{Seq: i, Type: LogClaimCreated, ClaimID: "c" + strconv.FormatInt(i, 10), At: 1700000000000 + i,
			ContentHash: SHA256Hex([]byte{byte(i)}), PrevHash: prev}
		if e.Hash, err = e.ComputeHash(); err != nil {
			f.Fatal(err)
		}
		prev = e.Hash
		entries = append(entries, e)
	}
	cp := s.Sign(Checkpoint{ProjectID: "p", Size: 3, HeadHash: prev, At: 1700000000009})
	b, err := json.Marshal(map[string]any{"entries": entries, "checkpoint": cp, "public_key": s.PublicKey()})
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func FuzzVerifyLog(f *testing.F) {
	valid := signedLog(f)
	f.Add(valid)
	f.Add(bytes.Replace(valid, []byte(`"seq":2`), []byte(`"seq":3`), 1))
	f.Add(bytes.Replace(valid, []byte(`"c2"`), []byte(`"c9"`), 1))
	f.Add([]byte(`{"entries":[{"seq":-9223372036854775808}],"checkpoint":{},"public_key":{}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		fromGenesis := len(b)%2 == 0
		var in struct {
			Entries    []ClaimLogEntry `json:"entries"`
			Checkpoint Checkpoint      `json:"checkpoint"`
			PublicKey  SigningKey      `json:"public_key"`
		}
		if json.Unmarshal(b, &in) != nil {
			return
		}
		// The offline verifier's whole bundle too (cmd/verify): claim and runs against the log.
		var bundle ClaimBundle
		if json.Unmarshal(b, &bundle) == nil {
			_ = VerifyBundle(bundle, "")
		}
		err := VerifyLog(in.Entries, in.Checkpoint, in.PublicKey, fromGenesis, "")
		if err == nil {
			// A log that verifies is a chain: each entry's hash is its contents'.
			for i, e := range in.Entries {
				if h, _ := e.ComputeHash(); h != e.Hash || (i > 0 && e.PrevHash != in.Entries[i-1].Hash) {
					t.Fatalf("a broken chain verified: %s", b)
				}
			}
			return
		}
		var vf *VerifyFailure
		if !errors.As(err, &vf) || vf.Reason == "" {
			t.Fatalf("verification failed without a reason: %v", err)
		}
	})
}

// credentialFormat is the v1 grammar that ValidCredentialFormat checks by hand.
var credentialFormat = regexp.MustCompile(`^as_(live|cap)_[A-Za-z0-9]{40}$`)

func FuzzCredentialFormat(f *testing.F) {
	for _, s := range []string{"", "as_live_", "as_cap_", NewAPIKeySecret(), CapabilityTokenPrefix + RandomBase62(40),
		APIKeyPrefix + RandomBase62(39), APIKeyPrefix + RandomBase62(41), "as_live_" + strings.Repeat("é", 20),
		"as_Live_" + RandomBase62(40), "xas_cap_" + RandomBase62(40), APIKeyPrefix + RandomBase62(39) + "-",
		APIKeyPrefix + RandomBase62(39) + "\n", "as_test_" + RandomBase62(40)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		want := credentialFormat.MatchString(raw)
		if got := ValidCredentialFormat(raw); got != want {
			t.Fatalf("ValidCredentialFormat(%q) = %v, the grammar says %v", raw, got, want)
		}
		if got := ValidAPIKeyFormat(raw); got != (want && strings.HasPrefix(raw, APIKeyPrefix)) {
			t.Fatalf("ValidAPIKeyFormat(%q) = %v", raw, got)
		}
	})
}
