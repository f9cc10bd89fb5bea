package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// newServer is the real HTTP surface over e's store in a fresh project (removed afterwards),
// like testenv.NewServer but on the system clock: leases must really expire and be renewed.
func newServer(t *testing.T, e *testenv.Env) *testenv.Server {
	a := app.New(e.Store, core.SystemClock{}, core.DefaultLimits())
	ts := httptest.NewServer(testenv.CheckOpenAPI(t, a.NewHandler(0)))
	t.Cleanup(ts.Close)
	return &testenv.Server{URL: ts.URL, App: a, Project: testenv.NewProject(t, a)}
}

// runFleet runs the harness against s with args and returns its output and error.
func runFleet(t *testing.T, s *testenv.Server, args ...string) (string, error) {
	t.Helper()
	c, err := parse(append([]string{"-url", s.URL, "-key", s.Project.Key}, args...))
	require.NoError(t, err)
	var out bytes.Buffer
	err = fleet(context.Background(), c, &out)
	t.Log(out.String())
	return out.String(), err
}

// The real server over real Redis (skipped when 127.0.0.1:6379 does not answer, see testenv)
// and over the embedded store, each in a project of its own.
func TestFleetProcessesEveryTaskExactlyOnce(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		out, err := runFleet(t, newServer(t, e), "-workers", "8", "-tasks", "25")
		require.NoError(t, err, out)
		require.Contains(t, out, "PASS: each of the 25 tasks processed exactly once")
	})
}

// With no -url the program starts the server itself on an embedded store.
func TestFleetInProcessServer(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-workers", "4", "-tasks", "10"}, &out)
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "in-process server on http://127.0.0.1:")
	require.Contains(t, out.String(), "PASS")
}

// Tasks that outlast the TTL stay covered because the workers renew at ttl/2. (Without the
// renewals the writes, all after 1.1 s or more, are refused with LEASE_EXPIRED and this fails.)
func TestFleetRenewsLongTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 2 s")
	}
	e := testenv.Stores[1].Open(t) // embedded: timing only, the store does not matter
	out, err := runFleet(t, newServer(t, e), "-workers", "2", "-tasks", "2", "-ttl", "1000", "-work", "2200ms")
	require.NoError(t, err, out)
	require.Regexp(t, `[1-9][0-9]* renewals`, out)
}

// The check catches a task whose state was written twice: here someone wrote it before the
// fleet started, so the worker's write makes version 2.
func TestFleetReportsFailure(t *testing.T) {
	e := testenv.Stores[1].Open(t)
	s := newServer(t, e)
	_, _, err := s.App.States.Put(context.Background(), s.Project.P, core.PutState{
		Key: "task:seeded-1", Body: core.StateWrite{AgentID: "someone", Data: json.RawMessage(`{"done":false}`)},
	})
	require.NoError(t, err)
	out, err := runFleet(t, s, "-workers", "2", "-tasks", "3", "-run", "seeded")
	var fail *failure
	require.True(t, errors.As(err, &fail), "want a FAIL verdict, got %v", err)
	require.Contains(t, out, "FAIL")
	require.Contains(t, out, "task:seeded-1 written 2 times")
	require.Len(t, fail.problems, 1, "only the seeded task is wrong: %v", fail.problems)
}

func TestFleetLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://example.com:8080", "http://10.0.0.1:8080", "http://[2001:db8::1]/"} {
		_, err := parse([]string{"-url", u, "-key", "k"})
		require.ErrorContains(t, err, "not a loopback address", u)
		_, err = parse([]string{"-url", u, "-key", "k", "-allow-remote"})
		require.NoError(t, err, u)
	}
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost:8080/", "http://[::1]:8080"} {
		_, err := parse([]string{"-url", u, "-key", "k"})
		require.NoError(t, err, u)
	}
	_, err := parse([]string{"-url", "127.0.0.1:8080", "-key", "k"})
	require.ErrorContains(t, err, "want http(s)://host:port")
	require.Error(t, refuseRemote("tcp", "10.1.2.3:80", nil), "checked again on the dialled address")
	require.NoError(t, refuseRemote("tcp", "127.0.0.1:80", nil))
	require.ErrorContains(t, parseOnly("-workers", "0"), "-workers")
	require.ErrorContains(t, parseOnly("-ttl", "500"), "-ttl")
	require.ErrorContains(t, parseOnly("-url", "http://127.0.0.1:1"), "needs -key")
}

func parseOnly(args ...string) error { _, err := parse(args); return err }
