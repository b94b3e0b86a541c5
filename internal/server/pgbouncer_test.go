package server_test

// The PgBouncer proof (issue 6): the service runs behind PgBouncer in
// transaction pooling mode, where consecutive transactions of one client
// land on different server connections and every server connection serves
// many clients in turn. Tenant context lives only in transaction-local
// settings, so the pooler has nothing to carry from one tenant to another.
// The test hammers the API from many tenants at once through a deliberately
// small pool and checks every response and, afterwards, every row.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/pgbouncer"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

const (
	pgbTenantCount   = 8
	pgbClientCount   = 32 // 4 per tenant
	pgbRequests      = 20_000
	pgbShortRequests = 2_000 // under -short
	pgbPoolSize      = 4     // PgBouncer server connections per (database, user)
	pgbAppConns      = 16    // client connections of the runtime pool, shared over pgbPoolSize
	pgbQueryConns    = 8     // client connections of the sandbox pool, likewise
	pgbMaxTables     = 6     // tables per tenant: DDL is part of the mix, but bounded
	pgbImportRows    = 5     // rows per CSV import
	pgbMaxFailures   = 25    // stop the run early past this many failures
	// pgbExecMode is what operators put in DATABASE_URL behind PgBouncer
	// (README, "PgBouncer"): no named prepared statements, and every
	// execution carries its SQL. (exec and simple_protocol would do too,
	// but they send untyped text parameters, and the []byte that
	// CreateDataTable passes for a jsonb parameter then arrives as bytea
	// text. The sandbox pool uses exec regardless.)
	pgbExecMode = "cache_describe"
)

// pgbOp is one kind of request in the mix.
type pgbOp int

const (
	pgbOpList pgbOp = iota
	pgbOpCreate
	pgbOpImport
	pgbOpRows
	pgbOpSQL
	pgbOpHistory
	// pgbOpAsk asks a question about one of the tenant's tables (offline
	// generator); every check applies to it as it does to /v1/sql.
	pgbOpAsk
)

// pgbMix weighs the operations (out of the total); creates beyond
// pgbMaxTables turn into lists.
var pgbMix = []struct {
	op     pgbOp
	weight int
}{
	{pgbOpList, 15}, {pgbOpCreate, 2}, {pgbOpImport, 23}, {pgbOpRows, 20}, {pgbOpSQL, 20}, {pgbOpHistory, 10},
	{pgbOpAsk, 10},
}

// pgbMarkerRE finds markers in any text: "pgbm" is not hex, so no uuid,
// key hash or random id can contain one by chance.
var pgbMarkerRE = regexp.MustCompile(`pgbm[0-9a-f]{10}`)

type pgbTable struct {
	id, name string
	rows     atomic.Int64 // rows whose import was acknowledged
}

type pgbTenant struct {
	dbtest.Tenant
	marker   string
	mu       sync.Mutex
	tables   []*pgbTable
	next     atomic.Int64 // table name counter
	inserted atomic.Int64 // acknowledged rows, all tables
	sqlRuns  atomic.Int64 // acknowledged /v1/sql runs (each one a history row)
}

func (tn *pgbTenant) table(r *mrand.Rand) *pgbTable {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.tables[r.IntN(len(tn.tables))]
}

func (tn *pgbTenant) tableCount() int {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return len(tn.tables)
}

// pgbFailures collects what went wrong in the client goroutines, which may
// not call t.Fatal.
type pgbFailures struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (f *pgbFailures) add(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.first) < 10 {
		f.first = append(f.first, fmt.Sprintf(format, args...))
	}
}

func (f *pgbFailures) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// pgbEnv is the server behind PgBouncer and its tenants.
type pgbEnv struct {
	url     string
	client  *http.Client
	tenants []*pgbTenant
	byID    map[uuid.UUID]*pgbTenant
	byMark  map[string]*pgbTenant
	fails   pgbFailures
}

