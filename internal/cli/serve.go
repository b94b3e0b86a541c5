package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

func cmdServe(ctx context.Context, env *Env, args []string) error {
	fs := newFlags("serve", env)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	cfg := loadConfig(env)
	pool, err := openAppPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return listenAndServe(ctx, env, cfg, pool, nil)
}

// openAppPool connects the runtime pool and refuses configurations that would
// make row-level security meaningless or the schema stale.
func openAppPool(ctx context.Context, dbURL string) (*pgxpool.Pool, error) {
	if dbURL == "" {
		return nil, errors.New("DATABASE_URL is not set (the runtime connection, as dbchat_app)")
	}
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := checkRuntime(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// checkRuntime verifies the runtime role and the schema before serving.
func checkRuntime(ctx context.Context, pool *pgxpool.Pool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(ctx); err != nil {
		c := pool.Config().ConnConfig
		var pg *pgconn.PgError
		if errors.As(err, &pg) {
			return fmt.Errorf("the database at %s:%d refused the connection (DATABASE_URL): %s", c.Host, c.Port, pg.Message)
		}
		return fmt.Errorf("cannot reach the database at %s:%d (DATABASE_URL): %w", c.Host, c.Port, err)
	}
	if err := checkRuntimeRole(ctx, pool); err != nil {
		return err
	}
	var hasVector bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'vector')`).Scan(&hasVector); err != nil {
		return err
	}
	if !hasVector {
		return errors.New("the vector extension is missing in this database: install pgvector (`make pgvector`), then run `dbchat migrate`")
	}
	return checkMigrated(ctx, pool)
}

// checkRuntimeRole refuses a DATABASE_URL login that is not the runtime
// role. The login must hold dbchat_app's rights (be dbchat_app, or inherit
// it), and must not be able to become anything more: no SUPERUSER or
// BYPASSRLS or CREATEROLE of its own (CREATEROLE can grant itself any
// non-superuser role), no membership, direct or through other roles, in
// another dbchat role (dbchat_owner owns the tables, dbchat_operator bypasses
// RLS, dbchat_provisioner creates roles, dbchat_query, dbchat_sandbox and
// dbchat_auditor lack the runtime's rights) or in any
// role with SUPERUSER, BYPASSRLS or CREATEROLE (SET ROLE would reach it), and
// it owns no relation. Without this check a wrong login starts and fails every request
// (dbchat_auditor), starts with the power to bypass isolation (a member of
// dbchat_owner), or is reported as "not migrated" (dbchat_query).
func checkRuntimeRole(ctx context.Context, pool *pgxpool.Pool) error {
	var (
		user, queryProblem                string
		super, bypass, createRole, hasApp bool
		reachable                         []string
		owned                             int
	)
	if err := pool.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil {
		return fmt.Errorf("check the runtime role: %w", err)
	}
	err := pool.QueryRow(ctx, `
		SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole,
		       pg_has_role(r.oid, $1::name, 'USAGE'),
		       ARRAY(SELECT g.rolname || CASE WHEN g.rolsuper THEN ' (SUPERUSER)' WHEN g.rolbypassrls THEN ' (BYPASSRLS)'
		                                      WHEN g.rolcreaterole THEN ' (CREATEROLE)' ELSE '' END
		             FROM pg_roles g
		             WHERE g.oid <> r.oid AND pg_has_role(r.oid, g.oid, 'MEMBER')
		               AND (g.rolname = ANY ($2::text[]) OR g.rolsuper OR g.rolbypassrls OR g.rolcreaterole)
		             ORDER BY g.rolname),
		       (SELECT count(*) FROM pg_class c WHERE c.relowner = r.oid),
		       coalesce((SELECT concat_ws(', ', CASE WHEN q.rolsuper THEN q.rolname || ' has SUPERUSER' END,
		                                        CASE WHEN q.rolbypassrls THEN q.rolname || ' has BYPASSRLS' END)
		                 FROM pg_roles q WHERE q.rolname = $3), '')
		FROM pg_roles r WHERE r.rolname = current_user`,
		migrate.AppRole, []string{migrate.OwnerRole, migrate.OperatorRole, migrate.QueryRole, migrate.AuditorRole,
			migrate.SandboxRole, migrate.ProvisionerRole}, migrate.QueryRole,
	).Scan(&user, &super, &bypass, &createRole, &hasApp, &reachable, &owned, &queryProblem)
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "42501" {
		// Not even the role catalog: dbchat_query, which reads no catalog.
		return fmt.Errorf("refusing to start: DATABASE_URL logs in as %s, which is not a safe runtime role: %s is not %s and may not even read pg_roles (connect as %s; see docs/SECURITY.md)",
			user, user, migrate.AppRole, migrate.AppRole)
	}
	if err != nil {
		return fmt.Errorf("check the runtime role: %w", err)
	}
	var bad []string
	switch {
	case super:
		bad = append(bad, user+" has SUPERUSER")
	case bypass:
		bad = append(bad, user+" has BYPASSRLS")
	case createRole:
		bad = append(bad, user+" has CREATEROLE") // it could grant itself dbchat_operator
	}
	if !super {
		if len(reachable) > 0 {
			bad = append(bad, fmt.Sprintf("%s is a member of %s (and could SET ROLE to it)", user, strings.Join(reachable, ", ")))
		}
		if !hasApp {
			bad = append(bad, fmt.Sprintf("%s is not %s and does not inherit its privileges", user, migrate.AppRole))
		}
	}
	if owned > 0 {
		bad = append(bad, fmt.Sprintf("%s owns %d relations", user, owned))
	}
	if queryProblem != "" {
		bad = append(bad, queryProblem)
	}
	if len(bad) > 0 {
		return fmt.Errorf("refusing to start: DATABASE_URL logs in as %s, which is not a safe runtime role: %s (connect as %s; see docs/SECURITY.md)",
			user, strings.Join(bad, "; "), migrate.AppRole)
	}
	return nil
}

func checkMigrated(ctx context.Context, pool *pgxpool.Pool) error {
	want, err := migrate.Latest()
	if err != nil {
		return err
	}
	var have int64
	err = pool.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM `+migrate.VersionTable+` WHERE is_applied`).Scan(&have)
	if err != nil || have < want {
		return fmt.Errorf("database is not migrated (at %d, need %d): run `dbchat migrate`", have, want)
	}
	return nil
}

