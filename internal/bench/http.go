package bench

import (
	"bufio"
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/identity"
	"github.com/dbchat/dbchat/internal/limits"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/server/apiclient"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/tenantio"
)

// The parts measured over HTTP: 2, 4, 6 and 7. Part 2: the whole request
// path (HTTP, key auth, tenant transaction, sqlc, JSON) against a floor of
// bare net/http and one pgx query (no auth, no RLS), and with a provider's
// JWT against the key; templates/http.md.tmpl.

var httpGoal, jwtGoal, limitsGoal = goal{bound: 0.85}, goal{bound: 0.95}, goal{bound: 0.03, atMost: true, unit: " (ratio drop)"}

// tripsGoal is issue 18's round trips per authenticated read; growGoal its
// "within 10%" for the request path at ten times the tenants.
var tripsGoal, growGoal = goal{bound: 1, atMost: true, unit: " round trip"}, goal{bound: 0.90}

// growFactor is how many times the tenants (and history rows) the platform
// tables grow to for the second measurement: 1,000 → 10,000 at full scale.
const growFactor = 10

// endpoint is one measured GET: its floor statement and the JSON field
// holding the listed rows, of which there must be want.
type endpoint struct {
	name, path, list, floorSQL string
	want                       func(HTTPConfig) int
}

var endpoints = []endpoint{
	{"GET /v1/tables", "/v1/tables", "tables", render("http-tables", nil), func(c HTTPConfig) int { return c.Tables }},
	{"GET /v1/history?limit=50", "/v1/history?limit=50", "items", render("http-history", nil), func(HTTPConfig) int { return 50 }},
}

// floorRoute serves one endpoint the cheapest way: one query as a role
// without RLS, the tenant fixed, rows scanned by name into T (the generated
// client's type: the API's fields), encoding/json.
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
	floor, real, bearer, limited := &target{name: "floor"}, &target{name: "dbchat"}, &target{name: "dbchat, JWT"}, &target{name: "dbchat, limits"}
	targets := []*target{floor, real, bearer, limited}
	rec, tracers := &phaseTracer{}, []pgx.QueryTracer{} // BENCH_EXPLAIN: rec keeps one request's statements per endpoint
	if rec.paused.Store(true); e.cfg.Explain {
		tracers = append(tracers, rec)
	}
	db, floorPool := tenant.New(e.pool(ctx, d.AppURL, 0, &real.writes, tracers...)), e.pool(ctx, d.AdminURL, 0, &floor.writes)
	e.logf("http: seeding %d tenants with %d tables and %d history rows each", c.Tenants, c.Tables, c.RowsPerTenant)
	id, key := seedHTTP(ctx, d.admin, db, c)
	real.header = "Authorization: Bearer " + key
	mux := http.NewServeMux()
	floorRoute[apiclient.TableSummary](mux, floorPool, endpoints[0], id.TenantID)
	floorRoute[apiclient.HistoryItem](mux, floorPool, endpoints[1], id.TenantID)
	// The production server as `dbchat serve` builds it, logging JSON (to
	// /dev/null here, so the cost of formatting and writing stays).
	floor.url, real.url = e.serve(floor.count(mux)), e.serve(real.count(server.New(db, devNullLog, server.Config{})))
	// The same server over its own pool, signing in with a provider's JWT.
	bearer.header = "Authorization: Bearer " + benchJWT(ctx, e, db, id)
	bearer.url = e.serve(bearer.count(server.New(tenant.New(e.pool(ctx, d.AppURL, 0, &bearer.writes)), devNullLog, server.Config{})))
	// And checking the tenant's rate limit and quotas, set far above the load.
	ldb, lim := tenant.New(e.pool(ctx, d.AppURL, 0, &limited.writes)), dbsqlc.SetTenantLimitsParams{ID: id.TenantID, Unset: []string{}, Set: []byte(`{"requests_per_second":1e9,"burst":1e9,"questions_per_day":1e9,"storage_bytes":1e15}`)}
	must(ldb.TxAs(ctx, id, func(tx tenant.Conn) error { _, err := dbsqlc.New().SetTenantLimits(ctx, tx, lim); return err }))
	limited.header, limited.url = real.header, e.serve(limited.count(server.New(ldb, devNullLog, server.Config{Limits: limits.New(ldb, nil)})))
	// All list the same rows (the JWT's user is provisioned here); the warm-up runs.
	sizes := make([][]int, len(endpoints))
	for ei, ep := range endpoints {
		for _, t := range targets {
			doc, list := map[string]json.RawMessage{}, []json.RawMessage{}
			body := doJSON(ctx, http.DefaultClient, http.MethodGet, t.url+ep.path, t.header, nil, &doc)
			if err := json.Unmarshal(doc[ep.list], &list); err != nil || len(list) != ep.want(c) {
				return nil, fmt.Errorf("%s %s: %d %s, want %d (%v)", t.name, ep.name, len(list), ep.list, ep.want(c), err)
			}
			sizes[ei] = append(sizes[ei], len(body))
			e.runLoad(ctx, t.url+ep.path, t.header, c.Concurrency, c.Warmup)
		}
	}
	res := collect(endpoints, func(endpoint) [][]httpSample { return make([][]httpSample, len(targets)) }) // [endpoint][target][run]
	for run := range e.cfg.Runs {
		for ei, ep := range endpoints {
			for k := range targets {
				ti := (k + run) % len(targets) // the order rotates between runs
				res[ei][ti] = append(res[ei][ti], measureLoad(ctx, e, targets[ti], ep, c))
			}
			e.logf("http: run %d/%d %s: floor %.0f req/s, dbchat %.0f req/s, with a JWT %.0f, with limits %.0f", run+1, e.cfg.Runs, ep.name,
				res[ei][0][run].load.RPS, res[ei][1][run].load.RPS, res[ei][2][run].load.RPS, res[ei][3][run].load.RPS)
		}
	}
	for _, ep := range endpoints {
		e.explain(ctx, "http", ep.name+": floor", floorPool.Query, ep.floorSQL, id.TenantID)
		rec.keep.Store(true)
		doJSON(ctx, http.DefaultClient, http.MethodGet, real.url+ep.path, real.header, nil, nil)
		rec.keep.Store(false)
		for _, st := range rec.kept {
			if sql := st[0].(string); strings.Contains(sql, "SELECT") && !strings.Contains(sql, "set_config") {
				must(db.TxAs(ctx, id, func(tx tenant.Conn) error {
					e.explain(ctx, "http", ep.name+": dbchat", tx.Query, sql, st[1:]...)
					return nil
				}))
			}
		}
		rec.kept = nil
	}
	grown := measureGrown(ctx, e, d.admin, []*target{floor, real}, c)
	return httpSection(e, c, res, grown, sizes), nil
}

