package cli

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/nlsql"
)

func cmdMigrate(ctx context.Context, env *Env, args []string) error {
	cfg := loadConfig(env)
	if cfg.AdminDatabaseURL == "" {
		return errors.New("DBCHAT_ADMIN_DATABASE_URL is not set (a privileged connection used only by migrate)")
	}
	if len(args) == 1 && args[0] == "status" {
		return migrateStatus(ctx, env, cfg.AdminDatabaseURL)
	}
	if len(args) > 0 {
		return errUsage
	}
	opts := migrate.Options{AdminURL: cfg.AdminDatabaseURL, Log: env.Stdout, Passwords: loginPasswords(cfg)}
	if pw := env.Getenv("DBCHAT_AUDITOR_PASSWORD"); pw != "" {
		opts.Passwords[migrate.AuditorRole] = pw
	}
	switch v := strings.TrimSpace(env.Getenv("DBCHAT_QUERY_SHARDS")); v {
	case "":
	case "auto":
		opts.TenantsPerLogin = migrate.TenantsPerQueryLogin
	default:
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > migrate.MaxQueryShards {
			return fmt.Errorf("DBCHAT_QUERY_SHARDS=%q: want auto or a whole number from 1 to %d", v, migrate.MaxQueryShards)
		}
		opts.QueryShards = n
	}
	if err := migrate.Run(ctx, opts); err != nil {
		return err
	}
	v, _ := migrate.Latest()
	fmt.Fprintf(env.Stdout, "migrate: database is at version %d\n", v)
	conn, err := pgx.Connect(ctx, cfg.AdminDatabaseURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := printQueryLogins(ctx, env, conn); err != nil {
		return err
	}
	return tuneVectorIndexes(ctx, env, conn)
}

// printQueryLogins says how many query logins the tenants are split
// across (serve opens a sandbox connection per login unless
// DBCHAT_SANDBOX_CONNS says otherwise).
func printQueryLogins(ctx context.Context, env *Env, conn *pgx.Conn) error {
	n, tenants, err := migrate.QueryLogins(ctx, conn)
	if err != nil {
		return err
	}
	logins := "1 query login"
	if n > 1 {
		logins = fmt.Sprintf("%d query logins", n)
	}
	fmt.Fprintf(env.Stdout, "migrate: %d tenants on %s (DBCHAT_QUERY_SHARDS)\n", tenants, logins)
	return nil
}

// tuneVectorIndexes gives each very large tenant its own HNSW index and
// drops those no longer needed (nlsql.TuneVectorIndexes); an admin login
// that cannot count every tenant's rows skips it with a note.
func tuneVectorIndexes(ctx context.Context, env *Env, conn *pgx.Conn) error {
	if _, err := nlsql.TuneVectorIndexes(ctx, conn, nlsql.DefaultVectorIndexTuning, env.Stdout); errors.Is(err, nlsql.ErrCannotCountTenants) {
		fmt.Fprintf(env.Stdout, "migrate: tenant vector indexes not tuned: %v\n", err)
	} else if err != nil {
		return err
	}
	return nil
}

// loginPasswords lets `migrate` set the login roles' passwords from the URLs
// the server uses (DATABASE_URL for dbchat_app, DBCHAT_QUERY_DATABASE_URL for
// dbchat_query), so an operator configures each secret in one place.
func loginPasswords(cfg config) map[string]string {
	pws := map[string]string{}
	for _, raw := range []string{cfg.DatabaseURL, cfg.QueryDatabaseURL} {
		u, err := url.Parse(raw)
		if err != nil || u.User == nil {
			continue
		}
		if name := u.User.Username(); name == migrate.AppRole || name == migrate.QueryRole {
			if pw, ok := u.User.Password(); ok {
				pws[name] = pw
			}
		}
	}
	return pws
}

func migrateStatus(ctx context.Context, env *Env, adminURL string) error {
	st, err := migrate.Status(ctx, adminURL)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "VERSION\tSTATE\tAPPLIED AT\tFILE")
	pending := 0
	for _, s := range st {
		applied := "-"
		if !s.AppliedAt.IsZero() {
			applied = s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		if s.State != "applied" {
			pending++
		}
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", s.Source.Version, s.State, applied, s.Source.Path)
	}
	w.Flush()
	if pending > 0 {
		fmt.Fprintf(env.Stdout, "%d pending: run `dbchat migrate`\n", pending)
	} else {
		fmt.Fprintln(env.Stdout, "all migrations applied")
	}
	return nil
}
