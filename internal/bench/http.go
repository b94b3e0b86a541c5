package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/server/apiclient"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Part 2: the whole request path (HTTP, key auth, tenant transaction, sqlc,
// JSON) against a floor handler serving the same rows with bare net/http and
// one pgx query, no auth and no RLS. Both servers run in this process on
// pools of the same size; the load comes from a second process.

var httpGoal = goal{bound: 0.70}

// endpoint is one measured GET: its floor statement and the JSON field
// holding the listed rows, of which there must be want.
type endpoint struct {
	name, path, list, floorSQL string
	want                       func(HTTPConfig) int
}

var endpoints = []endpoint{
	{"GET /v1/tables", "/v1/tables", "tables", `SELECT t.id, t.name, t.description, t.is_active, t.user_id, t.created_at, t.updated_at, count(c.id)::int AS column_count
FROM dbchat.database_tables t
LEFT JOIN dbchat.database_columns c ON c.tenant_id = t.tenant_id AND c.table_id = t.id
WHERE t.tenant_id = $1
GROUP BY t.tenant_id, t.id
ORDER BY t.name`, func(c HTTPConfig) int { return c.Tables }},
	{"GET /v1/history?limit=50", "/v1/history?limit=50", "items", `SELECT h.id, h.user_id, m.name AS model, h.question, h.generated_sql, h.status, h.error,
       h.row_count, h.generation_ms, h.execution_ms, h.created_at
FROM dbchat.query_history h
LEFT JOIN dbchat.models m ON m.tenant_id = h.tenant_id AND m.id = h.model_id
WHERE h.tenant_id = $1
ORDER BY h.created_at DESC, h.id DESC
LIMIT 50`, func(HTTPConfig) int { return 50 }},
}

// floorRoute serves one endpoint the cheapest way: one query as a role
// without RLS, the tenant fixed, rows scanned by column name into T (the
// API's own type from the generated client, so the floor sends the same
// fields), encoding/json.
func floorRoute[T any](mux *http.ServeMux, pool *pgxpool.Pool, ep endpoint, tenantID uuid.UUID) {
	path, _, _ := strings.Cut(ep.path, "?")
	mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
		rows, _ := pool.Query(r.Context(), ep.floorSQL, tenantID)
		out, err := pgx.CollectRows(rows, pgx.RowToStructByName[T])
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(map[string]any{ep.list: out})
	})
}

// httpSample is one load run against one server, per request.
type httpSample struct {
	load                      loadResult
	roundTrips                float64 // writes to PostgreSQL
	serverCPU, pgCPU, loadCPU float64 // µs
}

// target is one server under load, with counters of its requests and its
// pool's round trips.
type target struct {
	name, url, header string
	requests, writes  atomic.Int64
}

func (t *target) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.requests.Add(1); h.ServeHTTP(w, r) })
}