// measureGrown grows the platform tables to growFactor times the tenants,
// each with as many history rows and users as the others, and measures the
// floor and dbchat (API key) again: [endpoint][floor, dbchat][run].
func measureGrown(ctx context.Context, e *Env, admin *pgx.Conn, targets []*target, c HTTPConfig) [][][]httpSample {
	e.logf("http: growing to %d tenants with %d history rows each", growFactor*c.Tenants, c.RowsPerTenant)
	t0 := time.Now()
	must1(admin.Exec(ctx, render("grow-tenants", nil), c.Tenants, growFactor*c.Tenants-1))
	must1(admin.Exec(ctx, render("grow-users", nil), 10))
	must1(admin.Exec(ctx, render("grow-models", nil)))
	must1(admin.Exec(ctx, `SET session_replication_role = replica`))
	must1(admin.Exec(ctx, render("grow-history", nil), c.RowsPerTenant))
	must1(admin.Exec(ctx, `RESET session_replication_role`))
	must1(admin.Exec(ctx, `VACUUM (ANALYZE) dbchat.tenants, dbchat.users, dbchat.models, dbchat.query_history`))
	e.logf("http: grown in %s", time.Since(t0).Round(time.Second))
	grown := collect(endpoints, func(endpoint) [][]httpSample { return make([][]httpSample, len(targets)) })
	for _, ep := range endpoints {
		for _, t := range targets {
			e.runLoad(ctx, t.url+ep.path, t.header, c.Concurrency, c.Warmup)
		}
	}
	for run := range e.cfg.Runs {
		for ei, ep := range endpoints {
			for k := range targets {
				ti := (k + run) % len(targets)
				grown[ei][ti] = append(grown[ei][ti], measureLoad(ctx, e, targets[ti], ep, c))
			}
			e.logf("http: grown run %d/%d %s: floor %.0f req/s, dbchat %.0f req/s", run+1, e.cfg.Runs, ep.name,
				grown[ei][0][run].load.RPS, grown[ei][1][run].load.RPS)
		}
	}
	return grown
}

// seedHTTP provisions the measured tenant and its c.Tables tables through the
// real path; the other tenants and their catalogs are bulk-loaded.
func seedHTTP(ctx context.Context, admin *pgx.Conn, db *tenant.DB, c HTTPConfig) (tenant.Identity, string) {
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
	b.Queue(render("seed-http-users", nil), res.Tenant.ID)
	b.Queue(render("seed-http-tables-others", nil), c.Tables)
	b.Queue(render("seed-http-columns", nil), res.Tenant.ID)
	must(admin.SendBatch(ctx, b).Close())
	seedHistory(ctx, admin, c.RowsPerTenant)
	return id, res.APIKey
}

