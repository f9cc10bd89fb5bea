package redisstore

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyDoc is the operator's description of the layout that keys.go builds.
const keyDoc = "../docs/redis-keys.md"

// keyBuilders calls every key builder of keys.go with the placeholders the doc writes in its
// table: <project>, <key> (a state key, or an Idempotency-Key header value), <agent>, <tag>,
// <id> (a lease, lease waiter or API key id) and <hash> (a credential's SHA-256).
var keyBuilders = map[string]string{
	"seqKey":                 seqKey("<project>"),
	"logKey":                 logKey("<project>"),
	"liveIndexKey":           liveIndexKey("<project>"),
	"agentIndexKey":          agentIndexKey("<project>", "<agent>"),
	"tagIndexKey":            tagIndexKey("<project>", "<tag>"),
	"stateKey":               stateKey("<project>", "<key>"),
	"stateHeadKey":           stateHeadKey("<project>", "<key>"),
	"leaseCurrentKey":        leaseCurrentKey("<project>", "<key>"),
	"leaseDeadlinesKey":      leaseDeadlinesKey("<project>", "<key>"),
	"jobLeadKey":             jobLeadKey("<job>"),
	"idempotencyKey":         idempotencyKey("<project>", "<key>"),
	"fenceKey":               fenceKey("<project>", "<key>"),
	"leaseQueueKey":          leaseQueueKey("<project>", "<key>"),
	"activeLeasesKey":        activeLeasesKey("<project>"),
	"leaseRecordKey":         leaseRecordKey("<project>", "<id>"),
	"leaseEventsKey":         leaseEventsKey("<project>"),
	"leaseWaiterSeqKey":      leaseWaiterSeqKey("<project>"),
	"leaseWaiterKey":         leaseWaiterKey("<project>", "<id>"),
	"mcpSessionKey":          mcpSessionKey("<project>", "<id>"),
	"leaseProjectsKey":       leaseProjectsKey(),
	"projectsKey":            projectsKey(),
	"projectRecordKey":       projectRecordKey("<project>"),
	"credentialKey":          credentialKey("<hash>"),
	"apiKeyRecordKey":        apiKeyRecordKey("<project>", "<id>"),
	"apiKeysIndexKey":        apiKeysIndexKey("<project>"),
	"tokenRecordKey":         tokenRecordKey("<project>", "<id>"),
	"eventIDIndexKey":        eventIDIndexKey("<project>"),
	"claimKey":               claimKey("<project>", "<id>"),
	"claimsIndexKey":         claimsIndexKey("<project>"),
	"claimRunsKey":           claimRunsKey("<project>", "<id>"),
	"claimLogKey":            claimLogKey("<project>"),
	"claimLogHeadKey":        claimLogHeadKey("<project>"),
	"signingKeyKey":          signingKeyKey(),
	"convKey":                convKey("<project>", "<id>"),
	"convMsgsKey":            convMsgsKey("<project>", "<id>"),
	"convMsgIDsKey":          convMsgIDsKey("<project>", "<id>"),
	"convsKey":               convsKey("<project>"),
	"convsCreatedKey":        convsCreatedKey("<project>"),
	"convExtKey":             convExtKey("<project>"),
	"postingKey":             postingKey("<project>", "<token>"),
	"vocabKey":               vocabKey("<project>"),
	"ftDocKey":               ftDocKey("<project>", "<id>"),
	"searchBackfillKey":      searchBackfillKey(),
	"tracesKey":              tracesKey("<project>"),
	"convTagsKey":            convTagsKey("<project>", "<id>"),
	"tagConvsKey":            tagConvsKey("<project>", "<tag>"),
	"tagCountsKey":           tagCountsKey("<project>"),
	"webhookKey":             webhookKey("<project>", "<id>"),
	"webhooksKey":            webhooksKey("<project>"),
	"tokensIndexKey":         tokensIndexKey("<project>"),
	"revokedTokensKey":       revokedTokensKey("<project>"),
	"claimsBySubjectKey":     claimsBySubjectKey("<project>", "<type>", "<id>"),
	"claimsBySubjectTypeKey": claimsBySubjectTypeKey("<project>", "<type>"),
	"claimsBySubjectIDKey":   claimsBySubjectIDKey("<project>", "<id>"),
	"generationKey":          generationKey(),
	"checkpointKey":          checkpointKey(),
	// The window is a number in the key; the doc writes it as <window>.
	"rateLimitKey": strings.Replace(rateLimitKey("<project>", "<id>", 0), ":0", ":<window>", 1),
	// The webhook outbox.
	"webhookOutboxKey":   webhookOutboxKey("<project>"),
	"webhookDeadKey":     webhookDeadKey("<project>"),
	"webhookProjectsKey": webhookProjectsKey(),
	"oauthClientKey":     oauthClientKey("<client_id>"),
	"oauthCodeKey":       oauthCodeKey("<project>", "<hash>"),
	"oauthRefreshKey":    oauthRefreshKey("<project>", "<hash>"),
	"oauthIPLimitKey":    strings.Replace(oauthIPLimitKey("<bucket>", "<ip>", 0), ":0", ":<window>", 1),
}

