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
	pool, db, err := openAppPool(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	return listenAndServe(ctx, env, cfg, db, nil)
}

// openAppPool connects the runtime pool and refuses configurations that would
// make row-level security meaningless or the schema stale. The DB is the
// pool's, checked by tenant.Open.
func openAppPool(ctx context.Context, dbURL string) (*pgxpool.Pool, *tenant.DB, error) {
	if dbURL == "" {
		return nil, nil, errors.New("DATABASE_URL is not set (the runtime connection, as dbchat_app)")
	}
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	db, err := checkRuntime(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, nil, err
	}
	return pool, db, nil
}

// checkRuntime verifies the runtime role (tenant.Open) and the schema
// before serving.
func checkRuntime(ctx context.Context, pool *pgxpool.Pool) (*tenant.DB, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(ctx); err != nil {
		c := pool.Config().ConnConfig
		var pg *pgconn.PgError
		if errors.As(err, &pg) {
			return nil, fmt.Errorf("the database at %s:%d refused the connection (DATABASE_URL): %s", c.Host, c.Port, pg.Message)
		}
		return nil, fmt.Errorf("cannot reach the database at %s:%d (DATABASE_URL): %w", c.Host, c.Port, err)
	}
	db, err := tenant.Open(ctx, pool)
	var bad *tenant.RoleError
	if errors.As(err, &bad) {
		return nil, fmt.Errorf("refusing to start: DATABASE_URL logs in as %s, which is not a safe runtime role: %s (connect as %s; see docs/SECURITY.md)",
			bad.User, bad.Reason, tenant.AppRole)
	}
	if err != nil {
		return nil, err
	}
	var hasVector bool
	if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_extension WHERE extname = 'vector')`).Scan(&hasVector); err != nil {
		return nil, err
	}
	if !hasVector {
		return nil, errors.New("the vector extension is missing in this database: install pgvector (`make pgvector`), then run `dbchat migrate`")
	}
	return db, checkMigrated(ctx, pool)
}

func checkMigrated(ctx context.Context, pool *pgxpool.Pool) error {
	want, err := migrate.Latest()
	if err != nil {
		return err
	}
	have, err := migrate.Applied(ctx, pool)
	switch {
	case err != nil || have < want:
		return fmt.Errorf("database is not migrated (at %d, need %d): run `dbchat migrate`", have, want)
	case have > want:
		// A newer binary migrated it: this one would run against tables and
		// policies it does not know.
		return fmt.Errorf("database is at migration %d, newer than this dbchat knows (%d): run the newer dbchat", have, want)
	}
	return nil
}

// listenAndServe serves until ctx ends, then drains in-flight requests.
// ready, if not nil, receives the bound address (tests listen on :0).
func listenAndServe(ctx context.Context, env *Env, cfg config, db *tenant.DB, ready func(addr string)) error {
	log := slog.New(slog.NewJSONHandler(env.Stderr, nil))
	scfg, lim, err := serverConfig(env)
	if err != nil {
		return err
	}
	db.SetAcquireTimeout(lim.acquire)
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
		scfg.Ask = ask.New(db, scfg.SQL, store, gen)
		log.Info("question answering ready", slog.String("generator", gen.Name()), slog.String("embedder", emb.Name()))
	} else {
		log.Warn("DBCHAT_QUERY_DATABASE_URL is not set: POST /v1/sql and /v1/ask answer 503")
	}
	api := server.New(db, log, scfg)
	servers := []*http.Server{{Handler: api, ReadHeaderTimeout: lim.readHeader, IdleTimeout: lim.idle}}
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
		servers = append(servers, &http.Server{Handler: mux, ReadHeaderTimeout: lim.readHeader, IdleTimeout: lim.idle})
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

// httpLimits are the HTTP server's and the pool's time limits.
type httpLimits struct {
	readHeader time.Duration // DBCHAT_READ_HEADER_TIMEOUT: a request's headers
	idle       time.Duration // DBCHAT_IDLE_TIMEOUT: a keep-alive connection between requests
	acquire    time.Duration // DBCHAT_POOL_ACQUIRE_TIMEOUT: a wait for a pooled connection
}

// serverConfig reads the HTTP server's settings from the environment; a
// limit that is set must parse (a Go duration such as 30s, or an integer).
func serverConfig(env *Env) (server.Config, httpLimits, error) {
	cfg := server.Config{AdminToken: env.Getenv("DBCHAT_ADMIN_TOKEN")}
	if n, err := strconv.ParseInt(env.Getenv("DBCHAT_MAX_IMPORT_BYTES"), 10, 64); err == nil {
		cfg.MaxImportBytes = n
	}
	lim := httpLimits{readHeader: 10 * time.Second, idle: 2 * time.Minute, acquire: 3 * time.Second}
	var errs []error
	duration := func(name string, dst *time.Duration) {
		if v := strings.TrimSpace(env.Getenv(name)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				errs = append(errs, fmt.Errorf("%s=%q: want a duration such as 30s", name, v))
				return
			}
			*dst = d
		}
	}
	duration("DBCHAT_READ_HEADER_TIMEOUT", &lim.readHeader)
	duration("DBCHAT_IDLE_TIMEOUT", &lim.idle)
	duration("DBCHAT_POOL_ACQUIRE_TIMEOUT", &lim.acquire)
	duration("DBCHAT_BODY_IDLE_TIMEOUT", &cfg.BodyIdleTimeout)
	duration("DBCHAT_IMPORT_STATEMENT_TIMEOUT", &cfg.ImportStatementTimeout)
	count := func(name string, dst *int) {
		if v := strings.TrimSpace(env.Getenv(name)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("%s=%q: want a positive integer", name, v))
			}
			*dst = n
		}
	}
	count("DBCHAT_MAX_CONCURRENT_IMPORTS", &cfg.MaxConcurrentImports)
	count("DBCHAT_MAX_TENANT_IMPORTS", &cfg.MaxTenantImports)
	return cfg, lim, errors.Join(errs...)
}