// benchJWT registers an identity provider of id's tenant whose ES256 key set
// a loopback server here serves, and mints an admin's token of it.
func benchJWT(ctx context.Context, e *Env, db *tenant.DB, id tenant.Identity) string {
	key := jose.JSONWebKey{Key: must1(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)), KeyID: "bench", Algorithm: string(jose.ES256), Use: "sig"}
	jwks := must1(json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}}))
	spec := identity.Spec{Issuer: "https://bench.dbchat.invalid", Audience: "dbchat-bench", Claims: identity.Claims{Role: "role", AdminValues: []string{"admin"}},
		JWKSURL: e.serve(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(jwks) })) + "/jwks.json"}
	must(spec.Validate()) // as POST /v1/identity-providers does
	must(db.TxAs(ctx, id, func(tx tenant.Conn) error { _, err := identity.Create(ctx, tx, spec); return err }))
	return must1(jwt.Signed(must1(jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT")))).
		Claims(map[string]any{"iss": spec.Issuer, "aud": spec.Audience, "sub": "bench-user", "role": "admin", "iat": time.Now().Unix(), "exp": time.Now().Add(24 * time.Hour).Unix()}).Serialize())
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
	mustf(n > 0, "%s %s: no requests reached the server", t.name, ep.name)
	return httpSample{load: lr, roundTrips: float64(t.writes.Load()-writes0) / n, serverCPU: micros(cpu1.self-cpu0.self) / n,
		pgCPU: micros(cpu1.postgres-cpu0.postgres) / n, loadCPU: micros(lr.CPU) / n}
}

// cpuSplit is CPU time per request, in µs, of the server, PostgreSQL and the
// load generator.
type cpuSplit struct{ Server, PG, Load float64 }

// Total is the three together.
func (c cpuSplit) Total() float64 { return c.Server + c.PG + c.Load }

func httpSection(e *Env, c HTTPConfig, res, grown [][][]httpSample, sizes [][]int) *Section {
	s, eps, grownRows := &Section{}, []map[string]any{}, [][]string{}
	formats, fields := strings.Fields("%.0f %.2f %.2f %.2f %.0f %.0f %.0f"), []func(httpSample) float64{func(x httpSample) float64 { return x.load.RPS },
		func(x httpSample) float64 { return x.load.P50us / 1000 }, func(x httpSample) float64 { return x.load.P99us / 1000 },
		func(x httpSample) float64 { return x.roundTrips }, func(x httpSample) float64 { return x.serverCPU },
		func(x httpSample) float64 { return x.pgCPU }, func(x httpSample) float64 { return x.loadCPU }}
	med := func(xs []httpSample, fi int) float64 { return newDist(collect(xs, fields[fi])).Med }
	for ei, ep := range endpoints {
		f, r, j, l, rps := res[ei][0], res[ei][1], res[ei][2], res[ei][3], func(xs []httpSample) []float64 { return collect(xs, fields[0]) }
		drops := ratios(rps(r), rps(f))
		for i, x := range ratios(rps(l), rps(f)) {
			drops[i] -= x // per run: dbchat / floor without the limit check minus with it
		}
		ratio, jr, lr, dr := newDist(ratios(rps(r), rps(f))), newDist(ratios(rps(j), rps(r))), newDist(ratios(rps(l), rps(f))), newDist(drops)
		verdict, jv, lv := httpGoal.verdict(ratio.Med), jwtGoal.verdict(jr.Med), limitsGoal.verdict(dr.Med)
		s.Summary = append(s.Summary, Row{fmt.Sprintf("%s (req/s, c=%d)", ep.name, c.Concurrency), fmt.Sprintf("%.0f", med(f, 0)),
			fmt.Sprintf("%.0f", med(r, 0)), ratio.f("%.2f"), httpGoal.String(), verdict},
			Row{fmt.Sprintf("%s with a JWT vs the API key (req/s, c=%d)", ep.name, c.Concurrency), fmt.Sprintf("key %.0f", med(r, 0)),
				fmt.Sprintf("%.0f", med(j, 0)), jr.f("%.2f"), jwtGoal.String(), jv},
			Row{fmt.Sprintf("%s with tenant limits checked: dbchat / floor (c=%d)", ep.name, c.Concurrency), "without " + ratio.f("%.2f"),
				"with " + lr.f("%.2f"), dr.f("%.2f") + " drop", limitsGoal.String(), lv})
		trips := newDist(collect(r, fields[3]))
		s.Summary = append(s.Summary, Row{ep.name + ": round trips to PostgreSQL per request (API key)", "—",
			trips.f("%.2f"), "—", tripsGoal.String(), tripsGoal.verdict(math.Round(trips.Med*100) / 100)})
		g := grown[ei]
		growR, grownRatio := newDist(ratios(rps(g[1]), rps(r))), newDist(ratios(rps(g[1]), rps(g[0])))
		s.Summary = append(s.Summary, Row{fmt.Sprintf("%s at %s tenants (%s history rows) vs %s: dbchat req/s", ep.name,
			thousands(growFactor*c.Tenants), thousands(growFactor*c.Tenants*c.RowsPerTenant), thousands(c.Tenants)),
			fmt.Sprintf("%.0f", med(r, 0)), fmt.Sprintf("%.0f", med(g[1], 0)), growR.f("%.2f"), growGoal.String(), growGoal.verdict(growR.Med)})
		grownRows = append(grownRows, []string{ep.name, fmt.Sprintf("%.0f → %.0f", med(f, 0), med(g[0], 0)),
			fmt.Sprintf("%.0f → %.0f", med(r, 0), med(g[1], 0)), growR.f("%.2f"),
			fmt.Sprintf("%.2f → %.2f", med(r, 1), med(g[1], 1)), ratio.f("%.2f") + " → " + grownRatio.f("%.2f"),
			fmt.Sprintf("%.2f → %.2f", med(r, 2), med(g[1], 2)), growGoal.verdict(growR.Med)})
		var rows [][]string
		for ti, xs := range res[ei] {
			row := []string{[]string{"floor", "dbchat, API key", "dbchat, JWT", "dbchat, API key, limits checked"}[ti]}
			for fi, fd := range fields {
				cell := newDist(collect(xs, fd)).f(formats[fi])
				if fi == 5 && e.machine.pgPID == 0 {
					cell = "n/a (remote cluster)"
				}
				row = append(row, cell)
			}
			rows = append(rows, append(row, fmt.Sprint(sizes[ei][ti])))
		}
		rows = append(rows, []string{"**dbchat / floor**", ratio.f("%.2f")}, []string{"**JWT / API key**", jr.f("%.2f")}, []string{"**limits checked: dbchat / floor**", lr.f("%.2f")})
		fc, dc := cpuSplit{med(f, 4), med(f, 5), med(f, 6)}, cpuSplit{med(r, 4), med(r, 5), med(r, 6)}
		eps = append(eps, map[string]any{"Name": ep.name, "Table": rows, "Verdict": verdict + "; JWT vs API key (req/s ratio, goal " + jwtGoal.String() +
			"): " + jv + "; limit check (drop of dbchat / floor, goal " + limitsGoal.String() + "): " + lv,
			"CPU": e.machine.pgPID != 0 && dc.Total() > 0, "Floor": fc, "Dbchat": dc, "Extra": cpuSplit{dc.Server - fc.Server, dc.PG - fc.PG, dc.Load - fc.Load},
			"Predicted": fc.Total() / dc.Total(), "Ratio": ratio.Med})
	}
	s.Body = render("http", map[string]any{"Goal": httpGoal.bound, "JWTGoal": jwtGoal.bound, "C": c, "AllRows": c.Tenants * c.RowsPerTenant,
		"Pool": max(4, e.machine.Cores), "Cores": e.machine.Cores, "Endpoints": eps, "Grown": grownRows, "GrowTenants": growFactor * c.Tenants,
		"GrowRows": growFactor * c.Tenants * c.RowsPerTenant, "GrowGoal": growGoal.bound})
	return s
}

// Part 4: POST /v1/tables/{id}/rows with a CSV body against COPY of the file
// into a table of the same shape without RLS (COPY refuses RLS, which is why
// the importer inserts batches with INSERT … SELECT), and the server's peak
// memory at two sizes.

var importGoal = goal{bound: 0.75}

// memoryFlat bounds the peak anonymous memory's growth for "flat in the row
// count" while the rows grow tenfold.
const memoryFlat = 1.20
const importColumns = "id, customer, amount, ordered_at, paid"

// importSize is one CSV size with its measurements.
type importSize struct {
	rows            int
	path            string
	bytes, anonPeak int64     // anonPeak: peak anonymous RSS during the runs
	copyS, importS  []float64 // seconds per run
	proc            procMem   // after the runs
	mem             memStats  // Go runtime, after the runs
	allocRow        float64   // bytes allocated by the server per imported row
	phases          map[string][]float64
	cpu             map[string][]float64 // CPU seconds per load, by load and process (cpuColumns)
}

// cpuColumns name the processes whose CPU time a load takes.
var cpuColumns = []string{"PostgreSQL", "API server", "bench client"}

func runImport(ctx context.Context, e *Env) (*Section, error) {
	c, d := e.cfg.Import, e.open(ctx, "import")
	db := tenant.New(e.pool(ctx, d.AppURL, 2, nil))
	res := must1(provision.CreateTenant(ctx, db, provision.Request{Name: "Bench import"}))
	spec := catalog.TableSpec{Name: "orders", Description: "Benchmark import target"}
	for i, typ := range []string{"bigint", "text", "numeric", "timestamptz", "boolean"} {
		spec.Columns = append(spec.Columns, catalog.ColumnSpec{Name: strings.Split(importColumns, ", ")[i], Type: typ})
	}
	spec.Columns[0].Nullable = new(false)
	var tbl catalog.Table
	must(db.TxAs(ctx, tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin}, func(tx tenant.Conn) (err error) {
		tbl, err = catalog.Create(ctx, tx, spec)
		return err
	}))
	dataTable := tbl.Ident().Sanitize()
	// The floor table: create_data_table's DDL without RLS, and the same
	// tenant_id default, fed by this session's setting.
	must1(d.admin.Exec(ctx, render("import-floor", nil)))
	must1(d.admin.Exec(ctx, `SELECT set_config('app.tenant_id', $1, false)`, res.Tenant.ID.String()))
	sizes := []*importSize{{rows: max(1, c.Rows/10)}, {rows: c.Rows}}
	for _, sz := range sizes {
		sz.path, sz.phases, sz.cpu = filepath.Join(e.cfg.WorkDir, fmt.Sprintf("orders-%d.csv", sz.rows)), map[string][]float64{}, map[string][]float64{}
		sz.bytes = writeOrdersCSV(sz.path, sz.rows)
		e.atEnd(func() { os.Remove(sz.path) })
	}
	for _, sz := range sizes {
		// A fresh server per size: its peaks cover this size's runs only.
		ch := e.startServer(ctx, d.AppURL, "")
		importRuns(ctx, e, d.admin, ch, ch.url+"/v1/tables/"+tbl.ID.String()+"/rows", dataTable, res.APIKey, sz)
		if err := ch.stop(); err != nil {
			return nil, fmt.Errorf("server process: %w", err)
		}
	}
	sameRows(ctx, d.admin, dataTable)
	return importSection(sizes, exportRuns(ctx, e, d.admin, res.Tenant.ID.String(), dataTable)), nil
}