// Not parallel: for tens of seconds it loads the whole test process, which
// would skew tests that measure the process's heap (TestImportMemoryIsFlat);
// Go runs it before the parallel tests start.
func TestPgBouncerPoolCannotLeakTenantContext(t *testing.T) {
	if _, err := pgbouncer.Find(); err != nil {
		if testing.Short() {
			t.Skip(err)
		}
		t.Fatalf("%v: this test runs the service behind PgBouncer", err)
	}
	d := dbtest.New(t)
	// Not a timing assertion: a bound on a hung run, below go test's own
	// 10m, so that a hang fails with the requests' errors, not a dump.
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()

	b, err := pgbouncer.Start(ctx, pgbouncer.Options{
		ServerURL: d.AdminURL, Users: []string{migrate.AppRole, migrate.QueryRole}, PoolSize: pgbPoolSize,
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgbouncer log (tail):\n%s", pgbTail(b.Log(), 30))
		}
		require.NoError(t, b.Stop())
	})

	// Both pools go through PgBouncer.
	pw := dbtest.AppPassword(dbtest.AdminURL(t))
	appURL := b.URL(migrate.AppRole, pw, d.Name) + "&default_query_exec_mode=" + pgbExecMode
	queryURL := b.URL(migrate.QueryRole, pw, d.Name) + "&default_query_exec_mode=" + pgbExecMode
	cfg, err := pgxpool.ParseConfig(appURL)
	require.NoError(t, err)
	cfg.MaxConns = pgbAppConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	db := tenant.New(pool)
	box, err := tenant.NewSandbox(ctx, queryURL, pgbQueryConns)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	sql := sandbox.New(db, box)
	store := &nlsql.Store{DB: db, Embedder: embed.NewLocal()}
	asker := ask.New(db, sql, store, generate.NewOffline())
	srv := httptest.NewServer(server.New(db, log, server.Config{SQL: sql, Ask: asker}))
	t.Cleanup(srv.Close)

	tr := &http.Transport{MaxIdleConns: 2 * pgbClientCount, MaxIdleConnsPerHost: 2 * pgbClientCount}
	t.Cleanup(tr.CloseIdleConnections)
	e := &pgbEnv{url: srv.URL, client: &http.Client{Transport: tr}, byID: map[uuid.UUID]*pgbTenant{}, byMark: map[string]*pgbTenant{}}

	// Tenants (provisioned through PgBouncer too), each with its marker in
	// its name and a first table, so every operation has a target.
	for range pgbTenantCount {
		marker := "pgbm" + pgbHex(5)
		tn := &pgbTenant{Tenant: dbtest.NewTenant(t, db, marker), marker: marker}
		e.tenants = append(e.tenants, tn)
		e.byID[tn.ID] = tn
		e.byMark[marker] = tn
	}
	var setup sync.WaitGroup
	for _, tn := range e.tenants {
		setup.Go(func() { e.createTable(ctx, tn) })
	}
	setup.Wait()
	require.Zero(t, e.fails.count(), "setup: %v", e.fails.first)

	total := pgbRequests
	if testing.Short() {
		total = pgbShortRequests
	}
	var sent atomic.Int64
	var perOp [pgbOpAsk + 1]atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for c := range pgbClientCount {
		tn := e.tenants[c%pgbTenantCount]
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(c), 0x70676230))
			for sent.Add(1) <= int64(total) && e.fails.count() < pgbMaxFailures && ctx.Err() == nil {
				op := pgbPick(r)
				if op == pgbOpCreate && tn.tableCount() >= pgbMaxTables {
					op = pgbOpList
				}
				perOp[op].Add(1)
				e.do(ctx, r, tn, op)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("%d requests from %d clients over %d tenants through PgBouncer (pool_mode=transaction, default_pool_size=%d) in %s (%.0f/s)",
		min(sent.Load(), int64(total)), pgbClientCount, pgbTenantCount, pgbPoolSize, elapsed.Round(time.Millisecond),
		float64(min(sent.Load(), int64(total)))/elapsed.Seconds())
	t.Logf("list %d, create %d, import %d, rows %d, sql %d, history %d, ask %d",
		perOp[pgbOpList].Load(), perOp[pgbOpCreate].Load(), perOp[pgbOpImport].Load(), perOp[pgbOpRows].Load(),
		perOp[pgbOpSQL].Load(), perOp[pgbOpHistory].Load(), perOp[pgbOpAsk].Load())
	if n := e.fails.count(); n > 0 {
		t.Fatalf("%d failed requests; the first:\n%s", n, strings.Join(e.fails.first, "\n"))
	}

	// Afterwards, from the database's side (admin, not through PgBouncer):
	// every row sits in the tenant that wrote it.
	e.checkRows(t, d.AdminPool(t))
}