// listenAndServe serves until ctx ends, then drains in-flight requests.
// ready, if not nil, receives the bound address (tests listen on :0).
func listenAndServe(ctx context.Context, env *Env, cfg config, pool *pgxpool.Pool, ready func(addr string)) error {
	log := slog.New(slog.NewJSONHandler(env.Stderr, nil))
	db := tenant.New(pool)
	scfg := serverConfig(env)
	emb, err := embed.FromEnv(ctx, env.Getenv)
	if err != nil {
		return err
	}
	scfg.Embedder = emb
	if cfg.QueryDatabaseURL != "" {
		box, err := tenant.NewSandbox(ctx, cfg.QueryDatabaseURL, 8)
		if err != nil {
			return fmt.Errorf("DBCHAT_QUERY_DATABASE_URL: %w", err)
		}
		defer box.Close()
		scfg.SQL = sandbox.New(db, box)
		gen, err := generate.FromEnv(ctx, env.Getenv)
		if err != nil {
			return err
		}
		store := &nlsql.Store{DB: db, Embedder: emb, QuestionWriter: func(ctx context.Context, sql string) (string, error) {
			return gen.Question(ctx, sql, generate.Input{})
		}}
		scfg.Ask = &ask.Service{DB: db, SQL: scfg.SQL, Embedder: emb, Generator: gen, Store: store}
		log.Info("question answering ready", slog.String("generator", gen.Name()), slog.String("embedder", emb.Name()))
	} else {
		log.Warn("DBCHAT_QUERY_DATABASE_URL is not set: POST /v1/sql and /v1/ask answer 503")
	}
	api := server.New(db, log, scfg)
	servers := []*http.Server{{Handler: api, ReadHeaderTimeout: 10 * time.Second}}
	listeners := []net.Listener{}
	defer func() {
		for _, ln := range listeners {
			ln.Close() // a no-op once Serve has taken it over
		}
	}()
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen on %s (DBCHAT_METRICS_ADDR): %w", cfg.MetricsAddr, err)
		}
		listeners = append(listeners, mln)
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", api.MetricsHandler())
		servers = append(servers, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second})
		fmt.Fprintf(env.Stdout, "dbchat: metrics on http://%s/metrics\n", mln.Addr())
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s (DBCHAT_ADDR): %w", cfg.Addr, err)
	}
	listeners = append([]net.Listener{ln}, listeners...)
	fmt.Fprintf(env.Stdout, "dbchat: listening on http://%s\n", ln.Addr())
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { errc <- srv.Serve(listeners[i]) }()
	}
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.Shutdown(shutdownCtx))
	}
	return errors.Join(append([]error{serveErr}, errs...)...)
}

// serverConfig reads the HTTP server's settings from the environment.
func serverConfig(env *Env) server.Config {
	cfg := server.Config{AdminToken: env.Getenv("DBCHAT_ADMIN_TOKEN")}
	if n, err := strconv.ParseInt(env.Getenv("DBCHAT_MAX_IMPORT_BYTES"), 10, 64); err == nil {
		cfg.MaxImportBytes = n
	}
	return cfg
}
