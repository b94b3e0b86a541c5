package server_test

import (
	"context"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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
	pgbRestartRequests      = 3_000
	pgbRestartShortRequests = 1_500 // under -short
)

// pgbCut is how pgbEnv.send words a request answered 503 unavailable:
// what a request cut by the restart must answer, and nothing else.
var pgbCut = regexp.MustCompile(`status 503, want \d+: \{"error":\{"code":"unavailable"`)

// PgBouncer is restarted (immediate shutdown, every client and server
// connection dropped, then started again on the same port) in the middle of
// the 32-client mixed load of TestPgBouncerPoolCannotLeakTenantContext.
// Requests cut by it answer 503 unavailable and nothing else (no 500, no
// other tenant's marker); the same server answers /readyz within 5 s of
// PgBouncer listening again and every client is served again without a
// restart; nothing leaks (runtime pool, sandbox slots). Afterwards every row
// is checked as in the proof test: a cut write either committed whole or
// not at all (so rows, tables and history lie between what was acknowledged
// and that plus what was cut), and no row sits in a tenant that did not
// write it.
//
// Not parallel, like the proof test: it loads the whole test process.
func TestPgBouncerRestartUnderLoad(t *testing.T) {
	if _, err := pgbouncer.Find(); err != nil {
		if testing.Short() {
			t.Skip(err)
		}
		t.Fatalf("%v: this test runs the service behind PgBouncer", err)
	}
	d := dbtest.New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute) // a bound on a hung run
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
	pw := dbtest.AppPassword(dbtest.AdminURL(t))
	cfg, err := pgxpool.ParseConfig(b.URL(migrate.AppRole, pw, d.Name) + "&default_query_exec_mode=" + pgbExecMode)
	require.NoError(t, err)
	cfg.MaxConns = pgbAppConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	db := tenant.New(pool)
	box, err := tenant.NewSandbox(ctx, b.URL(migrate.QueryRole, pw, d.Name)+"&default_query_exec_mode="+pgbExecMode, pgbQueryConns)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	log := &lockedBuffer{}
	sql := sandbox.New(db, box)
	asker := ask.New(db, sql, &nlsql.Store{DB: db, Embedder: embed.NewLocal()}, generate.NewOffline())
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn})),
		server.Config{SQL: sql, Ask: asker}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log (tail):\n%s", pgbTail(log.String(), 40))
		}
	})
	tr := &http.Transport{MaxIdleConns: 2 * pgbClientCount, MaxIdleConnsPerHost: 2 * pgbClientCount}
	t.Cleanup(tr.CloseIdleConnections)
	e := &pgbEnv{url: srv.URL, client: &http.Client{Transport: tr, Timeout: time.Minute}, byID: map[uuid.UUID]*pgbTenant{}, byMark: map[string]*pgbTenant{}}
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

	// Each request runs with a pgbEnv of its own (sharing the tenants), so
	// that what send reports about it can be told apart: a 503 unavailable
	// is counted as cut, anything else is a failure.
	total := pgbRestartRequests
	if testing.Short() {
		total = pgbRestartShortRequests
	}
	var (
		sent, okAfter atomic.Int64
		restarted     atomic.Bool
		mu            sync.Mutex
		failures      []string
		cut           = map[*pgbTenant]map[pgbOp]int64{}
		wg            sync.WaitGroup
	)
	for _, tn := range e.tenants {
		cut[tn] = map[pgbOp]int64{}
	}
	for c := range pgbClientCount {
		tn := e.tenants[c%pgbTenantCount]
		wg.Go(func() {
			r := mrand.New(mrand.NewPCG(uint64(c), 0x72737472))
			for sent.Add(1) <= int64(total) && ctx.Err() == nil {
				mu.Lock()
				stop := len(failures) >= pgbMaxFailures
				mu.Unlock()
				if stop {
					return
				}
				op := pgbPick(r)
				if op == pgbOpCreate && tn.tableCount() >= pgbMaxTables {
					op = pgbOpList
				}
				one := &pgbEnv{url: e.url, client: e.client, tenants: e.tenants, byID: e.byID, byMark: e.byMark}
				one.do(ctx, r, tn, op)
				one.fails.mu.Lock()
				msgs := one.fails.first
				one.fails.mu.Unlock()
				mu.Lock()
				switch {
				case len(msgs) == 0:
					if restarted.Load() {
						okAfter.Add(1)
					}
				case len(msgs) == 1 && pgbCut.MatchString(msgs[0]):
					cut[tn][op]++
				default:
					failures = append(failures, msgs...)
				}
				mu.Unlock()
			}
		})
	}
	waitFor(t, "the load to get going", func() bool { return sent.Load() >= int64(total/3) })
	require.NoError(t, b.Restart(ctx))
	listening := time.Now()
	restarted.Store(true)
	for {
		var status int
		if resp, err := e.client.Get(e.url + "/readyz"); err == nil {
			status = resp.StatusCode
			resp.Body.Close()
		}
		if status == http.StatusOK {
			t.Logf("readyz 200 %s after PgBouncer listened again", time.Since(listening).Round(time.Millisecond))
			break
		}
		require.Less(t, time.Since(listening), crashRecoveryBound, "not ready %s after PgBouncer came back", crashRecoveryBound)
		time.Sleep(50 * time.Millisecond)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, failures, "every answer is the expected one or 503 unavailable")
	var cuts int64
	for _, ops := range cut {
		for _, n := range ops {
			cuts += n
		}
	}
	t.Logf("%d requests, %d cut by the restart (503 unavailable), %d answered normally after it", min(sent.Load(), int64(total)), cuts, okAfter.Load())
	require.Positive(t, cuts, "the restart cut no request: the test proved nothing about requests in flight")
	require.Positive(t, okAfter.Load(), "nothing was served after the restart")
	for _, tn := range e.tenants { // every tenant is served again
		_, ok := e.send(ctx, tn, http.MethodGet, "/v1/tables", "", "", http.StatusOK)
		require.True(t, ok, "%s after the restart: %v", tn.marker, e.fails.first)
	}
	waitFor(t, "the runtime pool to be idle", func() bool { return pool.Stat().AcquiredConns() == 0 })
	for _, tn := range e.tenants {
		require.Zero(t, box.Running(tn.ID), tn.marker)
		require.Zero(t, box.Waiting(tn.ID), tn.marker)
	}
	require.Contains(t, log.String(), "code=unavailable", "the cut requests are logged")
	require.NotContains(t, log.String(), "code=internal")

	admin := d.AdminPool(t)
	pgbReconcile(t, admin, e, cut)
	e.checkRows(t, admin)
}

