// Package dbtest gives each test its own freshly migrated PostgreSQL database,
// cloned from a migrated template so tests can run in parallel. It needs
// TEST_DATABASE_URL: a privileged URL to a test cluster (`make test` starts a
// private one and sets it).
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/db"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/pguuid"
	"github.com/dbchat/dbchat/internal/tenant"
)

// templateLock serialises template creation across test processes.
const templateLock = 0x6462636861740002

// DB is one test's database.
type DB struct {
	Name     string
	AdminURL string // privileged connection to this database
	AppURL   string // dbchat_app login to this database
	QueryURL string // dbchat_query login (the SQL sandbox's role)
}

// AdminURL returns TEST_DATABASE_URL, failing the test when it is unset.
func AdminURL(t testing.TB) string {
	u := os.Getenv("TEST_DATABASE_URL")
	if u == "" {
		if testing.Short() {
			t.Skip("TEST_DATABASE_URL not set (-short)")
		}
		t.Fatal("TEST_DATABASE_URL is not set: run `make test`, or point it at a privileged URL of a test cluster")
	}
	return u
}

// AppPassword is the password tests give dbchat_app and dbchat_query. It is derived from the
// admin URL so that parallel test processes agree on it.
func AppPassword(adminURL string) string {
	sum := sha256.Sum256([]byte("dbchat-test-app:" + adminURL))
	return hex.EncodeToString(sum[:16])
}

// New creates a migrated database for t and drops it when t ends.
func New(t testing.TB) *DB {
	t.Helper()
	ctx := context.Background()
	admin := AdminURL(t)
	tpl, err := ensureTemplate(ctx, admin)
	if err != nil {
		t.Fatalf("dbtest: template: %v", err)
	}
	name := "dbchat_test_" + randomHex(6)
	if err := createFrom(ctx, admin, name, tpl); err != nil {
		t.Fatalf("dbtest: create %s: %v", name, err)
	}
	d := &DB{Name: name, AdminURL: withDatabase(admin, name, "", "")}
	d.AppURL = withDatabase(admin, name, migrate.AppRole, AppPassword(admin))
	d.QueryURL = withDatabase(admin, name, migrate.QueryRole, AppPassword(admin))
	// Database-level grants are not copied from a template; re-running the
	// (idempotent) migration applies them and leaves the schema as it is.
	if err := migrate.Run(ctx, migrate.Options{AdminURL: d.AdminURL, Passwords: passwords(admin)}); err != nil {
		t.Fatalf("dbtest: migrate %s: %v", name, err)
	}
	t.Cleanup(func() { dropDatabase(admin, name) })
	return d
}

// SplitQueryLogins runs migrate with DBCHAT_QUERY_SHARDS=n: the database's
// tenants, existing and new, are split across n query logins (migration
// 00031), which share dbchat_query's password.
func (d *DB) SplitQueryLogins(t testing.TB, n int) {
	t.Helper()
	opts := migrate.Options{AdminURL: d.AdminURL, Passwords: passwords(AdminURL(t)), QueryShards: n}
	if err := migrate.Run(context.Background(), opts); err != nil {
		t.Fatalf("dbtest: split %s's query logins: %v", d.Name, err)
	}
}

// QueryPool opens a dbchat_query pool on the test database, closed at cleanup.
func (d *DB) QueryPool(t testing.TB, maxConns int32) *pgxpool.Pool {
	return d.pool(t, d.QueryURL, maxConns)
}

// AppPool opens a dbchat_app pool on the test database, closed at cleanup.
func (d *DB) AppPool(t testing.TB, maxConns int32) *pgxpool.Pool {
	return d.pool(t, d.AppURL, maxConns)
}

// AdminPool opens a privileged pool on the test database, closed at cleanup.
func (d *DB) AdminPool(t testing.TB) *pgxpool.Pool {
	return d.pool(t, d.AdminURL, 4)
}

