// Command mcp-server serves AgentState's MCP tools over stdio, for Claude Desktop, Claude Code
// and Cursor. The credential comes from AGENTSTATE_API_KEY.
//
// With AGENTSTATE_URL=https://host (recommended) it forwards stdio to that server's /api/mcp,
// so the agent machine needs no Redis access. Otherwise it serves from the store itself with
// the HTTP server's settings (AGENTSTATE_REDIS_URL, …); without AGENTSTATE_REDIS_URL on an
// embedded, in-memory store that uses AGENTSTATE_API_KEY (or a generated key) as its first key.
// AGENTSTATE_TOOLSETS=states,leases lists fewer tools.
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/cli"
	"github.com/agentstate/agentstate-go/tools"
)

func main() {
	cli.SetDefaultGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(cli.Exit("agentstate-mcp", run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr), os.Stderr))
}

const usage = `usage: mcp-server [flags]

Serves AgentState's MCP tools over stdio (stdout carries only the protocol). Every tool call runs
as AGENTSTATE_API_KEY. With no AGENTSTATE_REDIS_URL the data lives in memory and is lost on exit.`

// run serves until stdin ends or ctx is cancelled. stdout carries only the protocol.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mcp-server", flag.ContinueOnError)
	cfg := app.Flags(fs)
	apiKey := fs.String("api-key", "", "the credential every tool call runs as, as_live_… or as_cap_… (AGENTSTATE_API_KEY)")
	remoteURL := fs.String("url", "", "forward to the AgentState server at this URL instead of opening a store, e.g. https://agentstate.example.com (AGENTSTATE_URL)")
	toolsets := fs.String("toolsets", "", "list only these toolsets, comma-separated: "+strings.Join(tools.Toolsets, ",")+"; empty = all (AGENTSTATE_TOOLSETS)")
	// -version goes to stderr too: stdout belongs to the protocol.
	if err := cli.Parse(fs, args, usage, stderr, stderr, cli.Env); err != nil {
		return err
	}
	if *apiKey != "" && !core.ValidCredentialFormat(*apiKey) {
		return errors.New("AGENTSTATE_API_KEY is malformed: want as_live_ or as_cap_ followed by 40 letters or digits")
	}
	if *remoteURL != "" {
		if *apiKey == "" {
			return errors.New("AGENTSTATE_API_KEY is required with AGENTSTATE_URL")
		}
		return remote(ctx, *remoteURL, *apiKey, *toolsets, stdin, stdout, stderr)
	}
	log, err := app.NewLogger(cfg.LogLevel, cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	a.WarnRedisSettings(ctx, log)

	key := *apiKey
	if a.Conn.Embedded {
		if key == "" {
			key = core.NewAPIKeySecret()
		}
		if core.ValidAPIKeyFormat(key) {
			if _, err := a.Bootstrap(ctx, key); err != nil {
				return err
			}
		}
	} else if key == "" {
		return errors.New("AGENTSTATE_API_KEY is required with AGENTSTATE_REDIS_URL")
	}

	// A key this store does not know (or has revoked) is refused now, not with an empty tool list.
	if _, err := a.Auth.Authenticate(ctx, key); err != nil {
		return errors.New("AGENTSTATE_API_KEY is not a live credential of this store (unknown, revoked or expired): " + core.WireErrorOf(err).Message)
	}
	// A span per tool call when OTEL_EXPORTER_OTLP_ENDPOINT is set; flushed as the process ends.
	srv := tools.NewServer(a.ToolDeps(), []server.ToolHandlerMiddleware{a.Tracing.Tool})
	defer func() {
		flush, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = a.Tracing.Shutdown(flush)
	}()
	stdio := server.NewStdioServer(srv.MCPServer)
	stdio.SetContextFunc(func(ctx context.Context) context.Context {
		// Every request (tools/list, tools/call, resources/*) authenticates the key afresh, and
		// subscriptions re-check it, so a revoked key stops working at once.
		ctx = tools.WithAuthenticate(ctx, func(ctx context.Context) (core.Principal, error) { return a.Auth.Authenticate(ctx, key) })
		ctx = server.WithSupportedProtocolVersions(ctx, mcp.LegacyProtocolVersions())
		return tools.WithToolsets(ctx, *toolsets)
	})
	err = stdio.Listen(ctx, stdin, tools.NotFoundWriter(stdout))
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
