package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/pgcluster"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// crashRecoveryBound is the promise: once PostgreSQL accepts
// connections again, the same server answers within this, by itself.
const crashRecoveryBound = 5 * time.Second

// crashEnv is a PostgreSQL cluster of the test's own (so that killing it
// costs no other test its database), migrated, with the whole service over
// it: runtime pool, SQL sandbox, the offline NL→SQL pipeline and a real
// HTTP server. Its superuser pool watches and locks; kill and restart hurt.
type crashEnv struct {
	*rowsEnv
	t       *testing.T
	dir     string
	cluster *pgcluster.Cluster
	dataDir string
	pool    *pgxpool.Pool
	box     *tenant.Sandbox
	admin   *pgxpool.Pool
	log     *lockedBuffer // the server's log (WARN and above)
	client  *http.Client  // for requests in flight: a hang is an error, not a stuck test
}

// lockedBuffer is a bytes.Buffer safe for the server's handlers to log into.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newCrashEnv(t *testing.T) *crashEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster of its own")
	}
	ctx := context.Background()
	var pglog strings.Builder
	e := &crashEnv{t: t, dir: t.TempDir(), log: &lockedBuffer{}, client: &http.Client{Timeout: 20 * time.Second}}
	c, err := pgcluster.EnsureWith(ctx, e.dir, &pglog, pgcluster.Options{Fast: true})
	require.NoError(t, err, "%s", &pglog)
	e.cluster = c
	t.Cleanup(func() {
		_ = c.Stop(context.Background())
		// pgcluster keeps the data directory outside dir when the postgres
		// OS user cannot reach dir (running as root).
		if base := filepath.Dir(e.dataDir); e.dataDir != "" && !strings.HasPrefix(e.dataDir, e.dir) &&
			strings.HasPrefix(filepath.Base(base), "dbchat-") {
			_ = os.RemoveAll(base)
		}
	})
	const password = "crash-test-roles"
	require.NoError(t, migrate.Run(ctx, migrate.Options{AdminURL: c.SuperuserURL("dbchat"),
		Passwords: map[string]string{migrate.AppRole: password, migrate.QueryRole: password}}))
	roleURL := func(role string) string {
		u, err := url.Parse(c.URL(role, "dbchat"))
		require.NoError(t, err)
		u.User = url.UserPassword(role, password)
		return u.String()
	}

	e.admin, err = pgxpool.New(ctx, c.SuperuserURL("dbchat"))
	require.NoError(t, err)
	t.Cleanup(e.admin.Close)
	require.NoError(t, e.admin.QueryRow(ctx, `SHOW data_directory`).Scan(&e.dataDir))

	cfg, err := pgxpool.ParseConfig(roleURL(migrate.AppRole))
	require.NoError(t, err)
	cfg.MaxConns = 8
	// The cluster runs with synchronous_commit off (Fast); the service's
	// sessions use PostgreSQL's default, so an acknowledged write survives
	// a killed server as it would in production.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	e.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(e.pool.Close)
	db := tenant.New(e.pool)
	db.SetAcquireTimeout(5 * time.Second)
	e.box, err = tenant.NewSandbox(ctx, roleURL(migrate.QueryRole), 4)
	require.NoError(t, err)
	t.Cleanup(e.box.Close)
	sql := sandbox.New(db, e.box)
	asker := ask.New(db, sql, &nlsql.Store{DB: db, Embedder: embed.NewLocal()}, generate.NewOffline())
	// Thousands of 503s are logged while the database is down: kept, and
	// shown (the last of them) only if the test fails.
	logger := slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelWarn}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log (tail):\n%s", pgbTail(e.log.String(), 40))
		}
	})
	srv := httptest.NewServer(server.New(db, logger, server.Config{SQL: sql, Ask: asker}))
	t.Cleanup(srv.Close)
	e.rowsEnv = &rowsEnv{db: db, url: srv.URL}
	return e
}

