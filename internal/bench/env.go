package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/migrate"
)

// Env is what a part needs: the configuration, the machine, and helpers to
// create benchmark databases and pools.
type Env struct {
	cfg     Config
	machine machine
	exe     string // this binary, re-executed for the load generator and the server
	dbs     []string
	conns   []*pgx.Conn
}

func newEnv(ctx context.Context, cfg Config) (*Env, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, err
	}
	e := &Env{cfg: cfg, exe: exe}
	if e.machine, err = probeMachine(ctx, cfg.AdminURL); err != nil {
		return nil, fmt.Errorf("probe the database (TEST_DATABASE_URL): %w", err)
	}
	return e, nil
}

func (e *Env) close() {
	for _, c := range e.conns {
		c.Close(context.Background())
	}
	if e.cfg.Keep {
		return
	}
	for _, name := range e.dbs {
		e.dropDatabase(name)
	}
}

func (e *Env) logf(format string, args ...any) {
	fmt.Fprintf(e.cfg.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// stamp is the line under each section heading: when, how, on what.
func (e *Env) stamp(took time.Duration) string {
	return fmt.Sprintf("Measured %s with `%s` (scale %s, %d runs per figure, part took %s) on %s; load average %s at the end; commit %s.",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), e.cfg.Command, e.cfg.Scale, e.cfg.Runs,
		took.Round(time.Second), e.machine.oneLine(), loadAverage(), e.machine.Commit)
}

// loadAverage is the 1, 5 and 15 minute load average: a machine busy with
// other work shows up as spread.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// path returns a file name in the scratch directory.
func (e *Env) path(name string) string { return filepath.Join(e.cfg.WorkDir, name) }

// benchDB is a freshly migrated database for one part.
type benchDB struct {
	Name     string
	AdminURL string // superuser
	AppURL   string // dbchat_app: the server's runtime role, subject to RLS
	QueryURL string // dbchat_query: the SQL sandbox's role
}

// appPassword matches internal/dbtest's derivation, so that the benchmarks
// and the tests can share a cluster without resetting each other's role
// passwords (roles are cluster-wide).
func appPassword(adminURL string) string {
	sum := sha256.Sum256([]byte("dbchat-test-app:" + adminURL))
	return hex.EncodeToString(sum[:16])
}

// newDatabase (re)creates dbchat_bench_<suffix> and applies the migrations
// the way `dbchat migrate` does. It is dropped when the run ends.
func (e *Env) newDatabase(ctx context.Context, suffix string) (*benchDB, error) {
	name := "dbchat_bench_" + suffix
	e.dropDatabase(name)
	pw := appPassword(e.cfg.AdminURL)
	d := &benchDB{
		Name:     name,
		AdminURL: withDatabase(e.cfg.AdminURL, name, "", ""),
		AppURL:   withDatabase(e.cfg.AdminURL, name, migrate.AppRole, pw),
		QueryURL: withDatabase(e.cfg.AdminURL, name, migrate.QueryRole, pw),
	}
	err := migrate.Run(ctx, migrate.Options{AdminURL: d.AdminURL,
		Passwords: map[string]string{migrate.AppRole: pw, migrate.QueryRole: pw}})
	if err != nil {
		return nil, fmt.Errorf("migrate %s: %w", name, err)
	}
	// The superuser's sessions find the vector type and operators where the
	// platform roles do (migrate keeps the extension out of public).
	if err := e.exec(ctx, "postgres", "ALTER ROLE CURRENT_USER IN DATABASE "+pgx.Identifier{name}.Sanitize()+
		" SET search_path = \"$user\", public, "+migrate.ExtensionSchema); err != nil {
		return nil, err
	}
	e.dbs = append(e.dbs, name)
	return d, nil
}

// open is every part's setup: a fresh database and a superuser connection
// to it, closed when the run ends.
func (e *Env) open(ctx context.Context, suffix string) (*benchDB, *pgx.Conn, error) {
	d, err := e.newDatabase(ctx, suffix)
	if err != nil {
		return nil, nil, err
	}
	admin, err := pgx.Connect(ctx, d.AdminURL)
	if err == nil {
		e.conns = append(e.conns, admin)
	}
	return d, admin, err
}

func (e *Env) dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = e.exec(ctx, "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// exec runs one statement as the superuser in database db.
func (e *Env) exec(ctx context.Context, db, sql string) error {
	conn, err := pgx.Connect(ctx, withDatabase(e.cfg.AdminURL, db, "", ""))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns connURL with its database (and, if user is set, its
// credentials) replaced.
func withDatabase(connURL, dbName, user, password string) string {
	u, err := url.Parse(connURL)
	if err != nil {
		return connURL
	}
	u.Path = "/" + dbName
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

// countingConn counts Write calls on a connection to PostgreSQL. pgx flushes
// everything it has queued (a whole pipeline, up to its Sync) in one Write
// and then waits for the answer, so writes are round trips (the method of
// internal/server/roundtrip_test.go).
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// openPool opens a pool on connURL; maxConns 0 keeps pgxpool's default (as
// `dbchat serve` does). A non-nil writes counts the pool's round trips; a
// tracer sees its statements.
func openPool(ctx context.Context, connURL string, maxConns int32, writes *atomic.Int64, tracer ...pgx.QueryTracer) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(connURL)
	if err != nil {
		return nil, err
	}
	if len(tracer) > 0 {
		cfg.ConnConfig.Tracer = tracer[0]
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	if writes != nil {
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return countingConn{Conn: conn, writes: writes}, err
		}
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

// checkpoint flushes dirty buffers so a timed write does not pay for the
// previous one's.
func checkpoint(ctx context.Context, conn *pgx.Conn) error {
	_, err := conn.Exec(ctx, "CHECKPOINT")
	return err
}
