package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/cli"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

func TestCreateProjectPrintsAWorkingKey(t *testing.T) {
	e := testenv.Stores[0].Open(t) // skips without Redis (fails in CI)
	t.Setenv("AGENTSTATE_REDIS_URL", testenv.RedisURL())
	var out, errOut bytes.Buffer
	id := "admin_" + core.NewID()
	require.NoError(t, run(context.Background(), []string{"create-project", "-name", "fleet", "-id", id}, &out, &errOut), errOut.String())
	key := strings.TrimSpace(out.String())
	assert.True(t, core.ValidAPIKeyFormat(key), "stdout holds only the key: %q", out.String())
	p, err := e.App(t).Auth.Authenticate(context.Background(), key)
	require.NoError(t, err)
	assert.Equal(t, id, p.ProjectID)

	out.Reset()
	require.NoError(t, run(context.Background(), []string{"list-projects"}, &out, &errOut))
	assert.Regexp(t, `(?m)^ID\s+CREATED \(UTC\)\s+RETENTION\s+NAME$`, out.String(), "a table with a header")
	assert.Regexp(t, `(?m)^`+id+`\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+-\s+fleet$`, out.String(), "times are readable")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"list-projects", "-json"}, &out, &errOut))
	var listed []core.Project
	require.NoError(t, json.Unmarshal(out.Bytes(), &listed), out.String())
	assert.True(t, slices.ContainsFunc(listed, func(p core.Project) bool { return p.ID == id && p.Name == "fleet" }))
	require.NoError(t, run(context.Background(), []string{"delete-project", "-id", id}, &out, &errOut))
	_, err = e.App(t).Auth.Authenticate(context.Background(), key)
	assert.Error(t, err, "deleting the project removes its key")
	err = run(context.Background(), []string{"delete-project", "-id", id}, &out, &errOut)
	assert.EqualError(t, err, "Project not found", "the message alone, without the op chain or code")
	assert.NotContains(t, errOut.String(), "stream-node-max-bytes", "the admin command holds no states: no stream-node warning")
}

func TestAdminHelpAndVersionExitZero(t *testing.T) {
	t.Setenv("AGENTSTATE_REDIS_URL", "")
	for _, args := range [][]string{{"-h"}, {"list-projects", "-h"}, {"-version"}} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, &out, &errOut)
		assert.Equal(t, 0, cli.Exit("admin", err, io.Discard), "%v: %v", args, err)
		assert.Contains(t, out.String()+errOut.String(), map[bool]string{true: "admin ", false: "usage: admin"}[args[0] == "-version"], "%v", args)
	}
	assert.Equal(t, 2, cli.Exit("admin", run(context.Background(), []string{"nope"}, io.Discard, io.Discard), io.Discard), "an unknown command is a usage error")
}

func TestAdminRefusesEmbeddedStoreAndBadUsage(t *testing.T) {
	t.Setenv("AGENTSTATE_REDIS_URL", "")
	err := run(context.Background(), []string{"create-project", "-name", "x"}, &bytes.Buffer{}, &bytes.Buffer{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "AGENTSTATE_REDIS_URL is required")
	assert.ErrorContains(t, run(context.Background(), nil, &bytes.Buffer{}, &bytes.Buffer{}), "usage")
	t.Setenv("AGENTSTATE_REDIS_URL", testenv.RedisURL())
	if testenv.Stores[0].Open(t) != nil {
		err = run(context.Background(), []string{"create-project", "-name", "x", "-id", "p}:state:x"}, &bytes.Buffer{}, &bytes.Buffer{})
		assert.ErrorContains(t, err, "Project id must be", "ids cannot break out of their hash tag")
	}
	assert.ErrorContains(t, run(context.Background(), []string{"nope"}, &bytes.Buffer{}, &bytes.Buffer{}), "usage")
}