func pgbPick(r *mrand.Rand) pgbOp {
	sum := 0
	for _, m := range pgbMix {
		sum += m.weight
	}
	n := r.IntN(sum)
	for _, m := range pgbMix {
		if n < m.weight {
			return m.op
		}
		n -= m.weight
	}
	panic("unreachable")
}

// do sends one request of kind op for tn and checks the response.
func (e *pgbEnv) do(ctx context.Context, r *mrand.Rand, tn *pgbTenant, op pgbOp) {
	switch op {
	case pgbOpList:
		before := tn.tableCount()
		body, ok := e.send(ctx, tn, http.MethodGet, "/v1/tables", "", "", http.StatusOK)
		if ok && strings.Count(body, tn.marker+"_t") < before {
			e.fails.add("%s: GET /v1/tables shows fewer than its %d tables: %s", tn.marker, before, pgbTail(body, 5))
		}
	case pgbOpCreate:
		e.createTable(ctx, tn)
	case pgbOpImport:
		tbl := tn.table(r)
		var sb strings.Builder
		sb.WriteString("seq,note\n")
		for i := range pgbImportRows {
			fmt.Fprintf(&sb, "%d,%s row %d of %s\n", r.Int64N(1<<40), tn.marker, i, tbl.name)
		}
		body, ok := e.send(ctx, tn, http.MethodPost, "/v1/tables/"+tbl.id+"/rows", "text/csv", sb.String(), http.StatusOK)
		if ok {
			if body != fmt.Sprintf(`{"inserted":%d}`, pgbImportRows) {
				e.fails.add("%s: import answered %s", tn.marker, body)
				return
			}
			tbl.rows.Add(pgbImportRows)
			tn.inserted.Add(pgbImportRows)
		}
	case pgbOpRows:
		tbl := tn.table(r)
		had := tbl.rows.Load()
		body, ok := e.send(ctx, tn, http.MethodGet, fmt.Sprintf("/v1/tables/%s/rows?limit=20&offset=%d", tbl.id, r.Int64N(max(had, 1))), "", "", http.StatusOK)
		if ok && had > 0 && !strings.Contains(body, tn.marker) {
			e.fails.add("%s: GET rows of a table with %d rows shows none of them: %s", tn.marker, had, pgbTail(body, 5))
		}
	case pgbOpSQL:
		tbl := tn.table(r)
		had := tbl.rows.Load()
		sql := fmt.Sprintf("SELECT tenant_id, note FROM %s ORDER BY seq LIMIT %d", tbl.name, 1+r.IntN(20))
		body, ok := e.send(ctx, tn, http.MethodPost, "/v1/sql", "application/json", pgbJSON(map[string]any{"sql": sql}), http.StatusOK)
		if !ok {
			return
		}
		tn.sqlRuns.Add(1)
		var res struct {
			Rows [][]string `json:"rows"`
		}
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			e.fails.add("%s: /v1/sql: %v: %s", tn.marker, err, pgbTail(body, 5))
			return
		}
		if had > 0 && len(res.Rows) == 0 {
			e.fails.add("%s: /v1/sql on a table with %d rows returned none", tn.marker, had)
		}
		for _, row := range res.Rows {
			if row[0] != tn.ID.String() || !strings.HasPrefix(row[1], tn.marker+" ") {
				e.fails.add("%s: /v1/sql returned a row of another tenant: %v", tn.marker, row)
			}
		}
	case pgbOpHistory:
		e.send(ctx, tn, http.MethodGet, "/v1/history?limit=20", "", "", http.StatusOK)
	case pgbOpAsk:
		e.pgbAsk(ctx, r, tn)
	}
}