// exportRun is `dbchat tenant export` of the import's tenant (to
// io.Discard) against COPY TO of its data table, seconds per run.
type exportRun struct {
	rows           int
	copyS, exportS []float64
}

func exportRuns(ctx context.Context, e *Env, admin *pgx.Conn, tenantID, dataTable string) (x exportRun) {
	must(admin.QueryRow(ctx, "SELECT count(*) FROM "+dataTable).Scan(&x.rows))
	for i := range 2 * e.cfg.Runs {
		start := time.Now()
		if i%2 == (i/2)%2 {
			must1(admin.PgConn().CopyTo(ctx, io.Discard, "COPY (SELECT "+importColumns+" FROM "+dataTable+") TO STDOUT (FORMAT csv, HEADER)"))
			x.copyS = append(x.copyS, time.Since(start).Seconds())
			continue
		}
		must1(tenantio.Export(ctx, admin, tenantID, io.Discard))
		x.exportS = append(x.exportS, time.Since(start).Seconds())
	}
	return x
}

// importRuns alternates COPY and the import of one size, sampling the
// server's memory meanwhile; the server's phases name the import's time.
func importRuns(ctx context.Context, e *Env, admin *pgx.Conn, ch *child, url, dataTable, key string, sz *importSize) {
	var mem0 memStats
	ch.get(ctx, "/debug/bench/memstats", &mem0)
	stopSampling := peakAnon(ch.pid)
	defer stopSampling()
	const outside = "outside database calls (HTTP, routing, reply)"
	for run := range e.cfg.Runs {
		for k := range 2 {
			floor := (k+run)%2 == 0
			// Each load starts from an empty table and clean buffers.
			must1(admin.Exec(ctx, "TRUNCATE "+map[bool]string{true: "bench_floor.orders", false: dataTable}[floor]+" RESTART IDENTITY"))
			must1(admin.Exec(ctx, "CHECKPOINT"))
			load, cpu0 := map[bool]string{true: "COPY", false: "import"}[floor], loadCPU(e, ch.pid)
			if floor {
				sz.copyS = append(sz.copyS, copyFloor(ctx, admin, sz))
				for i, c := range loadCPU(e, ch.pid) {
					sz.cpu[load+cpuColumns[i]] = append(sz.cpu[load+cpuColumns[i]], c-cpu0[i])
				}
				continue
			}
			var ph []phase
			ch.get(ctx, "/debug/bench/phases", &ph) // reset
			cpu0 = loadCPU(e, ch.pid)
			start := time.Now()
			postCSV(ctx, url, key, sz)
			secs := time.Since(start).Seconds()
			for i, c := range loadCPU(e, ch.pid) {
				sz.cpu[load+cpuColumns[i]] = append(sz.cpu[load+cpuColumns[i]], c-cpu0[i])
			}
			ch.get(ctx, "/debug/bench/phases", &ph)
			sz.importS = append(sz.importS, secs)
			byName := map[string]float64{outside: secs * 1000}
			for _, p := range ph {
				byName[p.Name], byName[outside] = byName[p.Name]+p.Ms, byName[outside]-p.Ms
			}
			for name, ms := range byName {
				sz.phases[name] = append(sz.phases[name], max(0, ms))
			}
		}
		e.logf("import: %d rows, run %d/%d: COPY %.0f rows/s, import %.0f rows/s", sz.rows, run+1, e.cfg.Runs,
			float64(sz.rows)/sz.copyS[run], float64(sz.rows)/sz.importS[run])
	}
	sz.anonPeak, sz.proc = stopSampling(), must1(procMemory(ch.pid))
	ch.get(ctx, "/debug/bench/memstats", &sz.mem)
	sz.allocRow = float64(sz.mem.TotalAlloc-mem0.TotalAlloc) / float64(e.cfg.Runs*sz.rows)
}