// pgbReconcile accounts for writes cut by the restart, which may have
// committed before their answer was lost: it requires every tenant's tables,
// data rows and /v1/sql history to lie between what was acknowledged and
// that plus what was cut (whole imports only: an import is all or
// nothing), then records what is there as acknowledged, so checkRows can
// check every row's owner and the counts exactly.
func pgbReconcile(t *testing.T, admin *pgxpool.Pool, e *pgbEnv, cut map[*pgbTenant]map[pgbOp]int64) {
	t.Helper()
	ctx := t.Context()
	for _, tn := range e.tenants {
		known := map[string]bool{}
		for _, tbl := range tn.tables {
			known[tbl.name] = true
		}
		rows, err := admin.Query(ctx, `SELECT id::text, name FROM dbchat.database_tables
			WHERE tenant_id = $1 AND name LIKE $2 || '\_t%' ORDER BY name`, tn.ID, tn.marker)
		require.NoError(t, err)
		var extraTables int64
		for rows.Next() {
			var id, name string
			require.NoError(t, rows.Scan(&id, &name))
			if !known[name] {
				extraTables++
				tn.tables = append(tn.tables, &pgbTable{id: id, name: name})
			}
		}
		require.NoError(t, rows.Err())
		require.LessOrEqual(t, extraTables, cut[tn][pgbOpCreate], "%s: tables nobody was told were created", tn.marker)

		var extraRows int64
		for _, tbl := range tn.tables {
			var n int64
			require.NoError(t, admin.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{tenant.Schema(tn.ID), tbl.name}.Sanitize()).Scan(&n))
			extra := n - tbl.rows.Load()
			require.GreaterOrEqual(t, extra, int64(0), "%s: acknowledged rows missing", tbl.name)
			require.Zero(t, extra%pgbImportRows, "%s: part of an import", tbl.name)
			tbl.rows.Add(extra)
			extraRows += extra
		}
		require.LessOrEqual(t, extraRows, cut[tn][pgbOpImport]*pgbImportRows, "%s: rows nobody was told were imported", tn.marker)
		tn.inserted.Add(extraRows)

		var history int64
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM dbchat.query_history
			WHERE tenant_id = $1 AND question IS NULL AND generated_sql LIKE '%' || $2 || '\_t%'`, tn.ID, tn.marker).Scan(&history))
		extra := history - tn.sqlRuns.Load()
		require.GreaterOrEqual(t, extra, int64(0), "%s: acknowledged /v1/sql history missing", tn.marker)
		require.LessOrEqual(t, extra, cut[tn][pgbOpSQL], "%s: /v1/sql history nobody was told of", tn.marker)
		tn.sqlRuns.Add(extra)
		if extraTables+extraRows+extra > 0 {
			t.Logf("%s: a cut write committed before its answer was lost: %d tables, %d rows, %d history rows", tn.marker, extraTables, extraRows, extra)
		}
	}
}
