package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentstate/agentstate-go/internal/cli"
)

// TestEveryBinaryHasHelpAndVersion builds each command (with a version stamped by -ldflags, as a
// release would) and runs it: -h exits 0 with a usage header, -version exits 0 with the stamp,
// and an unknown flag exits 2.
func TestEveryBinaryHasHelpAndVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every binary")
	}
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
		"-ldflags", "-X github.com/agentstate/agentstate-go/internal/cli.version=v9.8.7-test", "../../cmd/...")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, name := range []string{"http-server", "mcp-server", "admin", "verify", "loadgen", "healthcheck"} {
		bin := filepath.Join(dir, name)
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(bin, "-h")
			cmd.Env = append(os.Environ(), "AGENTSTATE_REDIS_URL=")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "-h exits 0: %s", out)
			assert.True(t, strings.HasPrefix(string(out), "usage: "+name), "%s", out)
			assert.NotContains(t, string(out), "flag: help requested")

			out, err = exec.Command(bin, "-version").CombinedOutput()
			require.NoError(t, err, "%s", out)
			assert.Contains(t, string(out), name+" v9.8.7-test")

			err = exec.Command(bin, "-no-such-flag").Run()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, 2, ee.ExitCode())
		})
	}
	t.Run("mcp-server lists only its own settings", func(t *testing.T) {
		out, _ := exec.Command(filepath.Join(dir, "mcp-server"), "-h").CombinedOutput()
		for _, own := range []string{"-api-key", "-redis-url", "-log-format", "-signing-key"} {
			assert.Contains(t, string(out), own)
		}
		for _, httpOnly := range []string{"-addr", "-admin-token", "-rate-limit-per-min", "-metrics-token", "-cors-origins", "-bootstrap-key"} {
			assert.NotContains(t, string(out), httpOnly+" ")
		}
	})
}

func TestSetDefaultGCKeepsTheOperatorsGOGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(123))
	t.Setenv("GOGC", "150") // read by the runtime at start; here only its presence matters
	cli.SetDefaultGC()
	if got := debug.SetGCPercent(123); got != 123 {
		t.Fatalf("GOGC set: SetDefaultGC changed the GC percent to %d", got)
	}
	os.Unsetenv("GOGC") // t.Setenv restores it at cleanup
	cli.SetDefaultGC()
	if got := debug.SetGCPercent(123); got != cli.DefaultGCPercent {
		t.Fatalf("GOGC unset: GC percent %d, want %d", got, cli.DefaultGCPercent)
	}
}
