// Command http-server serves AgentState's REST API (/api/v1) and MCP (/api/mcp: streamable
// HTTP, plus legacy SSE at /api/mcp/sse). With no AGENTSTATE_REDIS_URL it runs on an embedded
// in-memory store, so `go run ./cmd/http-server` works with nothing installed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agentstate/agentstate-go/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "agentstate:", err)
		os.Exit(1)
	}
}

// run serves until ctx ends (SIGTERM or SIGINT), then shuts down within -shutdown-timeout.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("http-server", flag.ContinueOnError)
	cfg := app.Flags(fs)
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long SIGTERM waits for streams, requests, jobs and webhook deliveries to finish (AGENTSTATE_SHUTDOWN_TIMEOUT)")
	if err := app.Parse(fs, args); err != nil {
		return err
	}
	log, err := app.NewLogger(cfg.LogLevel, stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(log)

	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	newKey, err := a.Bootstrap(ctx, cfg.BootstrapKey)
	if err != nil {
		return err
	}
	if newKey != "" {
		fmt.Fprintf(stderr, "\n  Created project %q with a full-access API key (shown only now):\n\n    %s\n\n", app.DefaultProject.ID, newKey)
	}

	handler := a.NewHandler(cfg.AuthFailureDelay)
	// Bind before saying so: a taken port is an error, not a "listening" line.
	srv, ln, err := cfg.Serve(handler)
	if err != nil {
		return err
	}
	a.Start(ctx, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "rest", "http://"+ln.Addr().String()+"/api/v1", "mcp", "http://"+ln.Addr().String()+"/api/mcp")
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	return shutdown(a, srv, log, *shutdownTimeout)
}

// shutdown stops in order: no new connections, open streams told to reconnect and ended,
// in-flight requests finished, then background jobs and webhook deliveries, all within timeout;
// the store closes after (deferred by run).
func shutdown(a *app.App, srv *http.Server, log *slog.Logger, timeout time.Duration) error {
	log.Info("shutting down", "timeout", timeout.String())
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	streams := make(chan error, 1)
	go func() { streams <- a.EndStreams(ctx) }()
	errs := []error{srv.Shutdown(ctx), <-streams, a.Shutdown(ctx)}
	if err := errors.Join(errs...); err != nil {
		log.Error("shutdown incomplete", "err", err, "dur_ms", time.Since(start).Milliseconds())
		return nil // the process ends either way; the log says what was cut short
	}
	log.Info("stopped", "dur_ms", time.Since(start).Milliseconds())
	return nil
}
