package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/dbchat/dbchat/internal/tenant"
)

// Part 2: the whole request path (HTTP, key auth, tenant transaction, sqlc,
// JSON) against a floor handler serving the same rows with bare net/http and
// one pgx query, no auth and no RLS. Both servers run in this process on
// pools of the same size; the load comes from a second process.

var httpGoal = goal{bound: 0.70}

type endpoint struct {
	name, path string
	count      string // JSON field holding the listed rows
}

var endpoints = []endpoint{
	{"GET /v1/tables", "/v1/tables", "tables"},
	{"GET /v1/history?limit=50", "/v1/history?limit=50", "items"},
}

// httpSample is one load run against one server.
type httpSample struct {
	load       loadResult
	roundTrips float64       // writes to PostgreSQL per request
	serverCPU  time.Duration // per request
	pgCPU      time.Duration // per request
	loadCPU    time.Duration // per request
}

// countRequests counts requests reaching h.
func countRequests(h http.Handler, n *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	})
}

type target struct {
	name     string
	url      string
	header   string
	requests *atomic.Int64
	writes   *atomic.Int64
}

func runHTTP(ctx context.Context, e *Env) (*Section, error) {
	c := e.cfg.HTTP
	d, admin, err := e.open(ctx, "http")
	if err != nil {
		return nil, err
	}

	var appWrites, floorWrites atomic.Int64
	capture := &stmtCapture{}
	app, err := openPool(ctx, d.AppURL, 0, &appWrites, capture)
	if err != nil {
		return nil, err
	}
	defer app.Close()
	db := tenant.New(app)
	floorPool, err := openPool(ctx, d.AdminURL, 0, &floorWrites, nil)
	if err != nil {
		return nil, err
	}
	defer floorPool.Close()

	e.logf("http: seeding %d tenants with %d tables and %d history rows each", c.Tenants, c.Tables, c.RowsPerTenant)
	tgt, err := seedHTTP(ctx, e, admin, db, c)
	if err != nil {
		return nil, err
	}

	// The production server as `dbchat serve` builds it, logging JSON (to
	// /dev/null here, so the cost of formatting and writing stays).
	api := server.New(db, devNullLog, server.Config{})
	var realReqs, floorReqs atomic.Int64
	realURL, stopReal, err := serve(countRequests(api, &realReqs))
	if err != nil {
		return nil, err
	}
	defer stopReal()
	floorURL, stopFloor, err := serve(countRequests(floorHandler(floorPool, tgt.ID), &floorReqs))
	if err != nil {
		return nil, err
	}
	defer stopFloor()
	targets := []target{
		{"floor", floorURL, "", &floorReqs, &floorWrites},
		{"dbchat", realURL, "Authorization: Bearer " + tgt.APIKey, &realReqs, &appWrites},
	}
	sizes, err := checkSameRows(ctx, targets, tgt.APIKey, c.Tables)
	if err != nil {
		return nil, err
	}

	// Warm up, noting the statements dbchat runs per endpoint (the tracer is
	// off during the measured runs).
	for _, ep := range endpoints {
		for _, t := range targets {
			capture.start(ep.name)
			_, err := e.runLoad(ctx, t.url+ep.path, t.header, c.Concurrency, c.Warmup)
			capture.stop()
			if err != nil {
				return nil, fmt.Errorf("warm-up %s %s: %w", t.name, ep.name, err)
			}
		}
	}
	// res[endpoint][target] over runs.
	res := make([][][]httpSample, len(endpoints))
	for i := range res {
		res[i] = make([][]httpSample, len(targets))
	}
	for run := range e.cfg.Runs {
		for ei, ep := range endpoints {
			for k := range targets {
				ti := (k + run) % len(targets)
				s, err := measureLoad(ctx, e, targets[ti], ep, c)
				if err != nil {
					return nil, err
				}
				res[ei][ti] = append(res[ei][ti], s)
			}
			e.logf("http: run %d/%d %s: floor %.0f req/s, dbchat %.0f req/s", run+1, e.cfg.Runs, ep.name,
				res[ei][0][run].load.RPS, res[ei][1][run].load.RPS)
		}
	}

	if !e.cfg.Explain {
		return httpSection(e, c, res, sizes, nil, nil), nil
	}
	// One more run of each server under the CPU profiler.
	profs := make([][]profileSummary, len(endpoints))
	for ei, ep := range endpoints {
		for _, t := range targets {
			path := e.path(fmt.Sprintf("http-%s-%s.pprof", t.name, strings.Trim(strings.NewReplacer("/", "-", "?", "-", "=", "").Replace(ep.path), "-")))
			p, err := profileLoad(ctx, e, t, ep, c, path)
			if err != nil {
				e.logf("http: profile %s %s: %v", t.name, ep.name, err)
			}
			profs[ei] = append(profs[ei], p)
		}
	}
	plans, err := explainEndpoints(ctx, d, tgt, capture)
	if err != nil {
		e.logf("http: plans: %v", err)
	}
	return httpSection(e, c, res, sizes, profs, plans), nil
}