// CountingAppPool is a one-connection dbchat_app pool that counts its
// writes to PostgreSQL in writes. pgx flushes everything it has queued (a
// whole pipeline, up to its Sync) in one Write and then waits for the
// answer, so writes = round trips. One connection keeps the measurement on
// a connection whose statement cache is warm.
func (d *DB) CountingAppPool(t testing.TB, writes *atomic.Int64) *pgxpool.Pool {
	t.Helper()
	return d.pool(t, d.AppURL, 1, func(cfg *pgxpool.Config) {
		// pgxpool pings a connection that sat idle for over a second
		// before handing it out; a slow (-race, loaded) run must not count
		// those.
		cfg.ShouldPing = func(context.Context, pgxpool.ShouldPingParams) bool { return false }
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			var dialer net.Dialer
			conn, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{Conn: conn, writes: writes}, nil
		}
	})
}

// CountingTenants is a tenant.DB over a CountingAppPool, with its count of
// round trips.
func (d *DB) CountingTenants(t testing.TB) (*tenant.DB, *atomic.Int64) {
	writes := new(atomic.Int64)
	return tenant.New(d.CountingAppPool(t, writes)), writes
}

// countingConn counts Write calls on a connection to PostgreSQL.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

func (d *DB) pool(t testing.TB, connURL string, maxConns int32, configure ...func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(connURL)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	cfg.AfterConnect = pguuid.AfterConnect // as dbchat serve's pool
	for _, f := range configure {
		f(cfg)
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func passwords(admin string) map[string]string {
	return map[string]string{migrate.AppRole: AppPassword(admin), migrate.QueryRole: AppPassword(admin)}
}

// ensureTemplate migrates a template database named after the migrations'
// content, once per cluster.
func ensureTemplate(ctx context.Context, admin string) (string, error) {
	sum, err := migrationsHash()
	if err != nil {
		return "", err
	}
	name := "dbchat_tpl_" + sum
	conn, err := pgx.Connect(ctx, withDatabase(admin, "postgres", "", ""))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(templateLock)); err != nil {
		return "", err
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1 AND datallowconn)`, name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	if err := migrate.Run(ctx, migrate.Options{AdminURL: withDatabase(admin, name, "", ""), Passwords: passwords(admin)}); err != nil {
		return "", err
	}
	return name, nil
}

// createFrom clones tpl, retrying while a just-closed template connection is
// still going away ("source database is being accessed by other users").
func createFrom(ctx context.Context, admin, name, tpl string) error {
	conn, err := pgx.Connect(ctx, withDatabase(admin, "postgres", "", ""))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	stmt := fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", pgx.Identifier{name}.Sanitize(), pgx.Identifier{tpl}.Sanitize())
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, stmt)
		var pg *pgconn.PgError
		if err == nil || attempt == 50 || !errors.As(err, &pg) || pg.Code != "55006" {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dropDatabase drops a test database and then its tenants' roles, which are
// cluster-wide and would otherwise pile up in the test cluster.
func dropDatabase(admin, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	roles := tenantRoles(ctx, withDatabase(admin, name, "", ""))
	conn, err := pgx.Connect(ctx, withDatabase(admin, "postgres", "", ""))
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return
	}
	for _, r := range roles {
		_, _ = conn.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
	}
}

// tenantRoles lists the roles of the tenants in the database at connURL
// (read as the superuser, so every tenant).
func tenantRoles(ctx context.Context, connURL string) []string {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return nil
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT 't_' || replace(id::text, '-', '') || s FROM dbchat.tenants, (VALUES (''), ('_m')) v (s)`)
	if err != nil {
		return nil
	}
	roles, _ := pgx.CollectRows(rows, pgx.RowTo[string])
	return roles
}

func migrationsHash() (string, error) {
	h := sha256.New()
	// The privileged steps in Go are part of what a template holds.
	fmt.Fprintf(h, "%d\n%s", migrate.PrivilegesRevision, migrate.QueryFunctions)
	err := fs.WalkDir(db.Migrations, ".", func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(db.Migrations, path)
		h.Write([]byte(path))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12], err
}

// withDatabase returns connURL with its database (and, if user is set, its
// credentials) replaced.
func withDatabase(connURL, dbName, user, password string) string {
	u, err := url.Parse(connURL)
	if err != nil {
		panic(fmt.Sprintf("dbtest: TEST_DATABASE_URL must be a postgres:// URL: %v", err))
	}
	u.Path = "/" + dbName
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
