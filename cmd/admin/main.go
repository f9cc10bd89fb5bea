// Command admin manages projects against a configured Redis:
//
//	AGENTSTATE_REDIS_URL=redis://127.0.0.1:6379/0 go run ./cmd/admin create-project -name "My fleet"
//	AGENTSTATE_REDIS_URL=... go run ./cmd/admin list-projects
//	AGENTSTATE_REDIS_URL=... go run ./cmd/admin delete-project -id ID
//
// It prints the new project's full-access API key once, alone on stdout, so scripts can
// capture it; everything else goes to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "agentstate-admin:", err)
		os.Exit(1)
	}
}

const usage = "usage: admin create-project -name NAME [-id ID] | list-projects | delete-project -id ID"

// commands maps a subcommand to its implementation; each parses its own flags.
var commands = map[string]func(ctx context.Context, a *app.App, args []string, stdout, stderr io.Writer) error{
	"create-project": createProject,
	"list-projects":  listProjects,
	"delete-project": deleteProject,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || commands[args[0]] == nil {
		return errors.New(usage)
	}
	cmd := commands[args[0]]
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := app.Flags(fs)
	// Shared settings come from the environment; the subcommand's own flags follow its name.
	if err := app.Parse(fs, nil); err != nil {
		return err
	}
	if cfg.RedisURL == "" {
		return errors.New("AGENTSTATE_REDIS_URL is required: an embedded store would vanish when this command exits")
	}
	log, err := app.NewLogger("warn", stderr)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	return cmd(ctx, a, args[1:], stdout, stderr)
}

func createProject(ctx context.Context, a *app.App, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("create-project", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "project name (required)")
	id := fs.String("id", "", "project id (default: generated)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		return errors.New(usage)
	}
	p, err := a.Auth.CreateProject(ctx, core.CreateProjectRequest{ID: *id, Name: *name})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "created project %s (%q); its full-access API key is shown once:\n", p.Project.ID, *name)
	_, err = fmt.Fprintln(stdout, p.APIKey.Key)
	return err
}

// listProjects prints one "id<TAB>created_at<TAB>name" line per project.
func listProjects(ctx context.Context, a *app.App, args []string, stdout, stderr io.Writer) error {
	l, err := a.Auth.ListProjects(ctx)
	if err != nil {
		return err
	}
	for _, p := range l.Data {
		fmt.Fprintf(stdout, "%s\t%d\t%s\n", p.ID, p.CreatedAt, p.Name)
	}
	return nil
}

func deleteProject(ctx context.Context, a *app.App, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("delete-project", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "project id (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" {
		return errors.New(usage)
	}
	if err := a.Auth.DeleteProject(ctx, *id); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "deleted project %s with every key, token and record it had\n", *id)
	return nil
}