// stmtPlan is one statement's plan as the server runs it and, when the plan
// cache chose a generic plan of another shape, its custom plan.
type stmtPlan struct {
	sql              string
	auto, custom     string
	autoUs, customUs float64
}

// endpointPlans are the statements behind one endpoint.
type endpointPlans struct {
	dbchat []stmtPlan
	floor  stmtPlan
}

// explainEndpoints explains what each endpoint ran: dbchat's statements as
// captured during the warm-up, as dbchat_app in the measured tenant's
// context, and the floor's one statement as the superuser.
func explainEndpoints(ctx context.Context, d *benchDB, tgt seeded, capture *stmtCapture) ([]endpointPlans, error) {
	id := &tenant.Identity{TenantID: tgt.ID, UserID: tgt.AdminID}
	one := func(url, sql string, run planRun) (stmtPlan, error) {
		p := stmtPlan{sql: stripSQLCName(sql)}
		auto, err := explainAsRun(ctx, url, sql, []planRun{run}, "ANALYZE, BUFFERS, COSTS OFF", false)
		if err != nil {
			return p, err
		}
		custom, err := explainAsRun(ctx, url, sql, []planRun{run}, "ANALYZE, BUFFERS, COSTS OFF", true)
		if err != nil {
			return p, err
		}
		p.auto, p.autoUs = auto[0], planMicros(auto[0])
		p.customUs = planMicros(custom[0])
		if planShape(auto[0]) != planShape(custom[0]) {
			p.custom = custom[0]
		}
		return p, nil
	}
	out := make([]endpointPlans, len(endpoints))
	floorSQL := map[string]string{"/v1/tables": floorTablesSQL, "/v1/history?limit=50": floorHistorySQL}
	for ei, ep := range endpoints {
		for _, st := range capture.forLabel(ep.name) {
			p, err := one(d.AppURL, st.sql, planRun{id: id, args: st.args})
			if err != nil {
				return out, fmt.Errorf("%s: %w", ep.name, err)
			}
			out[ei].dbchat = append(out[ei].dbchat, p)
		}
		p, err := one(d.AdminURL, floorSQL[ep.path], planRun{args: []any{tgt.ID}})
		if err != nil {
			return out, fmt.Errorf("%s floor: %w", ep.name, err)
		}
		out[ei].floor = p
	}
	return out, nil
}

// seeded is the measured tenant.
type seeded struct {
	ID      uuid.UUID
	AdminID uuid.UUID
	APIKey  string
}