// loadCPU is the CPU seconds taken so far by PostgreSQL, the API server
// (pid) and this process, in cpuColumns' order.
func loadCPU(e *Env, pid int) []float64 {
	t := e.machine.cpuNow()
	_, server, _ := procStat(pid)
	return []float64{t.postgres.Seconds(), server.Seconds(), t.self.Seconds()}
}

// writeOrdersCSV writes n rows of a 5-column CSV: bigint, text (some quoted
// with a comma), numeric, timestamptz, boolean (some empty, i.e. NULL).
func writeOrdersCSV(path string, n int) int64 {
	f := must1(os.Create(path))
	defer f.Close()
	w, base := bufio.NewWriterSize(f, 1<<20), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	fmt.Fprintln(w, strings.ReplaceAll(importColumns, " ", ""))
	for i := 1; i <= n; i++ {
		customer := fmt.Sprintf(map[bool]string{false: "Customer %05d", true: `"Customer %05d, Ltd"`}[i%10 == 0], i%20000)
		paid := map[bool]string{true: fmt.Sprint(i%3 == 0)}[i%50 != 0] // empty: NULL
		fmt.Fprintf(w, "%d,%s,%d.%02d,%s,%s\n", i, customer, (i*37)%100000, i%100, base.Add(time.Duration(i)*time.Second).Format(time.RFC3339), paid)
	}
	must(w.Flush())
	return must1(f.Stat()).Size()
}

// copyFloor loads the CSV with COPY as the superuser; it returns seconds.
func copyFloor(ctx context.Context, admin *pgx.Conn, sz *importSize) float64 {
	f := must1(os.Open(sz.path))
	defer f.Close()
	start := time.Now()
	tag := must1(admin.PgConn().CopyFrom(ctx, f, "COPY bench_floor.orders ("+importColumns+") FROM STDIN (FORMAT csv, HEADER true)"))
	mustf(tag.RowsAffected() == int64(sz.rows), "COPY loaded %d rows, want %d", tag.RowsAffected(), sz.rows)
	return time.Since(start).Seconds()
}

// postCSV streams the CSV to the import endpoint.
func postCSV(ctx context.Context, url, key string, sz *importSize) {
	f := must1(os.Open(sz.path))
	defer f.Close()
	var out struct{ Inserted int64 }
	doJSON(ctx, http.DefaultClient, http.MethodPost, url, "Authorization: Bearer "+key, f, &out)
	mustf(out.Inserted == int64(sz.rows), "imported %d rows, want %d", out.Inserted, sz.rows)
}

// sameRows checks that the import and COPY stored the same values.
func sameRows(ctx context.Context, admin *pgx.Conn, dataTable string) {
	var a, b string
	q := `SELECT concat_ws(' ', count(*), sum(id), sum(amount), count(paid), sum(length(customer)), max(ordered_at), count(DISTINCT tenant_id)) FROM `
	must(admin.QueryRow(ctx, q+dataTable).Scan(&a))
	must(admin.QueryRow(ctx, q+"bench_floor.orders").Scan(&b))
	mustf(a == b, "the import and COPY stored different data: %s vs %s", a, b)
}

