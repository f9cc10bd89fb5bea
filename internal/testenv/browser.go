package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Chromium is the Debian browser the headless tests drive; no test tool downloads its own.
const Chromium = "/usr/bin/chromium"

// RequireBrowser returns node's path for a headless-Chromium test whose scripts live in dir
// (with its npm packages, pinned by dir's package-lock.json, installed there). Without node,
// the packages or Chromium it skips tb, unless AGENTSTATE_TEST_REQUIRE_BROWSER=1 (CI), where
// that is a failure.
func RequireBrowser(tb testing.TB, dir string, packages ...string) string {
	tb.Helper()
	node, err := exec.LookPath("node")
	missing := ""
	if err != nil {
		missing = "node is not installed"
	}
	for _, p := range packages {
		if missing == "" && !exists(filepath.Join(dir, "node_modules", p)) {
			missing = filepath.Join(dir, "node_modules", p) + " is missing (run npm ci in " + dir + ")"
		}
	}
	if missing == "" && !exists(Chromium) {
		missing = Chromium + " is missing (apt-get install chromium)"
	}
	if missing != "" {
		if os.Getenv("AGENTSTATE_TEST_REQUIRE_BROWSER") == "1" {
			tb.Fatalf("the browser test is required: %s", missing)
		}
		tb.Skipf("browser test skipped: %s", missing)
	}
	return node
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
