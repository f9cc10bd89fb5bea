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
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/agentstate/agentstate-go/internal/accesslog"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/cli"
)

func main() {
	cli.SetDefaultGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Exit("agentstate", run(ctx, os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

const usage = `usage: http-server [flags]

Serves AgentState's REST API (/api/v1), MCP (/api/mcp), /healthz, /readyz and, when configured,
/metrics. With no AGENTSTATE_REDIS_URL the data lives in memory and is lost on exit.`

// run serves until ctx ends (SIGTERM or SIGINT), then shuts down within -shutdown-timeout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("http-server", flag.ContinueOnError)
	cfg := app.Flags(fs)
	app.HTTPFlags(fs, cfg)
	shutdownTimeout := fs.Duration("shutdown-timeout", 10*time.Second, "how long SIGTERM waits for streams, requests, jobs and webhook deliveries to finish (AGENTSTATE_SHUTDOWN_TIMEOUT)")
	if err := cli.Parse(fs, args, usage, stdout, stderr, cli.Env); err != nil {
		return err
	}
	log, err := app.NewLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	defer accesslog.Flush(log.Handler()) // the access lines still held
	slog.SetDefault(log)
	log.Info("starting", "version", cli.Version(), "go", runtime.Version(), "pid", os.Getpid())

	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	a.WarnRedisSettings(ctx, log)
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
	var metricsSrv *http.Server
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			_ = ln.Close()
			return fmt.Errorf("metrics address: %w", err)
		}
		metricsSrv = &http.Server{Handler: metricsMux(a, cfg.MetricsToken), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = metricsSrv.Serve(mln) }()
		log.Info("metrics listening", "addr", mln.Addr().String(), "url", "http://"+mln.Addr().String()+"/metrics")
	}
	a.Start(ctx, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("listening", "addr", ln.Addr().String(), "rest", "http://"+ln.Addr().String()+"/api/v1", "mcp", "http://"+ln.Addr().String()+"/api/mcp",
		"metrics", cfg.MetricsAddr != "" || cfg.MetricsToken != "")
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	if metricsSrv != nil {
		defer metricsSrv.Close() // scraped until the very end
	}
	return shutdown(a, srv, log, *shutdownTimeout)
}

// metricsMux serves /metrics alone on the separate metrics address (token optional there).
func metricsMux(a *app.App, token string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.Metrics.Handler(token))
	return mux
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
