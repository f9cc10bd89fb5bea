// Command healthcheck asks a running AgentState server whether it is ready and exits 0 if so,
// 1 if not. The runtime image has no shell or curl, so container healthchecks run this.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/agentstate/agentstate-go/internal/cli"
)

const usage = `usage: healthcheck [flags]

Exits 0 when GET -url answers 2xx within -timeout, else 1 (for Docker HEALTHCHECK and compose).`

func main() {
	os.Exit(cli.Exit("healthcheck", run(context.Background(), os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	url := fs.String("url", "http://127.0.0.1:8080/readyz", "the endpoint to ask: /readyz (Redis answers) or /healthz (the process serves) (AGENTSTATE_HEALTHCHECK_URL)")
	timeout := fs.Duration("timeout", 3*time.Second, "how long the answer may take (AGENTSTATE_HEALTHCHECK_TIMEOUT)")
	if err := cli.Parse(fs, args, usage, stdout, stderr, cli.Env); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s answered %d: %s", *url, resp.StatusCode, b)
	}
	return nil
}