// send is one request that may run while the database dies: errors are
// returned, not asserted (it runs off the test's goroutine), and the
// client gives up after 20 s, so a request that hangs shows as an error.
func (e *crashEnv) send(method, path, key, contentType, body string) (int, string, error) {
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// inFlight sends a request in the background; its outcome arrives on the
// channel.
func (e *crashEnv) inFlight(method, path, key, contentType, body string) <-chan crashAnswer {
	out := make(chan crashAnswer, 1)
	go func() {
		status, body, err := e.send(method, path, key, contentType, body)
		out <- crashAnswer{what: method + " " + path, status: status, body: body, err: err}
	}()
	return out
}

type crashAnswer struct {
	what, body string
	status     int
	err        error
}

// requireUnavailable checks that an answer is 503 unavailable: not a 500,
// not a hang, not a dropped connection.
func requireUnavailable(t *testing.T, a crashAnswer) {
	t.Helper()
	require.NoError(t, a.err, a.what)
	require.Equal(t, http.StatusServiceUnavailable, a.status, "%s: %s", a.what, a.body)
	require.Equal(t, "unavailable", errorCode(t, a.body), a.what)
}

// lockWaiters counts backends of the service's roles waiting on a lock
// while running a statement that matches like.
func (e *crashEnv) lockWaiters(like string) int {
	e.t.Helper()
	var n int
	require.NoError(e.t, e.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = 'dbchat' AND usename IN ('dbchat_app', 'dbchat_query') AND wait_event_type = 'Lock' AND query ILIKE $1`,
		like).Scan(&n))
	return n
}

// kill sends SIGKILL to the postmaster, as a crash would, and waits until
// the port stops answering. Its backends exit when they notice.
func (e *crashEnv) kill() {
	e.t.Helper()
	pidFile, err := os.ReadFile(filepath.Join(e.dataDir, "postmaster.pid"))
	require.NoError(e.t, err)
	pid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	require.NoError(e.t, err)
	require.NoError(e.t, syscall.Kill(pid, syscall.SIGKILL))
	waitFor(e.t, "the port to close", func() bool {
		conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(e.cluster.Port)))
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
}

// requireDown checks what clients see while PostgreSQL is down: /readyz and
// an authenticated request answer 503 unavailable.
func (e *crashEnv) requireDown(key string) {
	e.t.Helper()
	for _, path := range []string{"/readyz", "/v1/me"} {
		status, body, err := e.send(http.MethodGet, path, key, "", "")
		requireUnavailable(e.t, crashAnswer{what: "GET " + path + " while down", status: status, body: body, err: err})
	}
}

// restart starts the cluster again (same port; orphaned backends may hold
// the old shared memory for a moment, so the start is retried) and
// requires the same server to answer /readyz and key's GET /v1/me with 200
// within crashRecoveryBound of the cluster accepting connections.
func (e *crashEnv) restart(key string) {
	e.t.Helper()
	for attempt := 0; ; attempt++ {
		_, err := pgcluster.EnsureWith(context.Background(), e.dir, io.Discard, pgcluster.Options{Fast: true})
		if err == nil {
			break
		}
		if attempt == 300 {
			e.t.Fatalf("PostgreSQL did not start again: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	started := time.Now()
	for {
		ready, _, _ := e.send(http.MethodGet, "/readyz", "", "", "")
		me, _, _ := e.send(http.MethodGet, "/v1/me", key, "", "")
		if ready == http.StatusOK && me == http.StatusOK {
			e.t.Logf("recovered %s after PostgreSQL accepted connections again", time.Since(started).Round(time.Millisecond))
			return
		}
		if time.Since(started) > crashRecoveryBound {
			e.t.Fatalf("not recovered %s after PostgreSQL came back: /readyz %d, /v1/me %d", crashRecoveryBound, ready, me)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// requireIdle checks that nothing leaked once every request has answered:
// no runtime connection is still acquired and no sandbox slot of tenants is
// held or queued.
func (e *crashEnv) requireIdle(tenants ...dbtest.Tenant) {
	e.t.Helper()
	waitFor(e.t, "the runtime pool to be idle", func() bool { return e.pool.Stat().AcquiredConns() == 0 })
	for _, tn := range tenants {
		require.Zero(e.t, e.box.Running(tn.ID), "sandbox statements still counted for %s", tn.Slug)
		require.Zero(e.t, e.box.Waiting(tn.ID), "sandbox statements still queued for %s", tn.Slug)
	}
}

// requireLogged checks the operator's view: the failures were logged as
// 503 unavailable with their cause, none as internal, no panic.
func (e *crashEnv) requireLogged() {
	e.t.Helper()
	log := e.log.String()
	require.Contains(e.t, log, "code=unavailable")
	require.NotContains(e.t, log, "code=internal")
	require.NotContains(e.t, log, "panic")
}

// PostgreSQL is killed (SIGKILL on the postmaster) in the middle of a CSV
// import: the import answers 503 unavailable, /readyz and other requests
// answer 503 while the server is down, and once the cluster is started
// again the same HTTP server answers 200 without a restart, within the
// recovery bound, with nothing of the cut import in the table and no
// connection leaked.
func TestPostgresStopsMidImport(t *testing.T) {
	t.Parallel()
	e := newCrashEnv(t)
	tn := dbtest.NewTenant(t, e.db, "Outage")
	table := e.createTable(t, tn.APIKey, `{"name":"outage","columns":[{"name":"id","type":"bigint"}]}`)

	pr, pw := io.Pipe()
	done := make(chan crashAnswer, 1)
	go func() {
		req, err := http.NewRequest(http.MethodPost, e.url+"/v1/tables/"+table+"/rows", pr)
		if err != nil {
			done <- crashAnswer{err: err}
			return
		}
		req.Header.Set("Authorization", "Bearer "+tn.APIKey)
		req.Header.Set("Content-Type", "text/csv")
		a := crashAnswer{what: "POST rows"}
		resp, err := e.client.Do(req)
		if a.err = err; err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			a.status, a.body = resp.StatusCode, string(b)
		}
		done <- a
	}()
	_, err := fmt.Fprint(pw, "id\n1\n2\n3\n")
	require.NoError(t, err)
	// The import's transaction is open, waiting for the next rows.
	waitFor(t, "the import's transaction", func() bool {
		var n int
		require.NoError(t, e.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE usename = 'dbchat_app' AND state = 'idle in transaction'`).Scan(&n))
		return n == 1
	})
	e.kill()
	go func() { // the client goes on sending into a dead import
		for i := 4; i < 1000; i++ {
			if _, err := fmt.Fprintf(pw, "%d\n", i); err != nil {
				return
			}
		}
		pw.Close()
	}()
	requireUnavailable(t, <-done)
	pr.Close()

	// While PostgreSQL is down: 503 unavailable, not 500 and not a hang.
	e.requireDown(tn.APIKey)

	// Started again (same port): the same server recovers by itself.
	e.restart(tn.APIKey)
	require.Zero(t, e.rowCount(t, tn, table), "the cut import left no rows")
	status, body := e.importRows(t, tn.APIKey, table, "text/csv", strings.NewReader("id\n1\n"))
	require.Equal(t, http.StatusOK, status, body)
	e.requireIdle(tn)
	e.requireLogged()
}