// pgbAsk sends a question about one of tn's tables and lets send check the
// answer for other tenants' markers.
func (e *pgbEnv) pgbAsk(ctx context.Context, r *mrand.Rand, tn *pgbTenant) {
	tbl := tn.table(r)
	e.send(ctx, tn, http.MethodPost, "/v1/ask", "application/json",
		pgbJSON(map[string]any{"question": "How many rows are in " + tbl.name + "?"}), http.StatusOK)
}

// createTable creates tn's next table, its name and descriptions carrying
// tn's marker.
func (e *pgbEnv) createTable(ctx context.Context, tn *pgbTenant) {
	name := fmt.Sprintf("%s_t%d", tn.marker, tn.next.Add(1))
	spec := map[string]any{
		"name": name, "description": "table of " + tn.marker,
		"columns": []map[string]any{
			{"name": "seq", "type": "bigint", "nullable": false, "description": "seq of " + tn.marker},
			{"name": "note", "type": "text", "description": "note of " + tn.marker},
		},
	}
	body, ok := e.send(ctx, tn, http.MethodPost, "/v1/tables", "application/json", pgbJSON(spec), http.StatusCreated)
	if !ok {
		return
	}
	var created struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Name != name {
		e.fails.add("%s: create table answered %s", tn.marker, body)
		return
	}
	tn.mu.Lock()
	tn.tables = append(tn.tables, &pgbTable{id: created.ID, name: name})
	tn.mu.Unlock()
}

// send performs one request as tn's admin and checks the status and that
// the body holds no other tenant's marker.
func (e *pgbEnv) send(ctx context.Context, tn *pgbTenant, method, path, contentType, body string, want int) (string, bool) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, rd)
	if err != nil {
		e.fails.add("%s %s: %v", method, path, err)
		return "", false
	}
	req.Header.Set("Authorization", "Bearer "+tn.APIKey)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.fails.add("%s %s: %v", method, path, err)
		return "", false
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.fails.add("%s %s: reading the body: %v", method, path, err)
		return "", false
	}
	out := string(b)
	for _, m := range pgbMarkerRE.FindAllString(out, -1) {
		if m != tn.marker {
			e.fails.add("LEAK: %s %s as %s answered with %s's marker: %s", method, path, tn.marker, m, pgbTail(out, 5))
			return out, false
		}
	}
	if resp.StatusCode != want {
		e.fails.add("%s %s as %s: status %d, want %d: %s", method, path, tn.marker, resp.StatusCode, want, pgbTail(out, 5))
		return out, false
	}
	return out, true
}

