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
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/limits"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/pguuid"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
	usagestats "github.com/dbchat/dbchat/internal/usage"
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
	defer closeWithin(pool.Close, closeGrace)
	return listenAndServe(ctx, env, cfg, db, nil)
}

// closeWithin closes a pool, waiting at most d: pgxpool's Close waits for
// every acquired connection, and a request that did not end at shutdown
// (drain reported it) must not keep the process from exiting.
func closeWithin(closePool func(), d time.Duration) {
	done := make(chan struct{})
	go func() {
		closePool()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
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
	pcfg.AfterConnect = pguuid.AfterConnect
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
	if err := db.ShareFromEnv(); err != nil {
		return err
	}
	// Tenants' rate limits and quotas; DBCHAT_DEFAULT_<NAME> are the
	// defaults of tenants without a value of their own.
	defaults, err := limits.FromEnv(env.Getenv)
	if err != nil {
		return err
	}
	scfg.Limits = limits.New(db, defaults)
	if cfg.AdminDatabaseURL != "" {
		scfg.Export = exportOver(cfg.AdminDatabaseURL)
	}
	emb, err := embed.FromEnv(ctx, env.Getenv)
	if err != nil {
		return err
	}
	scfg.Embedder = emb
	if cfg.QueryDatabaseURL != "" {
		box, replica, err := openSandbox(ctx, env, cfg, db, log)
		if err != nil {
			return err
		}
		defer closeWithin(box.Close, closeGrace)
		scfg.SQL = sandbox.New(db, box)
		if replica {
			scfg.Replica = box
		}
		gen, err := generate.FromEnv(ctx, env.Getenv)
		if err != nil {
			return err
		}
		store := &nlsql.Store{DB: db, Embedder: emb, QuestionWriter: func(ctx context.Context, sql string) (string, error) {
			return gen.Question(ctx, sql, generate.Input{})
		}}
		scfg.Ask = ask.New(db, scfg.SQL, store, gen)
		if canaryURL := strings.TrimSpace(env.Getenv("DBCHAT_CANARY_DATABASE_URL")); canaryURL != "" {
			// An evaluation's leakage canary erases its throwaway tenant on
			// this privileged connection; opt-in, so that serve holds no
			// privileged URL unless the operator gives it one. Without it
			// the canary is skipped.
			scfg.Privileged = func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, canaryURL) }
		}
		log.Info("question answering ready", slog.String("generator", gen.Name()), slog.String("embedder", emb.Name()))
	} else {
		log.Warn("DBCHAT_QUERY_DATABASE_URL is not set: POST /v1/sql and /v1/ask answer 503")
	}
	api := server.New(db, log, scfg)
	// Every request's context descends from base, which outlives a clean
	// drain and is cancelled at the shutdown deadline: the database work of
	// the requests still running then is cancelled with it.
	base, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	handlers := &inflight{}
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{Handler: handlers.wrap(h), ReadHeaderTimeout: lim.readHeader, IdleTimeout: lim.idle,
			BaseContext: func(net.Listener) context.Context { return base }}
	}
	servers := []*http.Server{newServer(api)}
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
		servers = append(servers, newServer(mux))
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
	return errors.Join(serveErr, drain(log, servers, handlers, cancelBase, lim.shutdown))
}

// Shutdown's steps after the deadline: how long cancelled requests have to
// answer (503) before their connections are closed, and how long handlers
// have to return once they are.
const (
	cancelGrace = 2 * time.Second
	closeGrace  = 5 * time.Second
)

