// Command mcp-server serves AgentState's MCP tools over stdio, for Claude Desktop, Claude Code
// and Cursor. The credential comes from AGENTSTATE_API_KEY; the other settings are the HTTP
// server's (AGENTSTATE_REDIS_URL, …). Without AGENTSTATE_REDIS_URL it runs on an embedded,
// in-memory store and uses AGENTSTATE_API_KEY (or a generated key) as that store's first key.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/cli"
	"github.com/agentstate/agentstate-go/tools"
)

func main() {
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
	// -version goes to stderr too: stdout belongs to the protocol.
	if err := cli.Parse(fs, args, usage, stderr, stderr, cli.Env); err != nil {
		return err
	}
	if *apiKey != "" && !core.ValidCredentialFormat(*apiKey) {
		return errors.New("AGENTSTATE_API_KEY is malformed: want as_live_ or as_cap_ followed by 40 letters or digits")
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

	// The credential is checked on every call, so a revoked key stops working at once.
	authenticate := func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			p, err := a.Auth.Authenticate(ctx, key)
			if err != nil {
				w := core.WireErrorOf(err)
				r := mcp.NewToolResultError(fmt.Sprintf("Error: %s: %s", w.Code, w.Message))
				r.StructuredContent = map[string]any{"error": w}
				return r, nil
			}
			return next(core.WithPrincipal(ctx, p), req)
		}
	}
	srv := tools.NewServer(a.ToolDeps(), server.WithToolHandlerMiddleware(authenticate))
	stdio := server.NewStdioServer(srv)
	stdio.SetContextFunc(func(ctx context.Context) context.Context {
		// tools/list and resources see the principal as of start; tool calls re-check it.
		if p, err := a.Auth.Authenticate(ctx, key); err == nil {
			return core.WithPrincipal(ctx, p)
		}
		return ctx
	})
	err = stdio.Listen(ctx, stdin, stdout)
	if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