func seedHTTP(ctx context.Context, e *Env, admin *pgx.Conn, db *tenant.DB, c HTTPConfig) (seeded, error) {
	// The measured tenant goes through the real provisioning path (its key is
	// real); the others are bulk-loaded.
	res, err := provision.CreateTenant(ctx, db, provision.Request{Name: "Bench target"})
	if err != nil {
		return seeded{}, err
	}
	if err := seedTenants(ctx, admin, c.Tenants-1, 10); err != nil {
		return seeded{}, err
	}
	if _, err := admin.Exec(ctx, `INSERT INTO dbchat.users (tenant_id, email, name, role)
		SELECT $1, 'member' || u || '@bench.invalid', 'Member ' || u, 'member' FROM generate_series(2, 10) u`, res.Tenant.ID); err != nil {
		return seeded{}, err
	}
	id := tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin}
	for i := range c.Tables {
		spec := catalog.TableSpec{Name: fmt.Sprintf("table_%02d", i+1), Description: "Benchmark table " + fmt.Sprint(i+1)}
		for j, typ := range []string{"bigint", "text", "numeric", "timestamptz", "boolean"} {
			spec.Columns = append(spec.Columns, catalog.ColumnSpec{Name: fmt.Sprintf("col_%d", j+1), Type: typ, Description: "column " + typ})
		}
		err := db.TxAs(ctx, id, func(tx tenant.Conn) error { _, err := catalog.Create(ctx, tx, spec); return err })
		if err != nil {
			return seeded{}, fmt.Errorf("create table %s: %w", spec.Name, err)
		}
	}
	// The other tenants' catalogs: rows only (their data tables are not read).
	if _, err := admin.Exec(ctx, `
		INSERT INTO dbchat.database_tables (tenant_id, id, name, description)
		SELECT t.id, md5(t.id::text || '/table/' || k)::uuid, 'table_' || lpad(k::text, 2, '0'), 'Benchmark table ' || k
		FROM dbchat.tenants t, generate_series(1, $1::int) k WHERE t.slug LIKE 'tenant-%'`, c.Tables); err != nil {
		return seeded{}, err
	}
	if _, err := admin.Exec(ctx, `
		INSERT INTO dbchat.database_columns (tenant_id, table_id, name, data_type, description, position)
		SELECT t.tenant_id, t.id, 'col_' || j, (ARRAY['bigint','text','numeric','timestamptz','boolean'])[j], 'column', j
		FROM dbchat.database_tables t, generate_series(1, 5) j WHERE t.tenant_id <> $1`, res.Tenant.ID); err != nil {
		return seeded{}, err
	}
	if err := seedHistory(ctx, admin, c.RowsPerTenant); err != nil {
		return seeded{}, err
	}
	if err := vacuumAnalyze(ctx, admin); err != nil {
		return seeded{}, err
	}
	return seeded{ID: res.Tenant.ID, AdminID: res.Admin.ID, APIKey: res.APIKey}, nil
}

