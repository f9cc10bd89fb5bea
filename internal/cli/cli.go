// Package cli is what every binary's command line shares: a usage header for -h (which exits
// 0, as help is not an error), -version, and the settings read from AGENTSTATE_* variables.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/peterbourgon/ff/v3"
)

// version is stamped at build time:
//
//	go build -ldflags "-X github.com/agentstate/agentstate-go/internal/cli.version=v1.2.3" ./cmd/...
//
// Without it the module version from the build info is used ("(devel)" for a checkout).
var version = ""

// Version is the binary's version, with the VCS revision when the build recorded one.
func Version() string {
	v := version
	bi, ok := debug.ReadBuildInfo()
	if v == "" {
		v = "(devel)"
		if ok && bi.Main.Version != "" {
			v = bi.Main.Version
		}
	}
	if ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
	}
	return v
}

// ErrHandled means the command line asked for help or the version, which has been printed:
// the binary should exit 0 without doing anything else.
var ErrHandled = errors.New("help or version printed")

// Env reads unset flags from AGENTSTATE_* environment variables.
var Env = ff.WithEnvVarPrefix("AGENTSTATE")

// Parse parses args into fs after adding -version and a usage text that starts with header.
// Usage and errors go to stderr, the version to stdout.
func Parse(fs *flag.FlagSet, args []string, header string, stdout, stderr io.Writer, opts ...ff.Option) error {
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "%s\n\nFlags:\n", header)
		fs.PrintDefaults()
	}
	err := ff.Parse(fs, args, opts...)
	if errors.Is(err, flag.ErrHelp) {
		return ErrHandled
	}
	if err != nil {
		return usageError{err.Error()}
	}
	if *showVersion {
		fmt.Fprintf(stdout, "%s %s (%s)\n", fs.Name(), Version(), runtime.Version())
		return ErrHandled
	}
	return nil
}

// Exit ends a command after run returned err: 0 for nil or ErrHandled, otherwise the error
// on stderr after prefix and exit 1 (2 for a bad command line, as flag does).
func Exit(prefix string, err error, stderr io.Writer) int {
	switch {
	case err == nil || errors.Is(err, ErrHandled):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintln(stderr, prefix+":", err)
		return 2
	}
	fmt.Fprintln(stderr, prefix+":", err)
	return 1
}

// usageError is a command line that does not make sense.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// Usage is a command-line error (exit 2).
func Usage(msg string) error { return usageError{msg} }

// DefaultGCPercent is the GOGC a server runs with when GOGC is unset. A busy server's live
// heap is a few tens of MiB, so collecting when the heap has grown by 200 % of it instead of
// 100 % trades ~10 MiB of memory for half the collections: 5-9 % fewer instructions per
// request (docs/benchmarks.md, "GOGC and GOMAXPROCS").
const DefaultGCPercent = 200

// SetDefaultGC applies DefaultGCPercent unless the operator set GOGC (any value, "off" too),
// which the runtime has already applied.
func SetDefaultGC() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(DefaultGCPercent)
	}
}
