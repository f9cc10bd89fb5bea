package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/testenv"
)

// TestConsoleInBrowser drives the console in headless Chromium (e2e/console.e2e.mjs) against a
// real http-server handler over real Redis, with the system clock so leases really expire.
// Without node, the npm packages or Chromium it skips, unless AGENTSTATE_TEST_REQUIRE_BROWSER=1
// (CI), where that is a failure. UPDATE_SCREENSHOTS=1 writes the screenshots to docs/console.
func TestConsoleInBrowser(t *testing.T) {
	node := testenv.RequireBrowser(t, "e2e", "playwright-core", "axe-core")

	e := testenv.OpenRealClock(t) // its lease sweeper runs on the system clock
	a := app.New(e.Store, core.SystemClock{}, core.DefaultLimits())
	a.RateLimiter = core.NewRateLimiter(e.Store, core.SystemClock{}, 6000) // the overview shows its use
	ctx, cancel := context.WithCancel(context.Background())
	a.Start(ctx, slog.New(slog.NewTextHandler(io.Discard, nil))) // the lease sweeper emits lease.expired
	ts := httptest.NewServer(a.NewHandler(0))
	t.Cleanup(func() {
		ts.Close()
		cancel()
		sctx, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		_ = a.Shutdown(sctx)
	})
	project := testenv.NewProject(t, a)

	shots := t.TempDir()
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		shots, _ = filepath.Abs("../docs/console")
		_ = os.MkdirAll(shots, 0o755)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer rcancel()
	cmd := exec.CommandContext(rctx, node, "console.e2e.mjs")
	cmd.Dir = "e2e"
	cmd.Env = append(os.Environ(), "BASE="+ts.URL, "KEY="+project.Key, "SHOTS="+shots, "CHROMIUM="+testenv.Chromium)
	out, err := cmd.CombinedOutput()
	t.Logf("browser run:\n%s", out)
	if err != nil {
		t.Fatalf("browser run failed: %v", err)
	}
}
