package server_test

// Faults and limits (issue 12): a noisy tenant cannot take the runtime pool
// from a quiet one, and a database that goes away is 503, not 500.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// faultEnv is a test database, a runtime pool of its own size and settings,
// a real HTTP server over it and an admin pool to watch (and hurt) it.
type faultEnv struct {
	*rowsEnv
	d     *dbtest.DB
	pool  *pgxpool.Pool
	admin *pgxpool.Pool
}

func newFaultEnv(t *testing.T, maxConns int32, acquire time.Duration, cfg server.Config, params map[string]string) *faultEnv {
	t.Helper()
	d := dbtest.New(t)
	pcfg, err := pgxpool.ParseConfig(d.AppURL)
	require.NoError(t, err)
	pcfg.MaxConns = maxConns
	for k, v := range params {
		pcfg.ConnConfig.RuntimeParams[k] = v
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	db := tenant.New(pool)
	db.SetAcquireTimeout(acquire)
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), cfg))
	t.Cleanup(srv.Close)
	return &faultEnv{rowsEnv: &rowsEnv{db: db, url: srv.URL}, d: d, pool: pool, admin: d.AdminPool(t)}
}

// appBackends counts this database's dbchat_app backends in state.
func (e *faultEnv) appBackends(t *testing.T, state string) int {
	t.Helper()
	var n int
	require.NoError(t, e.admin.QueryRow(context.Background(),
		`SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = 'dbchat_app' AND state = $2`,
		e.d.Name, state).Scan(&n))
	return n
}

// waitFor polls cond until it holds, failing after a generous bound: the
// tests wait for an outcome, they do not time anything.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 300 {
		if cond() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// errorCode decodes the one error shape's code.
func errorCode(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &e), body)
	return e.Error.Code
}

// stalledUpload opens a raw connection that announces a 100 MB CSV body,
// sends its first bytes and then nothing; the response arrives on the
// returned channel once the server gives up on it.
func stalledUpload(t *testing.T, baseURL, key, table string) <-chan *http.Response {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(baseURL, "http://"))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	_, err = fmt.Fprintf(conn, "POST /v1/tables/%s/rows HTTP/1.1\r\nHost: dbchat\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: text/csv\r\nContent-Length: 100000000\r\n\r\nid,na", table, key)
	require.NoError(t, err)
	out := make(chan *http.Response, 1)
	go func() {
		_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			out <- &http.Response{StatusCode: -1, Status: err.Error(), Body: io.NopCloser(strings.NewReader(""))}
			return
		}
		out <- resp
	}()
	return out
}

// Uploads that stall mid-body: a noisy tenant sends four, a second one
// more. Each tenant's first holds an import slot (and so a pooled
// connection, idle in transaction) until the body idle timeout cuts it with
// 408; the noisy tenant's other three wait for its one slot (a tenant's
// share with a pool of 4) and get 503 overloaded. Meanwhile a quiet tenant's requests and /readyz answer, and its
// import is refused with 503 overloaded and Retry-After once the import
// slots (half the pool) stay taken. At the end no backend is left idle in
// transaction, nothing was imported, and imports work again.
func TestStalledUploadsLeaveThePoolToOthers(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, 4, time.Second, server.Config{BodyIdleTimeout: 4 * time.Second}, nil)
	noisy := dbtest.NewTenant(t, e.db, "Noisy")
	second := dbtest.NewTenant(t, e.db, "Second")
	quiet := dbtest.NewTenant(t, e.db, "Quiet")
	const spec = `{"name":"uploads","columns":[{"name":"id","type":"bigint"},{"name":"name","type":"text"}]}`
	noisyTable, secondTable, quietTable := e.createTable(t, noisy.APIKey, spec), e.createTable(t, second.APIKey, spec), e.createTable(t, quiet.APIKey, spec)

	var uploads []<-chan *http.Response
	for range 4 {
		uploads = append(uploads, stalledUpload(t, e.url, noisy.APIKey, noisyTable))
	}
	waitFor(t, "the noisy tenant's stalled import", func() bool { return e.appBackends(t, "idle in transaction") == 1 })
	uploads = append(uploads, stalledUpload(t, e.url, second.APIKey, secondTable))
	waitFor(t, "both tenants' stalled imports", func() bool { return e.appBackends(t, "idle in transaction") == 2 })

	for _, path := range []string{"/v1/me", "/v1/tables", "/readyz"} {
		status, body := e.do(t, http.MethodGet, path, quiet.APIKey, "", nil)
		require.Equal(t, http.StatusOK, status, "%s while the other tenants' uploads stall: %s", path, body)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/v1/tables/"+quietTable+"/rows", strings.NewReader("id,name\n1,a\n"))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+quiet.APIKey)
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "both import slots are taken: %s", body)
	require.Equal(t, "overloaded", errorCode(t, string(body)))
	require.Equal(t, "1", resp.Header.Get("Retry-After"))
	require.Equal(t, 2, e.appBackends(t, "idle in transaction"), "the quiet tenant was served while the uploads were still stuck")

	statuses := map[int]int{}
	for _, ch := range uploads {
		resp := <-ch
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		statuses[resp.StatusCode]++
		switch resp.StatusCode {
		case http.StatusServiceUnavailable:
			require.Equal(t, "overloaded", errorCode(t, string(body)), string(body))
			require.Equal(t, "1", resp.Header.Get("Retry-After"))
		case http.StatusRequestTimeout:
			require.Equal(t, "request_timeout", errorCode(t, string(body)), string(body))
		default:
			t.Fatalf("stalled upload answered %s: %s", resp.Status, body)
		}
	}
	require.Equal(t, map[int]int{http.StatusServiceUnavailable: 3, http.StatusRequestTimeout: 2}, statuses)
	require.Zero(t, e.appBackends(t, "idle in transaction"), "a cut upload leaves no open transaction")
	require.Zero(t, e.rowCount(t, noisy, noisyTable))
	require.Zero(t, e.rowCount(t, second, secondTable))

	// The slots are free again: imports work.
	for _, tn := range []struct {
		key, table string
	}{{noisy.APIKey, noisyTable}, {quiet.APIKey, quietTable}} {
		status, body := e.importRows(t, tn.key, tn.table, "text/csv", strings.NewReader("id,name\n1,a\n"))
		require.Equal(t, http.StatusOK, status, body)
	}
}