func runHTTP(ctx context.Context, e *Env) (*Section, error) {
	c := e.cfg.HTTP
	d := e.open(ctx, "http")
	floor, real := &target{name: "floor"}, &target{name: "dbchat"}
	targets := []*target{floor, real}
	db, floorPool := tenant.New(e.pool(ctx, d.AppURL, 0, &real.writes)), e.pool(ctx, d.AdminURL, 0, &floor.writes)
	e.logf("http: seeding %d tenants with %d tables and %d history rows each", c.Tenants, c.Tables, c.RowsPerTenant)
	tenantID, key := seedHTTP(ctx, d.admin, db, c)
	real.header = "Authorization: Bearer " + key
	mux := http.NewServeMux()
	floorRoute[apiclient.TableSummary](mux, floorPool, endpoints[0], tenantID)
	floorRoute[apiclient.HistoryItem](mux, floorPool, endpoints[1], tenantID)
	// The production server as `dbchat serve` builds it, logging JSON (to
	// /dev/null here, so the cost of formatting and writing stays).
	floor.url, real.url = e.serve(floor.count(mux)), e.serve(real.count(server.New(db, devNullLog, server.Config{})))
	// Both list the same rows; the warm-up runs.
	sizes := make([][]int, len(endpoints))
	for ei, ep := range endpoints {
		for _, t := range targets {
			var doc map[string]json.RawMessage
			var list []json.RawMessage
			body := doJSON(ctx, http.DefaultClient, http.MethodGet, t.url+ep.path, t.header, nil, &doc)
			if err := json.Unmarshal(doc[ep.list], &list); err != nil || len(list) != ep.want(c) {
				return nil, fmt.Errorf("%s %s: %d %s, want %d (%v)", t.name, ep.name, len(list), ep.list, ep.want(c), err)
			}
			sizes[ei] = append(sizes[ei], len(body))
			e.runLoad(ctx, t.url+ep.path, t.header, c.Concurrency, c.Warmup)
		}
	}
	res := make([][][]httpSample, len(endpoints)) // [endpoint][target][run]
	for ei := range res {
		res[ei] = make([][]httpSample, len(targets))
	}
	for run := range e.cfg.Runs {
		for ei, ep := range endpoints {
			for k := range targets {
				ti := (k + run) % len(targets) // the order alternates between runs
				res[ei][ti] = append(res[ei][ti], measureLoad(ctx, e, targets[ti], ep, c))
			}
			e.logf("http: run %d/%d %s: floor %.0f req/s, dbchat %.0f req/s", run+1, e.cfg.Runs, ep.name,
				res[ei][0][run].load.RPS, res[ei][1][run].load.RPS)
		}
	}
	return httpSection(e, c, res, sizes), nil
}