// drain stops the servers: they stop accepting at once, and requests in
// flight have until deadline to finish. Past it, the requests still running
// are cancelled (cancel ends their contexts, so their statements stop and
// their transactions roll back), get cancelGrace to answer, and then their
// connections are closed, which also ends a handler blocked reading a body
// that never comes. It returns nil once every handler has returned, so the
// pools can close; an error only if some did not within closeGrace.
func drain(log *slog.Logger, servers []*http.Server, handlers *inflight, cancel context.CancelFunc, deadline time.Duration) error {
	start := time.Now()
	log.Info("shutting down: no longer accepting; draining requests in flight",
		slog.Int("in_flight", handlers.count()), slog.String("deadline", deadline.String()))
	// Shutdown does not wait for a hijacked connection's handler: count them.
	if shutdownAll(servers, deadline) && handlers.wait(time.Until(start.Add(deadline))) {
		log.Info("shutdown: every request finished", slog.String("took", time.Since(start).Round(time.Millisecond).String()))
		return nil
	}
	log.Warn("shutdown deadline passed: cancelling the requests still running (DBCHAT_SHUTDOWN_TIMEOUT)",
		slog.Int("in_flight", handlers.count()), slog.String("deadline", deadline.String()))
	cancel()
	if !shutdownAll(servers, cancelGrace) {
		for _, srv := range servers {
			srv.Close()
		}
	}
	if !handlers.wait(closeGrace) {
		return fmt.Errorf("shutdown: %d requests still running %s after their connections were closed", handlers.count(), closeGrace)
	}
	log.Info("shutdown: the remaining requests were cancelled", slog.String("took", time.Since(start).Round(time.Millisecond).String()))
	return nil
}

// shutdownAll shuts the servers down at once and reports whether every one
// drained within d.
func shutdownAll(servers []*http.Server, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	errs := make(chan error, len(servers))
	for _, srv := range servers {
		go func() { errs <- srv.Shutdown(ctx) }()
	}
	ok := true
	for range servers {
		if err := <-errs; errors.Is(err, context.DeadlineExceeded) {
			ok = false
		}
	}
	return ok
}

// inflight counts the handlers running, so shutdown knows when none is left
// to use a pool (http.Server.Close does not wait for them).
type inflight struct {
	mu sync.Mutex
	n  int
}

func (f *inflight) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.add(1)
		defer f.add(-1)
		h.ServeHTTP(w, r)
	})
}

func (f *inflight) add(d int) {
	f.mu.Lock()
	f.n += d
	f.mu.Unlock()
}

func (f *inflight) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// wait reports whether the count reached zero within d.
func (f *inflight) wait(d time.Duration) bool {
	for end := time.Now().Add(d); f.count() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			return false
		}
	}
	return true
}

// httpLimits are the HTTP server's and the pool's time limits.
type httpLimits struct {
	readHeader time.Duration // DBCHAT_READ_HEADER_TIMEOUT: a request's headers
	idle       time.Duration // DBCHAT_IDLE_TIMEOUT: a keep-alive connection between requests
	acquire    time.Duration // DBCHAT_POOL_ACQUIRE_TIMEOUT: a wait for a pooled connection
	shutdown   time.Duration // DBCHAT_SHUTDOWN_TIMEOUT: requests in flight at SIGTERM finish within it
}

// serverConfig reads the HTTP server's settings from the environment; a
// limit that is set must parse (a Go duration such as 30s, or an integer).
func serverConfig(env *Env) (server.Config, httpLimits, error) {
	cfg := server.Config{AdminToken: env.Getenv("DBCHAT_ADMIN_TOKEN")}
	if n, err := strconv.ParseInt(env.Getenv("DBCHAT_MAX_IMPORT_BYTES"), 10, 64); err == nil {
		cfg.MaxImportBytes = n
	}
	lim := httpLimits{readHeader: 10 * time.Second, idle: 2 * time.Minute, acquire: 3 * time.Second, shutdown: 30 * time.Second}
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
	duration("DBCHAT_SHUTDOWN_TIMEOUT", &lim.shutdown)
	duration("DBCHAT_BODY_IDLE_TIMEOUT", &cfg.BodyIdleTimeout)
	duration("DBCHAT_IMPORT_STATEMENT_TIMEOUT", &cfg.ImportStatementTimeout)
	duration("DBCHAT_SESSION_IDLE_TIMEOUT", &cfg.Sessions.Idle)
	duration("DBCHAT_SESSION_MAX_AGE", &cfg.Sessions.MaxAge)
	switch v := strings.TrimSpace(env.Getenv("DBCHAT_TRUST_FORWARDED_PROTO")); v {
	case "", "false":
	case "true":
		cfg.TrustForwardedProto = true
	default:
		errs = append(errs, fmt.Errorf("DBCHAT_TRUST_FORWARDED_PROTO=%q: want true or false", v))
	}
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
	prices, err := usagestats.ParsePrices(env.Getenv("DBCHAT_LLM_PRICES"))
	cfg.Prices, errs = prices, append(errs, err)
	return cfg, lim, errors.Join(errs...)
}
