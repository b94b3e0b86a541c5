package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// replicaEnv is a server whose SQL sandbox reads on the test cluster's hot
// standby (a real streaming replica), with the primary as its fallback.
type replicaEnv struct {
	*env
	box     *tenant.Sandbox
	standby *dbtest.Standby
}

// newReplicaEnv starts it; standbyURL overrides the sandbox's standby
// login (a server that is down, or not a standby).
func newReplicaEnv(t *testing.T, maxWait time.Duration, standbyURL func(*dbtest.Standby) string) *replicaEnv {
	t.Helper()
	d := dbtest.New(t)
	pool := d.AppPool(t, 4)
	db := tenant.New(pool)
	sb := d.Standby(t)
	box, err := tenant.NewSandbox(context.Background(), d.QueryURL, 4)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	cfg := tenant.StandbyConfig{URL: sb.QueryURL, MonitorURL: sb.AppURL, MaxWait: maxWait}
	if standbyURL != nil {
		cfg.URL, cfg.MonitorURL = standbyURL(sb), standbyURL(sb)
	}
	require.NoError(t, box.UseStandby(context.Background(), db, cfg))
	sql := sandbox.New(db, box)
	asker := ask.New(db, sql, &nlsql.Store{DB: db, Embedder: embed.NewLocal()}, generate.NewOffline())
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)),
		server.Config{SQL: sql, Ask: asker, Replica: box}))
	t.Cleanup(srv.Close)
	return &replicaEnv{env: &env{d: d, pool: pool, db: db, url: srv.URL}, box: box, standby: sb}
}

