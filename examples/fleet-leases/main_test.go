package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/internal/testenv"
)

func TestFleetProcessesEveryTaskExactlyOnce(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		a := e.App(t)
		p := testenv.NewProject(t, a)
		ts := httptest.NewServer(a.NewHandler(0))
		defer ts.Close()
		var out bytes.Buffer
		err := fleet(context.Background(), config{url: ts.URL, key: p.Key, workers: 6, tasks: 20, deadline: 60e9}, &out)
		require.NoError(t, err, out.String())
		require.Contains(t, out.String(), "20 processed exactly once")
	})
}

func TestFleetInProcessServer(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-workers", "4", "-tasks", "10"}, &out), out.String())
}
