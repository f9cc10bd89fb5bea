// Command http-server serves AgentState's REST API (/api/v1) and MCP (/api/mcp: streamable
// HTTP, plus legacy SSE at /api/mcp/sse). With no AGENTSTATE_REDIS_URL it runs on an embedded
// in-memory store, so `go run ./cmd/http-server` works with nothing installed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/agentstate/agentstate-go/internal/app"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "agentstate:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("http-server", flag.ContinueOnError)
	cfg := app.Flags(fs)
	if err := app.Parse(fs, args); err != nil {
		return err
	}
	log, err := app.NewLogger(cfg.LogLevel, os.Stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

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
		fmt.Fprintf(os.Stderr, "\n  Created project %q with a full-access API key (shown only now):\n\n    %s\n\n", app.DefaultProject.ID, newKey)
	}

	go a.Leases.RunSweeper(ctx, time.Second, func(err error) { log.Error("lease sweep", "err", err) })
	go a.Convs.RunRetention(ctx, a.Auth.ListProjects, time.Hour, func(err error) { log.Error("retention", "err", err) })
	handler := a.NewHandler(cfg.AuthFailureDelay)
	srv := &http.Server{Addr: cfg.Addr, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("listening", "addr", cfg.Addr, "rest", "http://"+cfg.Addr+"/api/v1", "mcp", "http://"+cfg.Addr+"/api/mcp")
	select {
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}
	return nil
}