func importSection(sizes []*importSize, x exportRun) *Section {
	s, small, large := &Section{}, sizes[0], sizes[len(sizes)-1]
	var rows, mem [][]string
	for _, sz := range sizes {
		rate := func(xs []float64) dist {
			return newDist(collect(xs, func(x float64) float64 { return float64(sz.rows) / x }))
		}
		r := newDist(ratios(sz.copyS, sz.importS)) // rows/s ratio = inverse time ratio
		verdict := "(fixed costs weigh more at this size; the goal applies to the large import)"
		if sz == large {
			verdict = importGoal.verdict(r.Med)
			s.Summary = append(s.Summary, Row{fmt.Sprintf("CSV import, %s rows (rows/s)", thousands(sz.rows)), rate(sz.copyS).m("%.0f"),
				rate(sz.importS).m("%.0f"), r.f("%.2f"), importGoal.String(), verdict})
		}
		rows = append(rows, []string{thousands(sz.rows), rate(sz.copyS).f("%.0f"), rate(sz.importS).f("%.0f"), r.f("%.2f"),
			newDist(sz.copyS).f("%.2f"), newDist(sz.importS).f("%.2f"), verdict})
		mem = append(mem, []string{thousands(sz.rows), fmt.Sprintf("%.1f", mib(sz.bytes)), fmt.Sprintf("%.1f", mib(sz.proc.HWM)),
			fmt.Sprintf("%.1f", mib(sz.anonPeak)), fmt.Sprintf("%.1f", mib(sz.proc.RssFile)), fmt.Sprintf("%.1f", mib(int64(sz.mem.Sys))),
			fmt.Sprintf("%.1f", mib(int64(sz.mem.HeapSys))), fmt.Sprintf("%.0f", sz.allocRow), fmt.Sprint(sz.mem.NumGC)})
	}
	anonGrowth := float64(large.anonPeak) / float64(max(1, small.anonPeak))
	times := large.rows / max(1, small.rows)
	memVerdict := fmt.Sprintf("flat (%.2f× for %d× the rows)", anonGrowth, times)
	if anonGrowth > memoryFlat {
		memVerdict = fmt.Sprintf("**not flat**: %.2f× for %d× the rows (bound %.2f×)", anonGrowth, times, memoryFlat)
	}
	s.Summary = append(s.Summary, Row{fmt.Sprintf("server peak anonymous memory (RssAnon), %s → %s rows", thousands(small.rows), thousands(large.rows)),
		"—", fmt.Sprintf("%.1f → %.1f MiB", mib(small.anonPeak), mib(large.anonPeak)), fmt.Sprintf("%.2f", anonGrowth),
		fmt.Sprintf("flat (≤ %.2f×)", memoryFlat), memVerdict})
	exportRate := func(xs []float64) dist {
		return newDist(collect(xs, func(v float64) float64 { return float64(x.rows) / v }))
	}
	s.Summary = append(s.Summary, Row{fmt.Sprintf("tenant export, %s data rows (rows/s; floor: COPY TO)", thousands(x.rows)), exportRate(x.copyS).m("%.0f"),
		exportRate(x.exportS).m("%.0f"), newDist(ratios(x.copyS, x.exportS)).f("%.2f"), "reported", "—"})
	// Where the large import's time goes, costliest phase first.
	total, phaseMed := newDist(large.importS).Med*1000, func(n string) float64 { return newDist(large.phases[n]).Med }
	names := slices.SortedFunc(maps.Keys(large.phases), func(a, b string) int {
		return cmp.Or(cmp.Compare(phaseMed(b), phaseMed(a)), strings.Compare(a, b))
	})
	var cpu [][]string
	for _, load := range []string{"COPY", "import"} {
		row, sum := []string{load}, 0.0
		for _, c := range cpuColumns {
			m := newDist(large.cpu[load+c]).Med
			row, sum = append(row, fmt.Sprintf("%.2f", m)), sum+m
		}
		cpu = append(cpu, append(row, fmt.Sprintf("%.2f", sum), fmt.Sprintf("%.2f", newDist(map[bool][]float64{true: large.copyS, false: large.importS}[load == "COPY"]).Med)))
	}
	var phases [][]string
	for _, n := range names {
		phases = append(phases, []string{n, fmt.Sprintf("%.0f", phaseMed(n)), fmt.Sprintf("%.0f %%", phaseMed(n)/total*100)})
	}
	s.Body = render("import", map[string]any{"Goal": importGoal.bound, "Columns": importColumns, "LargeRows": large.rows, "SmallRows": small.rows,
		"LargeMiB": mib(large.bytes), "SmallMiB": mib(small.bytes), "Table": rows, "MemTable": mem, "Phases": phases, "CPU": cpu,
		"Export": s.Summary[len(s.Summary)-1], "ExportRows": thousands(x.rows), "AnonGrowth": anonGrowth, "Growth": float64(large.proc.HWM) / float64(max(1, small.proc.HWM)), "Times": times, "MemVerdict": memVerdict})
	return s
}

// Part 6: a quiet tenant's p99 while a noisy one attacks the same server
// (`dbchat-bench serve`), against its p99 unloaded; templates/noisy.md.tmpl.

var noisyGoal = goal{bound: 2.0, atMost: true}

// attack is a request sent in a loop by each of its workers; method STALL is
// an upload announcing 100 MB that sends 5 bytes, then waits for the answer.
type attack struct {
	name, method, path, body string
	workers                  int
}

// quietRequests are the quiet tenant's, sent alternately.
var quietRequests = []attack{{"", http.MethodGet, "/v1/me", "", 1}, {"", http.MethodPost, "/v1/sql", `{"sql":"SELECT 1 AS one"}`, 1}}