// seedHTTP provisions the measured tenant through the real path (its key is
// real) with c.Tables tables through catalog.Create; the other tenants and
// their catalogs are bulk-loaded (their data tables are not read).
func seedHTTP(ctx context.Context, admin *pgx.Conn, db *tenant.DB, c HTTPConfig) (uuid.UUID, string) {
	res := must1(provision.CreateTenant(ctx, db, provision.Request{Name: "Bench target"}))
	seedTenants(ctx, admin, c.Tenants-1, 10, 1)
	id := tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin}
	for i := range c.Tables {
		spec := catalog.TableSpec{Name: fmt.Sprintf("table_%02d", i+1), Description: fmt.Sprint("Benchmark table ", i+1)}
		for j, typ := range []string{"bigint", "text", "numeric", "timestamptz", "boolean"} {
			spec.Columns = append(spec.Columns, catalog.ColumnSpec{Name: fmt.Sprintf("col_%d", j+1), Type: typ, Description: "column " + typ})
		}
		must(db.TxAs(ctx, id, func(tx tenant.Conn) error { _, err := catalog.Create(ctx, tx, spec); return err }))
	}
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO dbchat.users (tenant_id, email, name, role)
		SELECT $1, 'member' || u || '@bench.invalid', 'Member ' || u, 'member' FROM generate_series(2, 10) u`, res.Tenant.ID)
	b.Queue(`INSERT INTO dbchat.database_tables (tenant_id, id, name, description)
		SELECT t.id, md5(t.id::text || '/table/' || k)::uuid, 'table_' || lpad(k::text, 2, '0'), 'Benchmark table ' || k
		FROM dbchat.tenants t, generate_series(1, $1::int) k WHERE t.slug LIKE 'tenant-%'`, c.Tables)
	b.Queue(`INSERT INTO dbchat.database_columns (tenant_id, table_id, name, data_type, description, position)
		SELECT t.tenant_id, t.id, 'col_' || j, (ARRAY['bigint','text','numeric','timestamptz','boolean'])[j], 'column', j
		FROM dbchat.database_tables t, generate_series(1, 5) j WHERE t.tenant_id <> $1`, res.Tenant.ID)
	must(admin.SendBatch(ctx, b).Close())
	seedHistory(ctx, admin, c.RowsPerTenant)
	return res.Tenant.ID, res.APIKey
}

// serve runs h on a loopback port until the running part ends.
func (e *Env) serve(h http.Handler) (url string) {
	ln := must1(net.Listen("tcp", "127.0.0.1:0"))
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	e.atEnd(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String()
}

// measureLoad runs one load run and accounts round trips and CPU time.
func measureLoad(ctx context.Context, e *Env, t *target, ep endpoint, c HTTPConfig) httpSample {
	reqs0, writes0, cpu0 := t.requests.Load(), t.writes.Load(), e.machine.cpuNow()
	lr := e.runLoad(ctx, t.url+ep.path, t.header, c.Concurrency, c.Duration)
	cpu1, n := e.machine.cpuNow(), float64(t.requests.Load()-reqs0)
	if n == 0 {
		must(fmt.Errorf("%s %s: no requests reached the server", t.name, ep.name))
	}
	return httpSample{load: lr, roundTrips: float64(t.writes.Load()-writes0) / n, serverCPU: micros(cpu1.self-cpu0.self) / n,
		pgCPU: micros(cpu1.postgres-cpu0.postgres) / n, loadCPU: micros(lr.CPU) / n}
}

func httpSection(e *Env, c HTTPConfig, res [][][]httpSample, sizes [][]int) *Section {
	s := &Section{}
	type epOut struct{ Name, Table, Verdict string }
	var eps []epOut
	fields := []struct {
		format string
		get    func(httpSample) float64
	}{
		{"%.0f", func(x httpSample) float64 { return x.load.RPS }}, {"%.2f", func(x httpSample) float64 { return x.load.P50us / 1000 }},
		{"%.2f", func(x httpSample) float64 { return x.load.P99us / 1000 }}, {"%.2f", func(x httpSample) float64 { return x.roundTrips }},
		{"%.0f", func(x httpSample) float64 { return x.serverCPU }}, {"%.0f", func(x httpSample) float64 { return x.pgCPU }},
		{"%.0f", func(x httpSample) float64 { return x.loadCPU }},
	}
	med := func(xs []httpSample, fi int) float64 { return newDist(collect(xs, fields[fi].get)).Med }
	for ei, ep := range endpoints {
		f, r := res[ei][0], res[ei][1]
		ratio := newDist(ratios(collect(r, fields[0].get), collect(f, fields[0].get)))
		verdict := httpGoal.verdict(ratio.Med)
		s.Summary = append(s.Summary, Row{fmt.Sprintf("%s (req/s, c=%d)", ep.name, c.Concurrency), fmt.Sprintf("%.0f", med(f, 0)),
			fmt.Sprintf("%.0f", med(r, 0)), ratio.f("%.2f"), httpGoal.String(), verdict})
		var rows [][]string
		for ti, xs := range [][]httpSample{f, r} {
			row := []string{[]string{"floor", "dbchat"}[ti]}
			for fi, fd := range fields {
				cell := newDist(collect(xs, fd.get)).f(fd.format)
				if fi == 5 && e.machine.pgPID == 0 {
					cell = "n/a (remote cluster)"
				}
				row = append(row, cell)
			}
			rows = append(rows, append(row, fmt.Sprint(sizes[ei][ti])))
		}
		rows = append(rows, []string{"**dbchat / floor**", ratio.f("%.2f")})
		eps = append(eps, epOut{ep.name, mdTable([]string{"", "req/s", "p50 ms", "p99 ms", "round trips / req", "CPU µs / req: server",
			"PostgreSQL", "load generator", "response bytes"}, rows), verdict})
	}
	s.Body = render("http", map[string]any{"Goal": httpGoal.bound, "C": c, "AllRows": c.Tenants * c.RowsPerTenant,
		"Pool": max(4, e.machine.Cores), "Endpoints": eps})
	return s
}