// A body that keeps flowing is never cut by the body idle timeout, however
// long the whole upload takes, nor by dbchat_app's statement_timeout.
func TestSlowButSteadyUploadIsNotCut(t *testing.T) {
	t.Parallel()
	// The session's statement_timeout (1s) is shorter than the upload
	// (about 2s); the import lifts it for its transaction (SET LOCAL), and
	// inserts the rows in batches as they come, each a short statement.
	e := newFaultEnv(t, 4, time.Second, server.Config{BodyIdleTimeout: 500 * time.Millisecond}, map[string]string{"statement_timeout": "1s"})
	tn := dbtest.NewTenant(t, e.db, "Steady")
	table := e.createTable(t, tn.APIKey, `{"name":"steady","columns":[{"name":"id","type":"bigint"}]}`)
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprint(pw, "id\n")
		// Ten rows, each after a pause shorter than the idle timeout: the
		// upload as a whole outlasts it several times.
		for i := range 10 {
			time.Sleep(200 * time.Millisecond)
			fmt.Fprintf(pw, "%d\n", i)
		}
		pw.Close()
	}()
	status, body := e.importRows(t, tn.APIKey, table, "text/csv", pr)
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"inserted":10}`, body)
}

// With every pooled connection taken, a request waits the acquire timeout
// and answers 503 overloaded with Retry-After; once a connection is free,
// it answers again.
func TestPoolExhaustionIsOverloaded(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, 2, 300*time.Millisecond, server.Config{}, nil)
	tn := dbtest.NewTenant(t, e.db, "Busy")
	ctx := context.Background()
	var held []*pgxpool.Conn
	for range 2 {
		c, err := e.pool.Acquire(ctx)
		require.NoError(t, err)
		held = append(held, c)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.url+"/v1/me", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tn.APIKey)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
	require.Equal(t, "overloaded", errorCode(t, string(body)))
	require.Equal(t, "1", resp.Header.Get("Retry-After"))

	for _, c := range held {
		c.Release()
	}
	status, body2 := e.do(t, http.MethodGet, "/v1/me", tn.APIKey, "", nil)
	require.Equal(t, http.StatusOK, status, body2)
}

// dbchat migrate gives dbchat_app a statement timeout and an
// idle-in-transaction timeout as role defaults.
func TestRuntimeRoleTimeouts(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	pool := d.AppPool(t, 1)
	ctx := context.Background()
	for setting, want := range map[string]string{"statement_timeout": "30s", "idle_in_transaction_session_timeout": "1min"} {
		var got string
		require.NoError(t, pool.QueryRow(ctx, "SHOW "+setting).Scan(&got))
		require.Equal(t, want, got, setting)
	}
}

// A preview that runs past statement_timeout is cancelled by PostgreSQL and
// answers 503 "statement timed out" (not 500); other tenants keep working
// meanwhile. The preview is made slow deterministically: an admin holds a
// lock on its table. (dbchat_app's own default is 30s, see
// TestRuntimeRoleTimeouts; this pool sets 1s the same way, as a session
// default.)
func TestStatementTimeoutCutsAPreview(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, 4, time.Second, server.Config{}, map[string]string{"statement_timeout": "1s"})
	slow := dbtest.NewTenant(t, e.db, "Slow")
	quiet := dbtest.NewTenant(t, e.db, "Quiet")
	table := e.createTable(t, slow.APIKey, `{"name":"big","columns":[{"name":"id","type":"bigint"}]}`)

	ctx := context.Background()
	lock, err := e.admin.Begin(ctx)
	require.NoError(t, err)
	defer lock.Rollback(ctx) //nolint:errcheck
	schema := "t_" + strings.ReplaceAll(slow.ID.String(), "-", "")
	_, err = lock.Exec(ctx, "LOCK TABLE "+pgx.Identifier{schema, "big"}.Sanitize()+" IN ACCESS EXCLUSIVE MODE")
	require.NoError(t, err)

	type answer struct {
		status int
		body   string
	}
	preview := make(chan answer, 1)
	go func() {
		status, body := e.do(t, http.MethodGet, "/v1/tables/"+table+"/rows?limit=1&offset=100000", slow.APIKey, "", nil)
		preview <- answer{status, body}
	}()
	var waiting int
	waitFor(t, "the preview to wait on the lock", func() bool {
		require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND usename = 'dbchat_app' AND wait_event_type = 'Lock'`, e.d.Name).Scan(&waiting))
		return waiting == 1
	})
	status, body := e.do(t, http.MethodGet, "/v1/me", quiet.APIKey, "", nil)
	require.Equal(t, http.StatusOK, status, body)

	got := <-preview
	require.Equal(t, http.StatusServiceUnavailable, got.status, got.body)
	require.Equal(t, "unavailable", errorCode(t, got.body))
	require.Contains(t, got.body, "statement timed out")
}