func runNoisy(ctx context.Context, e *Env) (*Section, error) {
	c, d, dur := e.cfg.Noisy, e.open(ctx, "noisy"), e.cfg.HTTP.Duration
	db := tenant.New(e.pool(ctx, d.AppURL, 2, nil))
	noisy, quiet := must1(provision.CreateTenant(ctx, db, provision.Request{Name: "Noisy"})), must1(provision.CreateTenant(ctx, db, provision.Request{Name: "Quiet"}))
	// The noisy tenant's large table and one of 120 text columns.
	specs := []catalog.TableSpec{{Name: "big", Columns: []catalog.ColumnSpec{{Name: "id", Type: "bigint"}}}, {Name: "wide"}}
	for i := range 120 {
		specs[1].Columns = append(specs[1].Columns, catalog.ColumnSpec{Name: fmt.Sprintf("c%03d", i), Type: "text"})
	}
	var tbl []catalog.Table
	must(db.TxAs(ctx, tenant.Identity{TenantID: noisy.Tenant.ID, UserID: noisy.Admin.ID, Role: tenant.Admin}, func(tx tenant.Conn) error {
		for _, spec := range specs {
			tbl = append(tbl, must1(catalog.Create(ctx, tx, spec)))
		}
		return nil
	}))
	e.logf("noisy: loading %s rows into the noisy tenant's large table", thousands(c.Rows))
	must1(d.admin.Exec(ctx, "SELECT set_config('app.tenant_id', '"+noisy.Tenant.ID.String()+"', false); INSERT INTO "+tbl[1].Ident().Sanitize()+" (c000, c060, c119) SELECT 'Value ' || g, 'Other ' || g, md5(g::text) FROM generate_series(1, 10000) g"))
	must1(d.admin.Exec(ctx, "INSERT INTO "+tbl[0].Ident().Sanitize()+" (id) SELECT generate_series(1, $1::bigint)", c.Rows))
	must1(d.admin.Exec(ctx, "VACUUM ANALYZE")) // alone: VACUUM cannot run in a (multi-statement) transaction
	question, rows := "How many wide rows mention", "/v1/tables/"+tbl[0].ID.String()+"/rows"
	for i := range 40 {
		question += fmt.Sprintf(map[bool]string{true: " and 'Word%02d'", false: " and Word%02d"}[i%2 == 1], i)
	}
	attacks := []attack{{"(a) 4 stalled uploads (100 MB announced, 5 bytes sent)", "STALL", rows, "", 4},
		{fmt.Sprintf("(b) 8 × GET rows at offset 900,000,000,000 (%s-row table)", thousands(c.Rows)), http.MethodGet, rows + "?limit=1&offset=900000000000", "", 8},
		{"(c) 10 × POST /v1/sql count(*) of generate_series(1, 1e11), timeout_ms 6000", http.MethodPost, "/v1/sql", `{"sql":"SELECT count(*) FROM generate_series(1,1e11)","timeout_ms":6000}`, 10},
		{"(d) 8 × POST /v1/ask naming 40 capitalised or quoted words, 120 text columns", http.MethodPost, "/v1/ask", string(must1(json.Marshal(map[string]string{"question": question + "?"}))), 8},
		{"(e) 3 × POST /v1/sql of a 200 MB value (string_agg of 1 MiB repeats)", http.MethodPost, "/v1/sql", `{"sql":"SELECT string_agg(repeat('x', 1048576), '') FROM generate_series(1, 191)"}`, 3}}
	ch := e.startServer(ctx, d.AppURL, d.QueryURL)
	for _, q := range quietRequests {
		doJSON(ctx, http.DefaultClient, q.method, ch.url+q.path, "Authorization: Bearer "+quiet.APIKey, strings.NewReader(q.body), nil)
	}
	// p99[phase][request][run] in ms (phase 0 unloaded); over all runs, the
	// quiet tenant's failures and the noisy one's answers, count by status.
	p99, failed := make([][2][]float64, 1+len(attacks)), make([]int, 1+len(attacks))
	answers := collect(failed, func(int) map[int]int { return map[int]int{} })
	var mu sync.Mutex
	var wg sync.WaitGroup
	timeQuiet(ctx, ch.url, quiet.APIKey, time.Second, new(int)) // warm-up
	for run := range e.cfg.Runs {
		for ph := range p99 {
			actx, stop := context.WithCancel(ctx)
			for i := 0; ph > 0 && i < attacks[ph-1].workers; i++ {
				wg.Go(func() {
					for actx.Err() == nil {
						if status := send(actx, attackClient, attacks[ph-1], ch.url, noisy.APIKey); actx.Err() == nil {
							mu.Lock()
							answers[ph][status]++
							mu.Unlock()
						}
					}
				})
			}
			time.Sleep(map[bool]time.Duration{true: time.Second}[ph > 0]) // the attack takes hold
			lat := timeQuiet(ctx, ch.url, quiet.APIKey, dur, &failed[ph])
			stop()
			wg.Wait()
			settle(ctx, d.admin)
			p99[ph][0], p99[ph][1] = append(p99[ph][0], pq(lat[0], 0.99)), append(p99[ph][1], pq(lat[1], 0.99))
		}
		e.logf("noisy: run %d/%d: quiet p99 (/v1/me; /v1/sql) unloaded, then under each attack: %s ms", run+1, e.cfg.Runs,
			strings.Join(collect(p99, func(x [2][]float64) string { return fmt.Sprintf("%.1f; %.1f", x[0][run], x[1][run]) }), ", "))
	}
	return noisySection(c, dur, attacks, p99, failed, answers), nil
}

// timeQuiet sends the quiet requests alternately, one at a time, for d: the
// answered ones' latencies (ms) per request; it counts the others as failed.
func timeQuiet(ctx context.Context, url, key string, d time.Duration, failed *int) (lat [2][]float64) {
	for i, end := 0, time.Now().Add(d); time.Now().Before(end) && ctx.Err() == nil; i++ {
		if t0 := time.Now(); send(ctx, http.DefaultClient, quietRequests[i%2], url, key) == http.StatusOK {
			lat[i%2] = append(lat[i%2], millis(time.Since(t0)))
		} else {
			*failed++
		}
	}
	return lat
}

var attackClient = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}}

// send sends a's request and reads the answer: its status, -1 if none.
func send(ctx context.Context, client *http.Client, a attack, url, key string) int {
	if a.method != "STALL" {
		status, err := roundTrip(ctx, client, a.method, url+a.path, "Authorization: Bearer "+key, strings.NewReader(a.body), io.Discard)
		return map[bool]int{true: status, false: -1}[err == nil]
	}
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		return -1
	}
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: dbchat\r\nAuthorization: Bearer %s\r\nContent-Type: text/csv\r\nContent-Length: 100000000\r\n\r\nid,na", a.path, key)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return -1
	}
	resp.Body.Close()
	return resp.StatusCode
}

// settle waits, at most 30 s, until no backend of the database but this
// one is busy (cut statements cancelled, cut imports rolled back).
func settle(ctx context.Context, admin *pgx.Conn) {
	for i, n := 0, 1; n > 0 && i < 300; i++ {
		time.Sleep(100 * time.Millisecond)
		must(admin.QueryRow(ctx, render("busy-backends", nil)).Scan(&n))
	}
}

func noisySection(c NoisyConfig, d time.Duration, attacks []attack, p99 [][2][]float64, failed []int, answers []map[int]int) *Section {
	s, rows := &Section{}, [][]string{}
	for ph, p := range p99 {
		me, sql := newDist(ratios(p[0], p99[0][0])), newDist(ratios(p[1], p99[0][1]))
		worst := ratios(p[0], p99[0][0]) // per run, the worse request's
		for i, x := range ratios(p[1], p99[0][1]) {
			worst[i] = max(worst[i], x)
		}
		name, verdict := "unloaded", noisyGoal.verdict(newDist(worst).Med)
		if ph == 0 {
			me, sql, verdict = dist{}, dist{}, ""
		} else {
			name = attacks[ph-1].name
			s.Summary = append(s.Summary, Row{"quiet p99 (/v1/me; /v1/sql) under " + name, "unloaded " + newDist(p99[0][0]).m("%.2f") + "; " +
				newDist(p99[0][1]).m("%.2f ms"), newDist(p[0]).m("%.2f") + "; " + newDist(p[1]).m("%.2f ms"), newDist(worst).f("%.2f") + " (worse)", noisyGoal.String(), verdict})
		}
		tally := collect(slices.Sorted(maps.Keys(answers[ph])), func(st int) string {
			return fmt.Sprintf("%s × %d", map[bool]string{true: "no answer", false: fmt.Sprint(st)}[st < 0], answers[ph][st])
		})
		rows = append(rows, []string{name, newDist(p[0]).f("%.2f"), newDist(p[1]).f("%.2f"), me.f("%.2f"), sql.f("%.2f"), fmt.Sprint(failed[ph]), strings.Join(tally, ", "), verdict})
	}
	s.Body = render("noisy", map[string]any{"Goal": noisyGoal.bound, "C": c, "D": d, "Table": rows})
	return s
}

