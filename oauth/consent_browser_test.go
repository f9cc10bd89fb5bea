package oauth_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/agentstate/agentstate-go/internal/testenv"
)

// e2eDir holds the pinned playwright-core and axe-core (console/e2e/package-lock.json).
const e2eDir = "../console/e2e"

// TestConsentPageInBrowser drives the consent page in headless Chromium
// (console/e2e/oauth-consent.e2e.mjs) against the real handler over real Redis: a wrong key
// refused on the page, approval with narrowed scopes followed to the client's loopback
// callback and exchanged, deny, axe, no CSP violation, and no cross-origin framing. Without
// node, the npm packages or Chromium it skips, unless AGENTSTATE_TEST_REQUIRE_BROWSER=1 (CI).
func TestConsentPageInBrowser(t *testing.T) {
	node := testenv.RequireBrowser(t, e2eDir, "playwright-core")
	e := testenv.Stores[0].Open(t)
	s := testenv.NewServer(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "oauth-consent.e2e.mjs")
	cmd.Dir = e2eDir
	cmd.Env = append(os.Environ(), "BASE="+s.URL, "KEY="+s.Project.Key, "CHROMIUM="+testenv.Chromium, "SHOT="+os.Getenv("OAUTH_CONSENT_SHOT"))
	out, err := cmd.CombinedOutput()
	t.Logf("browser run:\n%s", out)
	if err != nil {
		t.Fatalf("browser run failed: %v", err)
	}
}
