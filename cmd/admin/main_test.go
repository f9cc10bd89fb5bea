package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
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
	assert.Contains(t, out.String(), id+"\t")
	require.NoError(t, run(context.Background(), []string{"delete-project", "-id", id}, &out, &errOut))
	_, err = e.App(t).Auth.Authenticate(context.Background(), key)
	assert.Error(t, err, "deleting the project removes its key")
	assert.ErrorContains(t, run(context.Background(), []string{"delete-project", "-id", id}, &out, &errOut), "Project not found")
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