// Part 7: the http part's load against `dbchat-bench serve` at 80 % of the
// throughput measured at its start, for BENCH_SOAK; templates/soak.md.tmpl.

var soakGoal = goal{bound: 1.10, atMost: true}

const soakSlice = 30 * time.Second

// soakState is the server's and the database's resources at one moment.
type soakState struct{ rss, goroutines, conns int64 }

func runSoak(ctx context.Context, e *Env) (*Section, error) {
	c, h, d := e.cfg.Soak, e.cfg.HTTP, e.open(ctx, "soak")
	e.logf("soak: seeding %d tenants with %d tables and %d history rows each", h.Tenants, h.Tables, h.RowsPerTenant)
	_, key := seedHTTP(ctx, d.admin, tenant.New(e.pool(ctx, d.AppURL, 2, nil)), h)
	ch := e.startServer(ctx, d.AppURL, d.QueryURL)
	urls, header := ch.url+"/v1/me "+ch.url+"/v1/tables "+ch.url+"/v1/history?limit=50", "Authorization: Bearer "+key
	e.runLoad(ctx, urls, header, h.Concurrency, h.Warmup)
	peak := e.runLoad(ctx, urls, header, h.Concurrency, h.Duration)
	state := func() soakState {
		time.Sleep(time.Second) // the load generator's connections close
		var m memStats
		ch.get(ctx, "/debug/bench/memstats", &m)
		pm, st := must1(procMemory(ch.pid)), soakState{goroutines: int64(m.Goroutines)}
		st.rss = pm.RssAnon + pm.RssFile
		must(d.admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&st.conns))
		return st
	}
	start, n := state(), max(1, int(c/soakSlice))
	e.logf("soak: peak %.0f req/s; %d slices of %s at %.0f req/s", peak.RPS, n, c/time.Duration(n), 0.8*peak.RPS)
	var slices []loadResult
	var under []int64 // the server's peak anonymous memory during each slice
	for i := range n {
		stop := peakAnon(ch.pid)
		slices = append(slices, e.runLoad(ctx, urls, header, h.Concurrency, c/time.Duration(n), 0.8*peak.RPS))
		under = append(under, stop())
		e.logf("soak: slice %d/%d: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d errors", i+1, n, slices[i].RPS, slices[i].P50us/1000, slices[i].P99us/1000, slices[i].Errors)
	}
	return soakSection(c, h, peak, slices, under, start, state()), nil
}

func soakSection(c time.Duration, h HTTPConfig, peak loadResult, slices []loadResult, under []int64, start, end soakState) *Section {
	var rows [][]string
	errs, first := int64(0), ""
	for i, sl := range slices {
		errs, first = errs+sl.Errors, cmp.Or(first, sl.FirstError)
		rows = append(rows, []string{fmt.Sprint(i + 1), fmt.Sprintf("%.0f", sl.RPS), fmt.Sprintf("%.2f", sl.P50us/1000), fmt.Sprintf("%.2f", sl.P99us/1000),
			fmt.Sprintf("%.1f", mib(under[i])), fmt.Sprint(sl.Errors)})
	}
	p0, p1 := slices[0].P99us/1000, slices[len(slices)-1].P99us/1000
	rss := float64(end.rss) / float64(start.rss)
	errVerdict := map[bool]string{true: "met", false: fmt.Sprintf("**missed**: %d failed (first: %s)", errs, first)}[errs == 0]
	grew := map[bool]string{true: "steady", false: "**grew**"}[end.goroutines <= start.goroutines && end.conns <= start.conns]
	s := &Section{Summary: []Row{
		{"p99, last vs first slice", fmt.Sprintf("%.2f ms", p0), fmt.Sprintf("%.2f ms", p1), fmt.Sprintf("%.2f", p1/p0), soakGoal.String(), soakGoal.verdict(p1 / p0)},
		{"server RSS, end vs start", fmt.Sprintf("%.1f MiB", mib(start.rss)), fmt.Sprintf("%.1f MiB", mib(end.rss)), fmt.Sprintf("%.2f", rss), soakGoal.String(), soakGoal.verdict(rss)},
		{fmt.Sprintf("server anonymous RSS under the c=%d load, peak of the last slice vs the first", h.Concurrency), fmt.Sprintf("%.1f MiB", mib(under[0])),
			fmt.Sprintf("%.1f MiB", mib(under[len(under)-1])), fmt.Sprintf("%.2f", float64(under[len(under)-1])/float64(under[0])), soakGoal.String(),
			soakGoal.verdict(float64(under[len(under)-1]) / float64(under[0]))},
		{"failed requests", "—", fmt.Sprint(errs), "—", "0", errVerdict},
		{"server goroutines; PostgreSQL connections, end vs start", fmt.Sprintf("%d; %d", start.goroutines, start.conns), fmt.Sprintf("%d; %d", end.goroutines, end.conns), "—", "not growing", grew},
	}}
	s.Body = render("soak", map[string]any{"Duration": c, "H": h, "Peak": peak.RPS, "Rate": 0.8 * peak.RPS, "Summary": s.Summary,
		"Slices": rows})
	return s
}