// serve runs h on a loopback port until stop.
func serve(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// Floor responses: the same fields as the API's.
type floorTable struct {
	ID          uuid.UUID  `json:"id"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	IsActive    bool       `json:"is_active"`
	UserID      *uuid.UUID `json:"user_id"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	ColumnCount int32      `json:"column_count"`
}

type floorHistory struct {
	ID           uuid.UUID  `json:"id"`
	UserID       *uuid.UUID `json:"user_id"`
	Model        *string    `json:"model"`
	Question     *string    `json:"question"`
	GeneratedSQL *string    `json:"generated_sql"`
	Status       string     `json:"status"`
	Error        *string    `json:"error"`
	RowCount     *int64     `json:"row_count"`
	GenerationMs *float64   `json:"generation_ms"`
	ExecutionMs  *float64   `json:"execution_ms"`
	CreatedAt    time.Time  `json:"created_at"`
}

const (
	floorTablesSQL = `SELECT t.id, t.name, t.description, t.is_active, t.user_id, t.created_at, t.updated_at, count(c.id)::int
FROM dbchat.database_tables t
LEFT JOIN dbchat.database_columns c ON c.tenant_id = t.tenant_id AND c.table_id = t.id
WHERE t.tenant_id = $1
GROUP BY t.tenant_id, t.id
ORDER BY t.name`
	floorHistorySQL = `SELECT h.id, h.user_id, m.name, h.question, h.generated_sql, h.status, h.error,
       h.row_count, h.generation_ms, h.execution_ms, h.created_at
FROM dbchat.query_history h
LEFT JOIN dbchat.models m ON m.tenant_id = h.tenant_id AND m.id = h.model_id
WHERE h.tenant_id = $1
ORDER BY h.created_at DESC, h.id DESC
LIMIT 50`
)

// floorHandler is the best this machine does for the same rows: one query
// as a role without RLS, the tenant fixed, straight to encoding/json.
func floorHandler(pool *pgxpool.Pool, tenantID uuid.UUID) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) { http.Error(w, err.Error(), http.StatusInternalServerError) }
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /v1/tables", func(w http.ResponseWriter, r *http.Request) {
		rows, _ := pool.Query(r.Context(), floorTablesSQL, tenantID)
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (floorTable, error) {
			var t floorTable
			err := row.Scan(&t.ID, &t.Name, &t.Description, &t.IsActive, &t.UserID, &t.CreatedAt, &t.UpdatedAt, &t.ColumnCount)
			return t, err
		})
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, map[string]any{"tables": out})
	})
	mux.HandleFunc("GET /v1/history", func(w http.ResponseWriter, r *http.Request) {
		rows, _ := pool.Query(r.Context(), floorHistorySQL, tenantID)
		out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (floorHistory, error) {
			var h floorHistory
			err := row.Scan(&h.ID, &h.UserID, &h.Model, &h.Question, &h.GeneratedSQL, &h.Status, &h.Error,
				&h.RowCount, &h.GenerationMs, &h.ExecutionMs, &h.CreatedAt)
			return h, err
		})
		if err != nil {
			fail(w, err)
			return
		}
		reply(w, map[string]any{"items": out})
	})
	return mux
}

// checkSameRows fetches each endpoint from both servers and checks they list
// the same number of rows; it returns the response sizes.
func checkSameRows(ctx context.Context, targets []target, key string, tables int) ([][]int, error) {
	want := map[string]int{"tables": tables, "items": 50}
	sizes := make([][]int, len(endpoints))
	for ei, ep := range endpoints {
		for _, t := range targets {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, t.url+ep.path, nil)
			if t.header != "" {
				req.Header.Set("Authorization", "Bearer "+key)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return nil, err
			}
			if resp.StatusCode != http.StatusOK {
				return nil, fmt.Errorf("%s %s: status %d: %s", t.name, ep.name, resp.StatusCode, body)
			}
			var doc map[string]json.RawMessage
			var list []json.RawMessage
			if err := json.Unmarshal(body, &doc); err != nil {
				return nil, err
			}
			if err := json.Unmarshal(doc[ep.count], &list); err != nil {
				return nil, fmt.Errorf("%s %s: %w", t.name, ep.name, err)
			}
			if len(list) != want[ep.count] {
				return nil, fmt.Errorf("%s %s: %d %s, want %d", t.name, ep.name, len(list), ep.count, want[ep.count])
			}
			sizes[ei] = append(sizes[ei], len(body))
		}
	}
	return sizes, nil
}

// measureLoad runs one load run and accounts round trips and CPU time.
func measureLoad(ctx context.Context, e *Env, t target, ep endpoint, c HTTPConfig) (httpSample, error) {
	reqs0, writes0, cpu0 := t.requests.Load(), t.writes.Load(), e.machine.cpuNow()
	lr, err := e.runLoad(ctx, t.url+ep.path, t.header, c.Concurrency, c.Duration)
	if err != nil {
		return httpSample{}, fmt.Errorf("%s %s: %w", t.name, ep.name, err)
	}
	cpu1 := e.machine.cpuNow()
	n := t.requests.Load() - reqs0
	if n == 0 {
		return httpSample{}, errors.New("no requests reached the server")
	}
	return httpSample{
		load:       lr,
		roundTrips: float64(t.writes.Load()-writes0) / float64(n),
		serverCPU:  (cpu1.self - cpu0.self) / time.Duration(n),
		pgCPU:      (cpu1.postgres - cpu0.postgres) / time.Duration(n),
		loadCPU:    lr.CPU / time.Duration(n),
	}, nil
}

