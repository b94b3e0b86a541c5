package dbtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/pgcluster"
)

// Standby is a test database as seen on the test cluster's hot standby: a
// physical copy of the whole cluster, so the same database, roles and
// passwords, read-only.
type Standby struct {
	AdminURL string // the superuser on the standby's copy of the database
	AppURL   string // dbchat_app there (reads the replay position)
	QueryURL string // dbchat_query there (the SQL sandbox's role)
	Port     int    // the standby's port on 127.0.0.1

	primaryAdmin string
}

// standbyAddr is the test cluster's standby, started at most once per test
// process.
var standbyAddr struct {
	sync.Mutex
	port int
}

// Standby returns d on the test cluster's hot standby, once the standby
// has replayed everything written so far (so d, migrated, is there). The
// standby is TEST_STANDBY_PORT's, or else the one of the private cluster in
// TEST_CLUSTER_DIR (`dbchat cluster exec` sets it, and stops the standby with
// the cluster), started on first use.
func (d *DB) Standby(t testing.TB) *Standby {
	t.Helper()
	port, err := standbyPort(t)
	if err != nil {
		t.Fatalf("dbtest: standby: %v", err)
	}
	admin := AdminURL(t)
	s := &Standby{Port: port, primaryAdmin: d.AdminURL,
		AdminURL: onPort(withDatabase(admin, d.Name, "", ""), port),
		AppURL:   onPort(withDatabase(admin, d.Name, migrate.AppRole, AppPassword(admin)), port),
		QueryURL: onPort(withDatabase(admin, d.Name, migrate.QueryRole, AppPassword(admin)), port),
	}
	s.CatchUp(t)
	return s
}

// CatchUp waits until the standby has replayed everything the primary has
// written so far.
func (s *Standby) CatchUp(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	primary, err := pgx.Connect(ctx, s.primaryAdmin)
	if err != nil {
		t.Fatalf("dbtest: primary: %v", err)
	}
	defer primary.Close(context.Background())
	var lsn string
	if err := primary.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		t.Fatalf("dbtest: primary: %v", err)
	}
	// The standby's "postgres" database is always there; the test's may
	// not be replayed yet.
	standby, err := pgx.Connect(ctx, withDatabase(s.AdminURL, "postgres", "", ""))
	if err != nil {
		t.Fatalf("dbtest: standby: %v", err)
	}
	defer standby.Close(context.Background())
	for {
		var done bool
		if err := standby.QueryRow(ctx, `SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)`, lsn).Scan(&done); err != nil {
			t.Fatalf("dbtest: standby: %v", err)
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("dbtest: the standby did not replay the primary's WAL up to %s", lsn)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func standbyPort(t testing.TB) (int, error) {
	standbyAddr.Lock()
	defer standbyAddr.Unlock()
	if standbyAddr.port != 0 {
		return standbyAddr.port, nil
	}
	if p := os.Getenv("TEST_STANDBY_PORT"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return 0, fmt.Errorf("TEST_STANDBY_PORT=%q: %v", p, err)
		}
		standbyAddr.port = n
		return n, nil
	}
	dir := os.Getenv("TEST_CLUSTER_DIR")
	if dir == "" {
		// TEST_DATABASE_URL is someone's own server: we cannot give it a
		// standby.
		t.Skip("no hot standby: run under `dbchat cluster exec` (make test), or set TEST_STANDBY_PORT to a standby of TEST_DATABASE_URL's server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The cluster is running (cluster exec started it): this reuses it.
	c, err := pgcluster.EnsureWith(ctx, dir, io.Discard, pgcluster.Options{Fast: true})
	if err != nil {
		return 0, err
	}
	s, err := c.EnsureStandby(ctx)
	if err != nil {
		return 0, err
	}
	standbyAddr.port = s.Port
	return s.Port, nil
}

// onPort returns connURL pointing at port on the same host.
func onPort(connURL string, port int) string {
	u, err := url.Parse(connURL)
	if err != nil {
		panic(fmt.Sprintf("dbtest: TEST_DATABASE_URL must be a postgres:// URL: %v", err))
	}
	u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
	return u.String()
}