// globalKeys are the builders that deliberately live outside every project's hash tag: the
// registries that span projects, and credential look-ups (a request names no project before
// its credential is found).
var globalKeys = map[string]bool{"leaseProjectsKey": true, "jobLeadKey": true, "projectsKey": true, "credentialKey": true, "signingKeyKey": true,
	"searchBackfillKey": true, "webhookProjectsKey": true, "oauthClientKey": true, "oauthIPLimitKey": true, "generationKey": true,
	"checkpointKey": true}

// ftKeys are the project keys a RediSearch index covers: one literal prefix for every project
// (as:ft:), then the project's hash tag.
var ftKeys = map[string]bool{"ftDocKey": true}

// keyHelpers are functions of keys.go that return a string but are not builders themselves.
var keyHelpers = map[string]bool{"projectKey": true, "projectSubKey": true}

// placeholder matches the doc's placeholders, e.g. <project>.
var placeholder = regexp.MustCompile(`<[a-z_]+>`)

// builderFuncs parses keys.go and returns the name of every top-level function that returns
// a single string: each is a key builder unless it is one of keyHelpers.
func builderFuncs(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "keys.go", nil, 0)
	require.NoError(t, err)
	var names []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Recv != nil || fn.Type.Results == nil || len(fn.Type.Results.List) != 1 {
			continue
		}
		res := fn.Type.Results.List[0]
		if id, ok := res.Type.(*ast.Ident); !ok || id.Name != "string" || len(res.Names) > 1 {
			continue
		}
		if !keyHelpers[fn.Name.Name] {
			names = append(names, fn.Name.Name)
		}
	}
	require.NotEmpty(t, names, "found no key builders in keys.go")
	return names
}

// docKeyPatterns returns the first-column key patterns of the doc's table rows.
func docKeyPatterns(t *testing.T) (patterns []string, doc string) {
	t.Helper()
	b, err := os.ReadFile(keyDoc)
	require.NoError(t, err)
	row := regexp.MustCompile("(?m)^\\| `(as:[^`]*)` \\|")
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		patterns = append(patterns, m[1])
	}
	require.NotEmpty(t, patterns, "%s has no key table", keyDoc)
	return patterns, string(b)
}

// TestKeysAreDocumented keeps docs/redis-keys.md and keys.go in step both ways: every builder
// (found by parsing keys.go, so a new one cannot be forgotten here) is in keyBuilders and has
// a row in the doc's table, and every row of the table is a key some builder makes.
func TestKeysAreDocumented(t *testing.T) {
	funcs := builderFuncs(t)
	patterns, _ := docKeyPatterns(t)

	documented := map[string]bool{}
	for _, p := range patterns {
		assert.False(t, documented[p], "%s lists `%s` twice", keyDoc, p)
		documented[p] = true
	}
	built := map[string]bool{}
	for _, name := range funcs {
		assert.True(t, strings.HasSuffix(name, "Key"), "key builder %s: name builders ...Key", name)
		key, ok := keyBuilders[name]
		if !assert.True(t, ok, "key builder %s is not in keyBuilders: add it there, and a row for it to %s", name, keyDoc) {
			continue
		}
		built[key] = true
		assert.True(t, documented[key], "%s has no table row for %s: want a row starting | `%s` |", keyDoc, name, key)
	}
	for name := range keyBuilders {
		assert.True(t, slices.Contains(funcs, name), "keyBuilders names %s, which keys.go no longer has as a builder", name)
	}
	for _, p := range patterns {
		assert.True(t, built[p], "%s documents `%s`, which no builder in keys.go makes", keyDoc, p)
	}
}