// A database that drops the import's connection mid-import (every dbchat_app
// backend terminated, as in a restart) answers 503 unavailable, imports
// nothing, and the same server answers again once connections can be made.
func TestDatabaseGoneMidImportIs503(t *testing.T) {
	t.Parallel()
	e := newFaultEnv(t, 4, time.Second, server.Config{}, nil)
	tn := dbtest.NewTenant(t, e.db, "Victim")
	table := e.createTable(t, tn.APIKey, `{"name":"victim","columns":[{"name":"id","type":"bigint"}]}`)

	pr, pw := io.Pipe()
	done := make(chan [2]any, 1)
	go func() {
		status, body := e.importRows(t, tn.APIKey, table, "text/csv", pr)
		done <- [2]any{status, body}
	}()
	_, err := fmt.Fprint(pw, "id\n1\n2\n3\n")
	require.NoError(t, err)
	ctx := context.Background()
	// The import's transaction is open, waiting for the next rows.
	waitFor(t, "the import's transaction", func() bool {
		var n int
		require.NoError(t, e.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = $1 AND usename = 'dbchat_app' AND state = 'idle in transaction'`, e.d.Name).Scan(&n))
		return n == 1
	})
	rows, err := e.admin.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1 AND usename = 'dbchat_app'`, e.d.Name)
	require.NoError(t, err)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(t, err)
	require.NotEmpty(t, pids)
	for _, pid := range pids {
		var ok bool
		require.NoError(t, e.admin.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok))
	}
	// The client goes on sending; the rows have nowhere to go.
	go func() {
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

	// Back without a restart: the pool drops the dead connections.
	waitFor(t, "readyz after the fault", func() bool {
		status, _ := e.do(t, http.MethodGet, "/readyz", "", "", nil)
		return status == http.StatusOK
	})
	require.Zero(t, e.rowCount(t, tn, table), "the cut import left no rows")
	status, body = e.importRows(t, tn.APIKey, table, "text/csv", strings.NewReader("id\n1\n"))
	require.Equal(t, http.StatusOK, status, body)
}

// A database that cannot be reached at all: /readyz is false and API
// requests answer 503 unavailable, not 500 or 401.
func TestUnreachableDatabaseIs503(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	pool, err := pgxpool.New(context.Background(), "postgres://dbchat_app:x@"+addr+"/dbchat?connect_timeout=5")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	db := tenant.New(pool)
	db.SetAcquireTimeout(10 * time.Second)
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{}))
	t.Cleanup(srv.Close)
	e := &rowsEnv{db: db, url: srv.URL}
	key, err := auth.Generate(uuid.New()) // well-formed, so it is looked up
	require.NoError(t, err)
	for _, path := range []string{"/readyz", "/v1/me", "/v1/tables"} {
		status, body := e.do(t, http.MethodGet, path, key.Plain, "", nil)
		require.Equal(t, http.StatusServiceUnavailable, status, "%s: %s", path, body)
		require.Equal(t, "unavailable", errorCode(t, body), path)
	}
}
