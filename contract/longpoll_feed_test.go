package contract

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// TestLongPollAnswersFromTheFeedOnlyPastItsVersion: a long-poll is answered from the project
// feed's events without a read of its own, so the feed's event must be past the version asked
// for: waiting for version 3 of a key at version 1, a write making it 2 does not answer, and
// the one making it 3 answers with that state.
func TestLongPollAnswersFromTheFeedOnlyPastItsVersion(t *testing.T) {
	testenv.ForEachStore(t, func(t *testing.T, e *testenv.Env) {
		s := testenv.NewServer(t, e)
		put := func(n int) int64 {
			st, _, err := s.App.States.Put(context.Background(), s.Project.P, core.PutState{Key: "lpf",
				Body: core.StateWrite{AgentID: "a", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}})
			require.NoError(t, err)
			return st.Version
		}
		require.EqualValues(t, 1, put(1))
		type answer struct {
			res core.WaitResult
			err error
		}
		got := make(chan answer, 1)
		go func() {
			res, err := s.App.Watcher.WaitForChange(context.Background(), s.Project.P, "lpf", 2, 20*time.Second)
			got <- answer{res, err}
		}()
		time.Sleep(100 * time.Millisecond) // the waiter subscribes and reads version 1
		require.EqualValues(t, 2, put(2))
		select {
		case a := <-got:
			t.Fatalf("answered at version 2 while waiting past 2: %+v", a)
		case <-time.After(500 * time.Millisecond):
		}
		require.EqualValues(t, 3, put(3))
		select {
		case a := <-got:
			require.NoError(t, a.err)
			assert.True(t, a.res.Changed)
			require.NotNil(t, a.res.State)
			assert.EqualValues(t, 3, a.res.State.Version)
			assert.JSONEq(t, `{"n":3}`, string(a.res.State.Data))
		case <-time.After(10 * time.Second):
			t.Fatal("the write of version 3 did not wake the waiter")
		}
	})
}