// profileLoad repeats a load run with this process under the CPU profiler.
func profileLoad(ctx context.Context, e *Env, t target, ep endpoint, c HTTPConfig, path string) (profileSummary, error) {
	return profileSelf(ctx, path, func() error {
		_, err := e.runLoad(ctx, t.url+ep.path, t.header, c.Concurrency, c.Duration)
		return err
	})
}

func httpSection(e *Env, c HTTPConfig, res [][][]httpSample, sizes [][]int, profs [][]profileSummary, plans []endpointPlans) *Section {
	s := &Section{}
	type stmt struct {
		Who, First, SQL, Auto, Custom string
		AutoUs, CustomUs              float64
	}
	type epPlans struct {
		Name  string
		Stmts []stmt
	}
	type epProf struct {
		Name   string
		Names  []string
		Both   []profileSummary
		Dbchat profileSummary
	}
	type epOut struct{ Name, Table, Verdict string }
	var eps []epOut
	var analysis []string
	var planOut []epPlans
	var profOut []epProf
	for ei, ep := range endpoints {
		f, r := res[ei][0], res[ei][1]
		rps := func(xs []httpSample) []float64 { return collect(xs, func(x httpSample) float64 { return x.load.RPS }) }
		ratio := newDist(ratios(rps(r), rps(f)))
		verdict := httpGoal.verdict(ratio.Med)
		s.Summary = append(s.Summary, Row{Measure: ep.name + " (req/s, c=" + fmt.Sprint(c.Concurrency) + ")",
			Floor: newDist(rps(f)).m("%.0f"), Dbchat: newDist(rps(r)).m("%.0f"), Ratio: ratio.f("%.2f"),
			Goal: httpGoal.String(), Verdict: verdict})
		header := []string{"", "req/s", "p50 ms", "p99 ms", "round trips / req", "CPU µs / req: server", "PostgreSQL", "load generator", "response bytes"}
		var rows [][]string
		for ti, xs := range [][]httpSample{f, r} {
			rows = append(rows, []string{[]string{"floor", "dbchat"}[ti],
				newDist(rps(xs)).f("%.0f"),
				newDist(collect(xs, func(x httpSample) float64 { return x.load.P50us / 1000 })).f("%.2f"),
				newDist(collect(xs, func(x httpSample) float64 { return x.load.P99us / 1000 })).f("%.2f"),
				newDist(collect(xs, func(x httpSample) float64 { return x.roundTrips })).f("%.2f"),
				newDist(collect(xs, func(x httpSample) float64 { return micros(x.serverCPU) })).f("%.0f"),
				cpuCell(e, xs, func(x httpSample) float64 { return micros(x.pgCPU) }),
				newDist(collect(xs, func(x httpSample) float64 { return micros(x.loadCPU) })).f("%.0f"),
				fmt.Sprint(sizes[ei][ti]),
			})
		}
		rows = append(rows, []string{"**dbchat / floor**", ratio.f("%.2f"), "", "", "", "", "", "", ""})
		eps = append(eps, epOut{ep.name, mdTable(header, rows), verdict})
		if !httpGoal.met(ratio.Med) {
			var ps *endpointPlans
			if ei < len(plans) {
				ps = &plans[ei]
			}
			analysis = append(analysis, httpAnalysis(e, ep, f, r, ratio.Med, ps))
		}
		if ei < len(plans) {
			out := epPlans{Name: ep.name}
			for i, p := range append(plans[ei].dbchat, plans[ei].floor) {
				who := "dbchat"
				if i == len(plans[ei].dbchat) {
					who = "floor"
				}
				first, _, _ := strings.Cut(p.sql, "\n")
				out.Stmts = append(out.Stmts, stmt{who, first, p.sql, p.auto, p.custom, p.autoUs, p.customUs})
			}
			planOut = append(planOut, out)
		}
		if ei < len(profs) && len(profs[ei]) == 2 {
			profOut = append(profOut, epProf{ep.name, []string{"floor", "dbchat"}, profs[ei], profs[ei][1]})
		}
	}
	s.Body = render("http", map[string]any{"Goal": httpGoal.bound, "C": c, "AllRows": c.Tenants * c.RowsPerTenant,
		"Pool": max(4, e.machine.Cores), "Endpoints": eps, "Analysis": analysis, "Plans": planOut, "Profiles": profOut, "WorkDir": e.cfg.WorkDir})
	return s
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func cpuCell(e *Env, xs []httpSample, f func(httpSample) float64) string {
	if e.machine.pgPID == 0 {
		return "n/a (remote cluster)"
	}
	return newDist(collect(xs, f)).f("%.0f")
}

func collect[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// httpAnalysis splits a missed goal's extra CPU per request by process.
func httpAnalysis(e *Env, ep endpoint, f, r []httpSample, ratio float64, plans *endpointPlans) string {
	med := func(xs []httpSample, g func(httpSample) float64) float64 { return newDist(collect(xs, g)).Med }
	srv := func(x httpSample) float64 { return micros(x.serverCPU) }
	pg := func(x httpSample) float64 { return micros(x.pgCPU) }
	ld := func(x httpSample) float64 { return micros(x.loadCPU) }
	rt := func(x httpSample) float64 { return x.roundTrips }
	fTotal := med(f, srv) + med(f, pg) + med(f, ld)
	rTotal := med(r, srv) + med(r, pg) + med(r, ld)
	return fmt.Sprintf("**%s** reaches %.2f× the floor (%.0f%% short of %.2f×). CPU per request, all processes on the same %d cores: %.0f µs for dbchat vs %.0f µs for the floor (%.2f×). Of the %.0f µs extra, the server process accounts for %+.0f µs (%.0f → %.0f), PostgreSQL for %+.0f µs (%.0f → %.0f; %.2f round trips per request instead of %.2f) and the load generator for %+.0f µs.",
		ep.name, ratio, (httpGoal.bound-ratio)/httpGoal.bound*100, httpGoal.bound, e.machine.Cores,
		rTotal, fTotal, rTotal/fTotal, rTotal-fTotal,
		med(r, srv)-med(f, srv), med(f, srv), med(r, srv),
		med(r, pg)-med(f, pg), med(f, pg), med(r, pg), med(r, rt), med(f, rt),
		med(r, ld)-med(f, ld)) + planAnalysis(plans)
}

// planAnalysis points at statements whose cached plan is much slower than
// a custom plan, or much slower than the floor's statement.
func planAnalysis(plans *endpointPlans) string {
	if plans == nil {
		return ""
	}
	var out []string
	for _, p := range plans.dbchat {
		first, _, _ := strings.Cut(p.sql, "\n")
		if p.custom != "" && p.autoUs > 1.5*p.customUs {
			why := ""
			if strings.Contains(planShape(p.auto), "Sort") && !strings.Contains(planShape(p.custom), "Sort") {
				why = " The generic plan sorts the rows it reads where the custom plan reads an index in order and stops at the LIMIT."
			}
			out = append(out, fmt.Sprintf(" PostgreSQL's plan cache runs `%s…` with a generic plan that takes %.0f µs, against %.0f µs for a custom plan with the same arguments (%.1f×) and %.0f µs for the floor's statement (plans below).%s",
				first, p.autoUs, p.customUs, p.autoUs/p.customUs, plans.floor.autoUs, why))
		} else if p.autoUs > 3*plans.floor.autoUs && p.autoUs > 200 {
			out = append(out, fmt.Sprintf(" The statement `%s…` takes %.0f µs in PostgreSQL against %.0f µs for the floor's statement.", first, p.autoUs, plans.floor.autoUs))
		}
	}
	return strings.Join(out, "")
}