// checkRows reads every row of every tenant data table and of every
// platform table with a tenant_id, and checks it against its writer: the
// tenant whose marker it carries, and for data tables also the tenant
// whose schema holds it.
func (e *pgbEnv) checkRows(t *testing.T, admin *pgxpool.Pool) {
	t.Helper()
	ctx := t.Context()
	schemaOwner := map[string]*pgbTenant{}
	for _, tn := range e.tenants {
		schemaOwner[tenant.Schema(tn.ID)] = tn
	}

	type tbl struct{ schema, name, key string }
	var tables []tbl
	rows, err := admin.Query(ctx, `SELECT c.table_schema, c.table_name, c.column_name
		FROM information_schema.columns c
		JOIN information_schema.tables t USING (table_schema, table_name)
		WHERE t.table_type = 'BASE TABLE'
		  AND ((c.table_schema = 'dbchat' AND (c.column_name = 'tenant_id' OR c.table_name = 'tenants' AND c.column_name = 'id'))
		    OR (c.table_schema LIKE 't\_%' AND c.column_name = 'tenant_id'))
		ORDER BY 1, 2`)
	require.NoError(t, err)
	for rows.Next() {
		var x tbl
		require.NoError(t, rows.Scan(&x.schema, &x.name, &x.key))
		tables = append(tables, x)
	}
	require.NoError(t, rows.Err())

	dataRows := map[*pgbTenant]int64{}
	marked := map[string]int{} // platform table -> rows carrying a marker
	var checked int
	for _, x := range tables {
		q := fmt.Sprintf(`SELECT %s, row_to_json(x)::text FROM %s.%s x`, x.key, x.schema, x.name)
		rows, err := admin.Query(ctx, q)
		require.NoError(t, err)
		for rows.Next() {
			var owner uuid.UUID
			var text string
			require.NoError(t, rows.Scan(&owner, &text))
			checked++
			tn := e.byID[owner]
			if tn == nil {
				t.Errorf("%s.%s: a row of tenant %s, which is none of ours: %s", x.schema, x.name, owner, pgbTail(text, 3))
				continue
			}
			marks := pgbMarkerRE.FindAllString(text, -1)
			for _, m := range marks {
				if m != tn.marker {
					t.Errorf("%s.%s: a row written by %s has tenant_id of %s: %s", x.schema, x.name, m, tn.marker, pgbTail(text, 3))
				}
			}
			if x.schema == "dbchat" {
				if len(marks) > 0 {
					marked[x.name]++
				}
				continue
			}
			if so := schemaOwner[x.schema]; so != tn {
				t.Errorf("%s.%s: a row with tenant_id %s in another tenant's schema", x.schema, x.name, tn.marker)
			}
			if !strings.HasPrefix(x.name, tn.marker+"_") || len(marks) == 0 {
				t.Errorf("%s.%s: a row not written by its owner %s: %s", x.schema, x.name, tn.marker, pgbTail(text, 3))
			}
			dataRows[tn]++
		}
		require.NoError(t, rows.Err())
	}

	// Every acknowledged row is there, in its tenant, and nothing else is;
	// so are the tables and the history of every /v1/sql call (asks carry a
	// question and are checked for markers in every response instead).
	var data, sqlRuns int64
	for _, tn := range e.tenants {
		require.Equal(t, tn.inserted.Load(), dataRows[tn], "%s: rows in its data tables", tn.marker)
		data += dataRows[tn]
		sqlRuns += tn.sqlRuns.Load()
		var tables, history int64
		require.NoError(t, admin.QueryRow(ctx, `SELECT
			(SELECT count(*) FROM dbchat.database_tables WHERE tenant_id = $1 AND name LIKE $2 || '\_t%'),
			(SELECT count(*) FROM dbchat.query_history WHERE tenant_id = $1 AND question IS NULL AND generated_sql LIKE '%' || $2 || '\_t%')`,
			tn.ID, tn.marker).Scan(&tables, &history))
		require.EqualValues(t, tn.tableCount(), tables, "%s: its catalog tables", tn.marker)
		require.Equal(t, tn.sqlRuns.Load(), history, "%s: its /v1/sql history", tn.marker)
	}
	for _, name := range []string{"tenants", "database_tables", "database_columns", "query_history"} {
		require.Positive(t, marked[name], "no marked rows in dbchat.%s: the check would be vacuous", name)
	}
	t.Logf("checked %d rows in %d tables: %d data rows, %d history rows of /v1/sql, every one in the tenant that wrote it",
		checked, len(tables), data, sqlRuns)
}

func pgbHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func pgbJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// pgbTail keeps failure messages short.
func pgbTail(s string, lines int) string {
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	parts := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
