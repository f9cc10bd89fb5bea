// Command admin manages projects against a configured Redis:
//
//	AGENTSTATE_REDIS_URL=redis://127.0.0.1:6379/0 go run ./cmd/admin create-project -name "My fleet"
//	AGENTSTATE_REDIS_URL=... go run ./cmd/admin list-projects [-json]
//	AGENTSTATE_REDIS_URL=... go run ./cmd/admin delete-project -id ID
//
// It prints the new project's full-access API key once, alone on stdout, so scripts can
// capture it; everything else goes to stderr.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/app"
	"github.com/agentstate/agentstate-go/internal/cli"
)

func main() {
	os.Exit(cli.Exit("agentstate-admin", run(context.Background(), os.Args[1:], os.Stdout, os.Stderr), os.Stderr))
}

const usage = `usage: admin [-version] COMMAND [flags]

Commands (AGENTSTATE_REDIS_URL must name the server's Redis):
  create-project -name NAME [-id ID]   create a project; prints its full-access API key once on stdout
  list-projects [-json]                list projects as a table, or as JSON
  delete-project -id ID                delete a project with every key, token and record it has`

// commands maps a subcommand to its implementation; each parses its own flags.
var commands = map[string]func(ctx context.Context, a *app.App, args []string, stdout, stderr io.Writer) error{
	"create-project": createProject,
	"list-projects":  listProjects,
	"delete-project": deleteProject,
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	top := flag.NewFlagSet("admin", flag.ContinueOnError)
	if err := cli.Parse(top, args, usage, stdout, stderr); err != nil {
		return err
	}
	args = top.Args()
	if len(args) == 0 || commands[args[0]] == nil {
		return cli.Usage(usage)
	}
	cmd := commands[args[0]]
	if wantsHelp(args[1:]) { // a subcommand's help needs no store
		return cmd(ctx, nil, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("admin", flag.ContinueOnError)
	cfg := app.Flags(fs)
	// Shared settings come from the environment; the subcommand's own flags follow its name.
	if err := cli.Parse(fs, nil, usage, stdout, stderr, cli.Env); err != nil {
		return err
	}
	if cfg.RedisURL == "" {
		return errors.New("AGENTSTATE_REDIS_URL is required: an embedded store would vanish when this command exits")
	}
	log, err := app.NewLogger("warn", cfg.LogFormat, stderr)
	if err != nil {
		return err
	}
	a, err := app.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.Close()
	return forPeople(cmd(ctx, a, args[1:], stdout, stderr))
}

func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			return true
		}
	}
	return false
}

// forPeople drops the op chain from a service error: an operator needs the message (and the
// cause of an internal failure), not "core.Auth.DeleteProject: NOT_FOUND: …".
func forPeople(err error) error {
	var ce *core.Error
	if !errors.As(err, &ce) || err == nil {
		return err
	}
	if ce.Code == core.CodeInternal && ce.Err != nil {
		return fmt.Errorf("%s: %w", ce.Message, errors.Unwrap(ce))
	}
	return errors.New(ce.Message)
}

// subcommand parses a subcommand's own flags; -h prints its flags and exits 0.
func subcommand(name string, args []string, stdout, stderr io.Writer, define func(fs *flag.FlagSet)) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	define(fs)
	return cli.Parse(fs, args, "usage: admin "+name+" [flags]", stdout, stderr)
}

func createProject(ctx context.Context, a *app.App, args []string, stdout, stderr io.Writer) error {
	var name, id string
	if err := subcommand("create-project", args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&name, "name", "", "project name (required)")
		fs.StringVar(&id, "id", "", "project id (default: generated)")
	}); err != nil {
		return err
	}
	if name == "" {
		return cli.Usage("create-project needs -name")
	}
	p, err := a.Auth.CreateProject(ctx, core.CreateProjectRequest{ID: id, Name: name})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "created project %s (%q); its full-access API key is shown once:\n", p.Project.ID, name)
	_, err = fmt.Fprintln(stdout, p.APIKey.Key)
	return err
}

// listProjects prints a table (ID, CREATED in UTC, RETENTION, NAME), or the projects as JSON.
func listProjects(ctx context.Context, a *app.App, args []string, stdout, stderr io.Writer) error {
	var asJSON bool
	if err := subcommand("list-projects", args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&asJSON, "json", false, "print a JSON array instead of a table")
	}); err != nil {
		return err
	}
	l, err := a.Auth.ListProjects(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		projects := l.Data
		if projects == nil {
			projects = []core.Project{}
		}
		return enc.Encode(projects)
	}
	if len(l.Data) == 0 {
		fmt.Fprintln(stderr, "no projects yet: create one with `admin create-project -name NAME`")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED (UTC)\tRETENTION\tNAME")
	for _, p := range l.Data {
		retention := "-"
		if p.RetentionDays != nil {
			retention = fmt.Sprintf("%d days", *p.RetentionDays)
		}
		created := time.UnixMilli(p.CreatedAt).UTC().Format("2006-01-02 15:04:05")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.ID, created, retention, p.Name)
	}
	return tw.Flush()
}

func deleteProject(ctx context.Context, a *app.App, args []string, stdout, stderr io.Writer) error {
	var id string
	if err := subcommand("delete-project", args, stdout, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&id, "id", "", "project id (required)")
	}); err != nil {
		return err
	}
	if id == "" {
		return cli.Usage("delete-project needs -id")
	}
	if err := a.Auth.DeleteProject(ctx, id); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "deleted project %s with every key, token and record it had\n", id)
	return nil
}
