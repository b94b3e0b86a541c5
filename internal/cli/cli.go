// Package cli implements the dbchat command: migrate, serve, dev, tenant and
// cluster. Main takes its arguments and streams, so tests run it in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/dbchat/dbchat/internal/apperr"
)

const usage = `usage: dbchat <command> [flags]

commands:
  serve                   run the HTTP API (DATABASE_URL, DBCHAT_ADDR)
  dev                     private local PostgreSQL + migrate + demo tenant + serve
  dev-token --sub S [--claim k=v] [--role member|admin]
                          mint a token of dev's local identity provider (dev only)
  migrate                 create roles, database, extension; apply migrations (DBCHAT_ADMIN_DATABASE_URL)
  migrate status          list migrations and whether each is applied
  tenant create --name N  create a tenant and print its first admin key (--json)
  tenant export --tenant T --out FILE   write one tenant (catalog, data, training, history, users) to a file
  tenant import --in FILE --name N      restore an export into a new tenant with a fresh admin key (--json)
  tenant erase --tenant T --confirm T   erase a tenant and prove it (DBCHAT_ADMIN_DATABASE_URL for all three)
  reembed --tenant T [--model M] [--all]  re-embed a model's training data with DBCHAT_EMBEDDER's embedder
  audit [--probe] [--format text|json|markdown|html] [--out FILE]  isolation lints and report; exit 1 on findings
  cluster exec --dir D -- CMD...
                          run CMD with TEST_DATABASE_URL pointing at a private cluster
`

// errUsage marks command-line mistakes: exit code 2.
var errUsage = errors.New("usage")

// Main runs the dbchat command with the process environment and returns its
// exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return Run(ctx, &Env{Stdout: stdout, Stderr: stderr, Getenv: os.Getenv}, args)
}

// Run is Main with an explicit environment, for tests.
func Run(ctx context.Context, env *Env, args []string) int {
	err := run(ctx, env, args)
	stderr := env.Stderr
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errUsage), errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stderr, usage)
		return 2
	default:
		var ex exitError
		if errors.As(err, &ex) {
			return ex.code
		}
		var ae *apperr.Error
		if errors.As(err, &ae) && ae.Code != apperr.Internal {
			fmt.Fprintf(stderr, "dbchat: %s\n", ae.Message) // client-safe text, without the code prefix
			return 1
		}
		fmt.Fprintf(stderr, "dbchat: %v\n", err)
		return 1
	}
}

// Env is the outside world a command sees.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// exitError carries a child process's exit code through Main.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func run(ctx context.Context, env *Env, args []string) error {
	if len(args) == 0 {
		return errUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return cmdServe(ctx, env, rest)
	case "dev":
		return cmdDev(ctx, env, rest)
	case "dev-token":
		return cmdDevToken(ctx, env, rest)
	case "migrate":
		return cmdMigrate(ctx, env, rest)
	case "tenant":
		return cmdTenant(ctx, env, rest)
	case "cluster":
		return cmdCluster(ctx, env, rest)
	case "reembed":
		return cmdReembed(ctx, env, rest)
	case "audit":
		return cmdAudit(ctx, env, rest)
	case "help", "-h", "--help":
		fmt.Fprint(env.Stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q (try: dbchat help)", cmd)
}

// newFlags makes a FlagSet that reports errors instead of exiting.
func newFlags(name string, env *Env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// config is the operator contract: environment variables only.
type config struct {
	DatabaseURL      string // runtime connection, as dbchat_app
	AdminDatabaseURL string // privileged connection, for migrate only
	QueryDatabaseURL string // the SQL sandbox's login, as dbchat_query
	Addr             string
	// MetricsAddr, when set, is a second listener serving only GET /metrics
	// without a token, for a scraper on a network the API's clients cannot
	// reach; on Addr /metrics needs the operator token.
	MetricsAddr string
}

func loadConfig(env *Env) config {
	c := config{
		DatabaseURL:      strings.TrimSpace(env.Getenv("DATABASE_URL")),
		AdminDatabaseURL: strings.TrimSpace(env.Getenv("DBCHAT_ADMIN_DATABASE_URL")),
		QueryDatabaseURL: strings.TrimSpace(env.Getenv("DBCHAT_QUERY_DATABASE_URL")),
		Addr:             strings.TrimSpace(env.Getenv("DBCHAT_ADDR")),
		MetricsAddr:      strings.TrimSpace(env.Getenv("DBCHAT_METRICS_ADDR")),
	}
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	return c
}