// TestKeysCarryProjectHashTag: every key of a project carries the hash tag {<project>} right
// after the prefix and nowhere else, so all keys one script touches hash to one Cluster slot.
// Global keys carry no braces at all (a stray pair would become a hash tag).
func TestKeysCarryProjectHashTag(t *testing.T) {
	assert.Equal(t, "as:{p}:x", projectKey("p", "x"))
	for name, key := range keyBuilders {
		assert.True(t, strings.HasPrefix(key, prefix), "%s does not start with %q: %s", name, prefix, key)
		if globalKeys[name] {
			assert.NotContains(t, key, "{", "%s is global and must carry no hash tag: %s", name, key)
			assert.NotContains(t, key, "<project>", "%s is global but names a project: %s", name, key)
			continue
		}
		tagged := "as:{<project>}:"
		if ftKeys[name] {
			tagged = "as:ft:{<project>}:"
		}
		assert.True(t, strings.HasPrefix(key, tagged), "%s must start with the project hash tag: %s", name, key)
		assert.Equal(t, 1, strings.Count(key, "{"), "%s must have exactly one hash tag: %s", name, key)
		assert.Equal(t, 1, strings.Count(key, "}"), "%s must have exactly one hash tag: %s", name, key)
	}
}

// TestKeysDoNotCollide: no two builders can produce the same key. A builder with a variable
// part (a state key, tag, id…) owns every key starting with its fixed part, so no other
// builder's fixed part may start with it: e.g. a state key can never spell another key of the
// project, whatever characters it holds.
func TestKeysDoNotCollide(t *testing.T) {
	type owned struct {
		name, fixed string
		open        bool // has a variable suffix
	}
	var all []owned
	const tagged = "as:{<project>}:" // fixed within a project
	for name, key := range keyBuilders {
		from := 0
		if strings.HasPrefix(key, tagged) {
			from = len(tagged)
		}
		locs := placeholder.FindAllStringIndex(key[from:], -1)
		if locs == nil {
			all = append(all, owned{name, key, false})
			continue
		}
		assert.Equal(t, len(key), from+locs[len(locs)-1][1], "%s: the variable part must end the key: %s", name, key)
		all = append(all, owned{name, key[:from+locs[0][0]], true})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].name < all[j].name })
	for _, a := range all {
		for _, b := range all {
			if a.name == b.name {
				continue
			}
			if a.open {
				assert.False(t, strings.HasPrefix(b.fixed, a.fixed),
					"%s (%s…) can produce the keys of %s (%s)", a.name, a.fixed, b.name, b.fixed)
			} else if !b.open {
				assert.NotEqual(t, a.fixed, b.fixed, "%s and %s build the same key", a.name, b.name)
			}
		}
	}
}

func TestWriteKeysAreTheKeyBuilders(t *testing.T) {
	for _, c := range [][2]string{{"p", "k"}, {"proj_1-x", "a/b:c{d}"}, {"p", ""}} {
		project, key := c[0], c[1]
		want := []string{stateKey(project, key), stateHeadKey(project, key), seqKey(project), logKey(project),
			liveIndexKey(project), eventIDIndexKey(project), leaseCurrentKey(project, key),
			fenceKey(project, key), activeLeasesKey(project)}
		got := writeKeys(project, key, 3)
		if !slices.Equal(got, want) || cap(got) != len(want)+3 {
			t.Fatalf("writeKeys(%q, %q) = %q (cap %d), want %q", project, key, got, cap(got), want)
		}
	}
}
