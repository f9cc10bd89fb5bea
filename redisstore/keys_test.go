package redisstore

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyBuilders calls every key builder of keys.go with placeholders, as the doc writes them.
var keyBuilders = map[string]string{
	"seqKey":            seqKey("<project>"),
	"logKey":            logKey("<project>"),
	"liveIndexKey":      liveIndexKey("<project>"),
	"allIndexKey":       allIndexKey("<project>"),
	"agentIndexKey":     agentIndexKey("<project>", "<agent>"),
	"tagIndexKey":       tagIndexKey("<project>", "<tag>"),
	"stateKey":          stateKey("<project>", "<key>"),
	"leaseLockKey":      leaseLockKey("<project>", "<key>"),
	"idempotencyKey":    idempotencyKey("<project>", "<key>"),
	"fenceKey":          fenceKey("<project>", "<key>"),
	"leaseQueueKey":     leaseQueueKey("<project>", "<key>"),
	"activeLeasesKey":   activeLeasesKey("<project>"),
	"leaseRecordKey":    leaseRecordKey("<project>", "<id>"),
	"leaseEventsKey":    leaseEventsKey("<project>"),
	"leaseWaiterKey":    leaseWaiterKey("<project>", "<id>"),
	"leaseWaiterSeqKey": leaseWaiterSeqKey("<project>"),
	"leaseProjectsKey":  leaseProjectsKey(),
	"projectsKey":       projectsKey(),
	"projectRecordKey":  projectRecordKey("<project>"),
	"credentialKey":     credentialKey("<hash>"),
	"apiKeyRecordKey":   apiKeyRecordKey("<project>", "<id>"),
	"apiKeysIndexKey":   apiKeysIndexKey("<project>"),
}

// globalKeys are the builders that deliberately have no project hash tag.
var globalKeys = map[string]bool{"leaseProjectsKey": true, "projectsKey": true, "credentialKey": true}

// TestKeyLayoutIsDocumented keeps docs/redis-keys.md and keys.go in step: every builder (found
// by parsing keys.go, so a new one cannot be forgotten here) must be in keyBuilders and its key
// pattern in the doc's table.
func TestKeyLayoutIsDocumented(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "keys.go", nil, 0)
	require.NoError(t, err)
	doc, err := os.ReadFile("../docs/redis-keys.md")
	require.NoError(t, err)
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name == "projectKey" {
			continue
		}
		name := fn.Name.Name
		key, ok := keyBuilders[name]
		if !assert.True(t, ok, "key builder %s is not in keyBuilders (add it, and document it)", name) {
			continue
		}
		assert.Contains(t, string(doc), "| `"+key+"` |", "docs/redis-keys.md does not document %s (%s)", name, key)
		if !globalKeys[name] {
			assert.True(t, strings.HasPrefix(key, "as:{<project>}:"), "%s must carry the project hash tag: %s", name, key)
		}
	}
}
