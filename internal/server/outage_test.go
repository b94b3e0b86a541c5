package server_test

import (
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
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/pgcluster"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// PostgreSQL is killed (SIGKILL on the postmaster) in the middle of a CSV
// import (a private cluster, so no other test loses its database): the import answers 503 unavailable,
// /readyz and other requests answer 503 while the server is down, and once
// the cluster is started again the same HTTP server answers 200 without a
// restart, with nothing of the cut import in the table.
func TestPostgresStopsMidImport(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster of its own")
	}
	ctx := context.Background()
	var pglog strings.Builder
	dir := t.TempDir()
	c, err := pgcluster.EnsureWith(ctx, dir, &pglog, pgcluster.Options{Fast: true})
	require.NoError(t, err, "%s", &pglog)
	var dataDir string // read below; outside dir when the postgres OS user cannot reach dir
	t.Cleanup(func() {
		_ = c.Stop(context.Background())
		if base := filepath.Dir(dataDir); dataDir != "" && !strings.HasPrefix(dataDir, dir) &&
			strings.HasPrefix(filepath.Base(base), "dbchat-") {
			_ = os.RemoveAll(base)
		}
	})
	const password = "outage-test-app"
	require.NoError(t, migrate.Run(ctx, migrate.Options{AdminURL: c.SuperuserURL("dbchat"),
		Passwords: map[string]string{migrate.AppRole: password}}))
	appURL, err := url.Parse(c.URL(migrate.AppRole, "dbchat"))
	require.NoError(t, err)
	appURL.User = url.UserPassword(migrate.AppRole, password)

	pool, err := pgxpool.New(ctx, appURL.String())
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	db := tenant.New(pool)
	db.SetAcquireTimeout(5 * time.Second)
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{}))
	t.Cleanup(srv.Close)
	e := &rowsEnv{db: db, url: srv.URL}
	tn := dbtest.NewTenant(t, db, "Outage")
	table := e.createTable(t, tn.APIKey, `{"name":"outage","columns":[{"name":"id","type":"bigint"}]}`)

	admin, err := pgxpool.New(ctx, c.SuperuserURL("dbchat"))
	require.NoError(t, err)
	pr, pw := io.Pipe()
	done := make(chan [2]any, 1)
	go func() {
		status, body := e.importRows(t, tn.APIKey, table, "text/csv", pr)
		done <- [2]any{status, body}
	}()
	_, err = fmt.Fprint(pw, "id\n1\n2\n3\n")
	require.NoError(t, err)
	waitFor(t, "the import's COPY", func() bool {
		var n int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE usename = 'dbchat_app' AND query ILIKE 'copy%' AND state = 'active'`).Scan(&n))
		return n == 1
	})
	// SIGKILL on the postmaster, as a crash would: its backends exit when
	// they notice, the port stops answering.
	require.NoError(t, admin.QueryRow(ctx, `SHOW data_directory`).Scan(&dataDir))
	admin.Close()
	pidFile, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	waitFor(t, "the backends to go", func() bool {
		conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)))
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	go func() { // the client goes on sending into a dead import
		for i := 4; i < 1000; i++ {
			if _, err := fmt.Fprintf(pw, "%d\n", i); err != nil {
				return
			}
		}
		pw.Close()
	}()
	got := <-done
	status, body := got[0].(int), got[1].(string)
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Equal(t, "unavailable", errorCode(t, body))
	pr.Close()

	// While PostgreSQL is down: 503 unavailable, not 500 and not a hang.
	for _, path := range []string{"/readyz", "/v1/me"} {
		status, body := e.do(t, http.MethodGet, path, tn.APIKey, "", nil)
		require.Equal(t, http.StatusServiceUnavailable, status, "%s: %s", path, body)
		require.Equal(t, "unavailable", errorCode(t, body), path)
	}

	// Started again (same port): the same server recovers by itself.
	// Orphaned backends may hold the old shared memory for a moment, so
	// the start is retried until it succeeds.
	var lastErr string
	waitFor(t, "PostgreSQL to start again", func() bool {
		_, err := pgcluster.EnsureWith(ctx, dir, io.Discard, pgcluster.Options{Fast: true})
		if err != nil && err.Error() != lastErr {
			lastErr = err.Error()
			t.Logf("start again: %v", err)
		}
		return err == nil
	})
	waitFor(t, "readyz after the restart", func() bool {
		status, _ := e.do(t, http.MethodGet, "/readyz", "", "", nil)
		return status == http.StatusOK
	})
	require.Zero(t, e.rowCount(t, tn, table), "the cut import left no rows")
	status, body = e.importRows(t, tn.APIKey, table, "text/csv", strings.NewReader("id\n1\n"))
	require.Equal(t, http.StatusOK, status, body)
}