// importOrders imports n orders into the tenant's table through the API.
func (e *replicaEnv) importOrders(t *testing.T, key, tableID string, n int, note string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("id,amount,placed_at,note\n")
	for i := range n {
		fmt.Fprintf(&b, "%d,%d.50,2024-01-01T00:00:00Z,%s\n", i+1, i, note)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/v1/tables/"+tableID+"/rows", strings.NewReader(b.String()))
	require.NoError(t, err)
	req.Header.Set("Authorization", bearer(key))
	req.Header.Set("Content-Type", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// sqlRows runs POST /v1/sql and returns its rows as strings; any status
// but 200 fails the test (a 500 above all).
func (e *replicaEnv) sqlRows(t *testing.T, key, sql string) [][]string {
	t.Helper()
	status, body := e.send(t, http.MethodPost, "/v1/sql", key, map[string]any{"sql": sql})
	require.Equal(t, http.StatusOK, status, body)
	var res struct {
		Rows [][]json.RawMessage `json:"rows"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &res))
	out := make([][]string, len(res.Rows))
	for i, r := range res.Rows {
		for _, v := range r {
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
			out[i] = append(out[i], s)
		}
	}
	return out
}

// pauseReplay pauses the standby's replay (it keeps receiving WAL) until
// the returned function (also run at cleanup) resumes it.
func pauseReplay(t *testing.T, sb *dbtest.Standby) (resume func()) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), sb.AdminURL)
	require.NoError(t, err)
	_, err = conn.Exec(context.Background(), `SELECT pg_wal_replay_pause()`)
	require.NoError(t, err)
	done := false
	resume = func() {
		if !done {
			done = true
			_, err := conn.Exec(context.Background(), `SELECT pg_wal_replay_resume()`)
			conn.Close(context.Background())
			require.NoError(t, err)
		}
	}
	t.Cleanup(resume)
	return resume
}

var replicaOrders = map[string]any{
	"name": "orders",
	"columns": []map[string]any{
		{"name": "id", "type": "bigint", "nullable": false},
		{"name": "amount", "type": "numeric"},
		{"name": "placed_at", "type": "timestamptz"},
		{"name": "note", "type": "text"},
	},
}

// TestReplicaReadYourWritesAndIsolation: through real HTTP, statements run
// on the standby (/v1/sql, /v1/ask, a conversation turn); a count right after an import sees every imported row,
// because the statement waits for the standby to replay the import (its
// replay is paused until the statement is seen waiting, so without the
// wait it would count none); tenant A sees none of B's rows there, and on
// the standby the tenant isolation policy and the read-only transaction
// hold for dbchat_query as on the primary. Not parallel: it pauses the
// standby's replay.
func TestReplicaReadYourWritesAndIsolation(t *testing.T) {
	e := newReplicaEnv(t, time.Minute, nil)
	a := dbtest.NewTenant(t, e.db, "A")
	b := dbtest.NewTenant(t, e.db, "B")
	ta := e.createTable(t, a.APIKey, replicaOrders)
	tb := e.createTable(t, b.APIKey, replicaOrders)
	e.importOrders(t, b.APIKey, tb.ID.String(), 50, "zzbravoreplica")

	// Right after its table was created, A's table is there on the standby.
	require.Equal(t, [][]string{{"0"}}, e.sqlRows(t, a.APIKey, `SELECT count(*) FROM orders`))
	require.Equal(t, [][]string{{"50"}}, e.sqlRows(t, b.APIKey, `SELECT count(*) FROM orders WHERE note = 'zzbravoreplica'`))
	ran, fellBack := e.box.OnStandby(), e.box.OnPrimaryInstead()
	require.Equal(t, int64(2), ran, "both statements ran on the standby")
	require.Zero(t, fellBack)

	// Read-your-writes: the import is noted before its response, the
	// count waits for the standby to replay it.
	resume := pauseReplay(t, e.standby)
	e.importOrders(t, a.APIKey, ta.ID.String(), 1000, "alpha")
	waited := e.box.WaitedForStandby()
	counted := make(chan [][]string, 1)
	go func() { counted <- e.sqlRows(t, a.APIKey, `SELECT count(*), sum(id) FROM orders`) }()
	for e.box.WaitedForStandby() == waited {
		time.Sleep(time.Millisecond)
	}
	resume()
	require.Equal(t, [][]string{{"1000", "500500"}}, <-counted)
	require.Equal(t, ran+1, e.box.OnStandby(), "the count ran on the standby")
	require.Equal(t, fellBack, e.box.OnPrimaryInstead())

	// A question and a conversation turn run their SQL there too.
	ran = e.box.OnStandby()
	require.Equal(t, `"1000"`, string(e.ask(t, a.APIKey, "How many orders are there?").Rows[0][0]))
	status, body := e.send(t, http.MethodPost, "/v1/conversations", a.APIKey, map[string]any{"title": "orders"})
	require.Equal(t, http.StatusCreated, status, body)
	var conv struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(body), &conv))
	status, body = e.send(t, http.MethodPost, "/v1/conversations/"+conv.ID+"/messages", a.APIKey, map[string]any{"question": "How many orders are there?"})
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"rows":[["1000"]]`)
	require.GreaterOrEqual(t, e.box.OnStandby(), ran+2, "the question and the turn ran on the standby")
	require.Equal(t, fellBack, e.box.OnPrimaryInstead())

	// A sees its own rows only, and B's schema is not A's to name.
	for _, row := range e.sqlRows(t, a.APIKey, `SELECT DISTINCT note FROM orders`) {
		require.Equal(t, []string{"alpha"}, row)
	}
	status, body = e.send(t, http.MethodPost, "/v1/sql", a.APIKey, map[string]any{"sql": "SELECT * FROM " + tenant.Schema(b.ID) + ".orders"})
	require.Equal(t, http.StatusBadRequest, status, body)
	require.NotContains(t, body, "zzbravoreplica")

	// Below the parser, on the standby as dbchat_query: the policy filters
	// by app.tenant_id, another tenant's schema is refused, writes fail.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, e.standby.QueryURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.Equal(t, "on", conn.PgConn().ParameterStatus("in_hot_standby"))
	count := func(setting string) (int64, error) {
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		require.NoError(t, err)
		defer tx.Rollback(ctx)
		for _, q := range []string{`SET LOCAL ROLE ` + tenant.Schema(a.ID), `SET LOCAL app.tenant_id = '` + setting + `'`} {
			_, err := tx.Exec(ctx, q)
			require.NoError(t, err)
		}
		var n int64
		err = tx.QueryRow(ctx, `SELECT count(*) FROM `+tenant.Schema(a.ID)+`.orders`).Scan(&n)
		return n, err
	}
	n, err := count(a.ID.String())
	require.NoError(t, err)
	require.Equal(t, int64(1000), n)
	n, err = count(b.ID.String())
	require.NoError(t, err)
	require.Zero(t, n, "tenant_isolation on the standby: A's rows under B's setting")
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SET LOCAL ROLE `+tenant.Schema(a.ID))
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SELECT count(*) FROM `+tenant.Schema(b.ID)+`.orders`)
	requirePgCode(t, err, "42501", "another tenant's schema on the standby")
	require.NoError(t, tx.Rollback(ctx))
	// A transaction cannot even ask to write, and a superuser's write fails.
	tx, err = conn.Begin(ctx)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `SET TRANSACTION READ WRITE`)
	requirePgCode(t, err, "0A000", "read-write mode on the standby")
	require.NoError(t, tx.Rollback(ctx))
	super, err := pgx.Connect(ctx, e.standby.AdminURL)
	require.NoError(t, err)
	defer super.Close(ctx)
	_, err = super.Exec(ctx, `INSERT INTO `+tenant.Schema(a.ID)+`.orders (tenant_id, id) VALUES ($1, 1)`, a.ID)
	requirePgCode(t, err, "25006", "a write on the standby")
}

// TestReplicaFallsBackToThePrimary: a standby that lags past the bound,
// whose connections are cut, that is down (nothing listens on its port) or
// that is not a standby at all: every statement still answers 200 with
// the primary's rows. Not parallel: it pauses the standby's replay.
func TestReplicaFallsBackToThePrimary(t *testing.T) {
	e := newReplicaEnv(t, 50*time.Millisecond, nil)
	a := dbtest.NewTenant(t, e.db, "A")
	ta := e.createTable(t, a.APIKey, replicaOrders)

	// Lagging past the bound: replay paused, the import is not there.
	resume := pauseReplay(t, e.standby)
	e.importOrders(t, a.APIKey, ta.ID.String(), 300, "alpha")
	fellBack := e.box.OnPrimaryInstead()
	require.Equal(t, [][]string{{"300"}}, e.sqlRows(t, a.APIKey, `SELECT count(*) FROM orders`))
	require.Equal(t, fellBack+1, e.box.OnPrimaryInstead(), "the count ran on the primary")
	resume()

	// The standby's sessions are terminated under the pool.
	ctx := context.Background()
	require.Equal(t, [][]string{{"300"}}, e.sqlRows(t, a.APIKey, `SELECT count(*) FROM orders`))
	admin, err := pgx.Connect(ctx, e.standby.AdminURL)
	require.NoError(t, err)
	defer admin.Close(ctx)
	_, err = admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	require.NoError(t, err)
	require.Equal(t, [][]string{{"300"}}, e.sqlRows(t, a.APIKey, `SELECT count(*) FROM orders`))

	// Down, and not a standby: the primary answers every time.
	free := freeLoopbackPort(t)
	for name, standbyURL := range map[string]func(*dbtest.Standby) string{
		"down": func(sb *dbtest.Standby) string { return withPort(t, sb.QueryURL, free) },
		// The primary itself: its logins fail checkStandbyLogin.
		"not a standby": func(*dbtest.Standby) string { return e.d.QueryURL },
	} {
		t.Run(name, func(t *testing.T) {
			e := newReplicaEnv(t, 50*time.Millisecond, standbyURL)
			a := dbtest.NewTenant(t, e.db, "A")
			ta := e.createTable(t, a.APIKey, replicaOrders)
			e.importOrders(t, a.APIKey, ta.ID.String(), 20, "alpha")
			for range 3 {
				require.Equal(t, [][]string{{"20"}}, e.sqlRows(t, a.APIKey, `SELECT count(*) FROM orders`))
			}
			require.Zero(t, e.box.OnStandby())
			require.Equal(t, int64(3), e.box.OnPrimaryInstead())
		})
	}
}

func freeLoopbackPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func withPort(t *testing.T, connURL string, port int) string {
	u, err := url.Parse(connURL)
	require.NoError(t, err)
	u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
	return u.String()
}
