package bench

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/audit"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Part 9: data tables at scale. Every tenant's data tables are real tables
// in its own schema, with two roles per tenant, a policy per table and
// column grants, so PostgreSQL's catalogs grow with tenants × tables. The
// part grows one database step by step (CatalogConfig.Steps), provisioning
// every tenant and table through the real functions (provision.CreateTenant,
// catalog.Create), and at each step times what an operator and a tenant
// feel; templates/catalog.md.tmpl.

// CatalogConfig sizes part 9: the tenant count after each step, data tables
// per tenant, rows per table, samples per timed figure and the provisioning
// workers. BENCH_CATALOG_STEPS=1000,5000 overrides the steps.
type CatalogConfig struct {
	Steps                          []int
	Tables, Rows, Samples, Workers int
	Timeout                        time.Duration // one audit statement or report
}

// catalogTables are the data tables every tenant gets, all of one shape.
var catalogTables = []string{"customers", "orders", "products", "invoices", "events"}

// catalogColumns is that shape (catalog.ColumnSpec: name and type).
var catalogColumns = [][2]string{{"id", "bigint"}, {"name", "text"}, {"category", "text"}, {"amount", "numeric"}, {"created", "date"}}

// catalogShards are the query login counts the tenants are split across
// for the figures of a split database (DBCHAT_QUERY_SHARDS; migration
// 00031): serve's default pool (8) and twice it. The split sandbox has one
// connection per login (DBCHAT_SANDBOX_CONNS), so that a warm statement
// finds its login's connection once every login has one.
var catalogShards = []int{8, 16}

// catalogQuery is the typical sandbox statement timed at every step.
const catalogQuery = `SELECT category, count(*) AS n, sum(amount) AS total FROM orders WHERE created >= DATE '2024-03-01' GROUP BY category ORDER BY total DESC LIMIT 10`

// catalogCatalogs are the system catalogs whose size the part reports.
var catalogCatalogs = []string{"pg_class", "pg_attribute", "pg_type", "pg_depend", "pg_shdepend", "pg_authid", "pg_auth_members",
	"pg_constraint", "pg_index", "pg_policy", "pg_attrdef", "pg_sequence", "pg_namespace", "pg_description", "pg_init_privs"}

// catalogTenant is a provisioned tenant.
type catalogTenant struct{ id tenant.Identity }

// catalogStep is what one step measured; times in ms.
type catalogStep struct {
	Tenants, Tables, Roles int
	SeedTook               time.Duration
	PerTenant              []float64          // one tenant + its tables + rows, during this step
	CreateTable            []float64          // one more table through catalog.Create
	SandboxWarm            []float64          // tenant.Sandbox.Query on a warm connection
	SandboxCold            []float64          // a new dbchat_query connection and its first statement
	AfterRoleChange        []float64          // a warm connection's statement after a role of the cluster changed
	Splits                 map[int]*splitStep // by query login count (catalogShards)
	Plan, Exec             []float64          // EXPLAIN (ANALYZE) planning and execution inside PostgreSQL
	Migrate                []float64          // dbchat migrate, idempotent
	Audit                  []float64          // audit.Collect as dbchat_auditor (dbchat audit without the probe)
	AuditErr               string
	Views                  map[string][]float64 // SELECT count(*) FROM audit.<view>
	ViewErr                map[string]string
	ViewRows               map[string]int64
	Sizes                  map[string]int64 // bytes per catalog, and "database"
	Dead                   map[string]int64 // n_dead_tup per catalog before the VACUUM
	AutoVacuums            map[string]int64 // autovacuum runs per catalog so far
	Vacuum                 float64          // VACUUM pg_catalog.pg_attribute
	Before                 float64          // audit.findings' query as before migration 00022 (JIT allowed)
	BeforeErr              string
}

func runCatalog(ctx context.Context, e *Env) (*Section, error) {
	c := e.cfg.Catalog
	if v := os.Getenv("BENCH_CATALOG_STEPS"); v != "" {
		c.Steps = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			mustf(err == nil && n > 0 && (len(c.Steps) == 0 || n > c.Steps[len(c.Steps)-1]), "BENCH_CATALOG_STEPS: increasing positive tenant counts, not %q", v)
			c.Steps = append(c.Steps, n)
		}
	}
	d := e.open(ctx, "catalog")
	name := "dbchat_bench_catalog"
	// Tenant roles are cluster-wide and outlive the database: drop ours when
	// the part ends so that the next run starts from the same catalogs.
	var tenants []catalogTenant
	var tmu sync.Mutex
	if !e.cfg.Keep {
		e.atEnd(func() {
			e.dropDatabase(name)
			tmu.Lock()
			defer tmu.Unlock()
			dropTenantRoles(e, tenants)
		})
	}
	var preRoles int
	must(d.admin.QueryRow(ctx, `SELECT count(*) FROM pg_roles WHERE rolname ~ '^t_[0-9a-f]{32}(_m)?$'`).Scan(&preRoles))
	db := tenant.New(e.pool(ctx, d.AppURL, int32(c.Workers+1), nil))
	box := must1(tenant.NewSandbox(ctx, d.QueryURL, 2))
	e.atEnd(box.Close)
	rng := rand.New(rand.NewPCG(8, 8))
	var steps []*catalogStep
	for si, target := range c.Steps {
		st := &catalogStep{Tenants: target, Views: map[string][]float64{}, ViewErr: map[string]string{}, ViewRows: map[string]int64{}}
		t0 := time.Now()
		st.PerTenant = provisionCatalog(ctx, e, db, c, &tenants, &tmu, target)
		st.SeedTook = time.Since(t0)
		e.logf("catalog: %d tenants provisioned in %s (one tenant with %d tables: p50 %.0f ms)", target, st.SeedTook.Round(time.Second), c.Tables, pq(st.PerTenant, 0.5))
		measureCatalogStep(ctx, e, d, db, box, c, tenants, st, si, rng)
		steps = append(steps, st)
	}
	return catalogSection(c, preRoles, steps), nil
}

// provisionCatalog creates tenants until there are target, each with its
// tables and rows through the real path, on c.Workers connections; it
// returns the milliseconds each tenant took.
func provisionCatalog(ctx context.Context, e *Env, db *tenant.DB, c CatalogConfig, tenants *[]catalogTenant, mu *sync.Mutex, target int) []float64 {
	next := atomic.Int64{}
	next.Store(int64(len(*tenants)))
	var ms []float64
	var wg sync.WaitGroup
	errs := make([]error, c.Workers)
	lastLog := time.Now()
	for w := range c.Workers {
		wg.Go(func() {
			for ctx.Err() == nil && errs[w] == nil {
				i := int(next.Add(1))
				if i > target {
					return
				}
				t0 := time.Now()
				id, err := provisionTenant(ctx, db, c, i)
				took := millis(time.Since(t0))
				mu.Lock()
				if err == nil {
					*tenants = append(*tenants, catalogTenant{id: id})
					ms = append(ms, took)
				}
				if time.Since(lastLog) > 30*time.Second {
					lastLog = time.Now()
					e.logf("catalog: %d/%d tenants", len(*tenants), target)
				}
				mu.Unlock()
				errs[w] = err
			}
		})
	}
	wg.Wait()
	must(cmp.Or(ctx.Err(), errors.Join(errs...)))
	return ms
}

// provisionTenant creates tenant number i: provision.CreateTenant (the
// tenant, its roles, admin, key and model), then its tables and rows in one
// transaction as its admin, as POST /v1/tables and an import would.
func provisionTenant(ctx context.Context, db *tenant.DB, c CatalogConfig, i int) (tenant.Identity, error) {
	res, err := provision.CreateTenant(ctx, db, provision.Request{Name: fmt.Sprintf("Catalog bench %06d", i)})
	if err != nil {
		return tenant.Identity{}, err
	}
	id := tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin}
	return id, db.TxAs(ctx, id, func(tx tenant.Conn) error {
		for ti := range c.Tables {
			t, err := catalog.Create(ctx, tx, catalogSpec(catalogTables[ti%len(catalogTables)]+map[bool]string{true: strconv.Itoa(ti)}[ti >= len(catalogTables)]))
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO `+t.Ident().Sanitize()+` (id, name, category, amount, created)
				SELECT g, 'item ' || g, (ARRAY['a', 'b', 'c', 'd', 'e'])[1 + g % 5], (g * 7 % 1000) / 10.0, DATE '2024-01-01' + g % 365
				FROM generate_series(1, $1::int) g`, c.Rows); err != nil {
				return err
			}
		}
		return nil
	})
}

func catalogSpec(name string) catalog.TableSpec {
	spec := catalog.TableSpec{Name: name, Description: "Catalog benchmark table " + name}
	for _, col := range catalogColumns {
		spec.Columns = append(spec.Columns, catalog.ColumnSpec{Name: col[0], Type: col[1], Description: "column " + col[0]})
	}
	return spec
}

// measureCatalogStep takes every figure of one step.
func measureCatalogStep(ctx context.Context, e *Env, d *benchDB, db *tenant.DB, box *tenant.Sandbox, c CatalogConfig,
	tenants []catalogTenant, st *catalogStep, si int, rng *rand.Rand) {
	// One more table, in a random tenant's own transaction.
	for k := range c.Samples {
		t := tenants[rng.IntN(len(tenants))]
		t0 := time.Now()
		must(db.TxAs(ctx, t.id, func(tx tenant.Conn) error {
			_, err := catalog.Create(ctx, tx, catalogSpec(fmt.Sprintf("extra_%d_%d", si, k)))
			return err
		}))
		st.CreateTable = append(st.CreateTable, millis(time.Since(t0)))
	}
	must(d.admin.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname ~ '^t_[0-9a-f]{32}$'), (SELECT count(*) FROM pg_roles WHERE rolname ~ '^t_[0-9a-f]{32}(_m)?$')`).
		Scan(&st.Tables, &st.Roles))
	e.logf("catalog: %d tenants: create table p50 %.0f ms", st.Tenants, pq(st.CreateTable, 0.5))

	// The sandbox statement: through tenant.Sandbox (warm pool), and inside
	// PostgreSQL with EXPLAIN ANALYZE under the same prelude, each on a
	// random tenant; then new connections' first statements.
	for range c.Samples {
		t := tenants[rng.IntN(len(tenants))]
		t0 := time.Now()
		must(box.Query(ctx, t.id.TenantID, catalogQuery, tenant.Limits{MaxRows: 100, Timeout: 30 * time.Second}, func(rows pgx.Rows) error { return drain(rows, nil) }))
		st.SandboxWarm = append(st.SandboxWarm, millis(time.Since(t0)))
	}
	qconn := must1(pgx.Connect(ctx, d.QueryURL))
	for range c.Samples {
		t := tenants[rng.IntN(len(tenants))]
		plan, exec := explainSandbox(ctx, qconn, t.id.TenantID)
		st.Plan, st.Exec = append(st.Plan, plan), append(st.Exec, exec)
	}
	qconn.Close(ctx)
	for range max(3, c.Samples/4) {
		t := tenants[rng.IntN(len(tenants))]
		t0 := time.Now()
		conn := must1(pgx.Connect(ctx, d.QueryURL))
		_ = sandboxTx(ctx, conn, t.id.TenantID, func() error { return drain(conn.Query(ctx, catalogQuery, pgx.QueryExecModeSimpleProtocol)) })
		st.SandboxCold = append(st.SandboxCold, millis(time.Since(t0)))
		conn.Close(ctx)
	}
	st.AfterRoleChange = afterRoleChange(ctx, d, box, tenants, c.Samples, rng)
	e.logf("catalog: %d tenants: sandbox warm p50 %.1f ms, cold %.1f ms, after a role change %.1f ms, planning %.2f ms",
		st.Tenants, pq(st.SandboxWarm, 0.5), pq(st.SandboxCold, 0.5), pq(st.AfterRoleChange, 0.5), pq(st.Plan, 0.5))

	sum := sha256.Sum256([]byte("dbchat-test-app:" + e.cfg.AdminURL))
	pw := hex.EncodeToString(sum[:16])
	st.Splits = map[int]*splitStep{}
	for _, n := range catalogShards {
		st.Splits[n] = measureSplit(ctx, e, d, tenants, st.Tenants, n, c.Samples, rng, pw)
	}

	// dbchat migrate with nothing to apply: its privileged steps still run.
	for r := 0; r < min(3, e.cfg.Runs) && (r == 0 || st.Migrate[0] < catalogRepeatMS); r++ {
		t0 := time.Now()
		must(migrate.Run(ctx, migrate.Options{AdminURL: d.AdminURL, Passwords: map[string]string{migrate.AppRole: pw, migrate.QueryRole: pw}}))
		st.Migrate = append(st.Migrate, millis(time.Since(t0)))
	}
	e.logf("catalog: %d tenants: migrate %.0f ms", st.Tenants, pq(st.Migrate, 0.5))

	// The audit as dbchat_auditor: the report, then each view in psql's way.
	aconn := must1(pgx.Connect(ctx, d.AdminURL))
	defer aconn.Close(context.Background())
	must1(aconn.Exec(ctx, fmt.Sprintf(`SET ROLE %s; SET statement_timeout = %d`, migrate.AuditorRole, c.Timeout.Milliseconds())))
	for r := 0; r < min(3, e.cfg.Runs) && (r == 0 || st.Audit[0] < catalogRepeatMS); r++ {
		actx, cancel := context.WithTimeout(ctx, 2*c.Timeout)
		t0 := time.Now()
		_, err := audit.Collect(actx, aconn)
		cancel()
		if err != nil {
			st.AuditErr = timeoutText(err, c.Timeout)
			break
		}
		st.Audit = append(st.Audit, millis(time.Since(t0)))
	}
	e.logf("catalog: %d tenants: audit %.0f ms %s", st.Tenants, pq(st.Audit, 0.5), st.AuditErr)
	// Before migration 00022 the lints were the view's own query, which
	// PostgreSQL compiled with JIT once the catalogs made it look costly:
	// the same text as a plain statement shows what that cost.
	var lintSQL string
	if aconn.QueryRow(ctx, `SELECT prosrc FROM pg_proc WHERE oid = to_regprocedure('audit.findings_rows()')`).Scan(&lintSQL) == nil {
		t0 := time.Now()
		if err := drain(aconn.Query(ctx, lintSQL, pgx.QueryExecModeSimpleProtocol)); err != nil {
			st.BeforeErr = timeoutText(err, c.Timeout)
		} else {
			st.Before = millis(time.Since(t0))
		}
		e.logf("catalog: %d tenants: the lint query with JIT as before 00022: %.0f ms %s", st.Tenants, st.Before, st.BeforeErr)
	}
	views := must1(pgx.CollectRows(must1(aconn.Query(ctx, `SELECT viewname::text FROM pg_views WHERE schemaname = 'audit' ORDER BY 1`)), pgx.RowTo[string]))
	for _, v := range views {
		for r := 0; r < min(3, e.cfg.Runs) && (r == 0 || st.Views[v][0] < catalogRepeatMS); r++ {
			// Every row fetched, as psql would: count(*) lets the planner
			// skip the columns (rls_coverage's lints) it does not need.
			var n int64
			t0 := time.Now()
			rows, _ := aconn.Query(ctx, `SELECT * FROM audit.`+pgx.Identifier{v}.Sanitize(), pgx.QueryExecModeSimpleProtocol)
			for rows.Next() {
				n++
			}
			if rows.Close(); rows.Err() != nil {
				st.ViewErr[v] = timeoutText(rows.Err(), c.Timeout)
				break
			}
			st.Views[v], st.ViewRows[v] = append(st.Views[v], millis(time.Since(t0))), n
		}
		e.logf("catalog: %d tenants: audit.%s %.0f ms (%d rows) %s", st.Tenants, v, pq(st.Views[v], 0.5), st.ViewRows[v], st.ViewErr[v])
	}

	// Catalog sizes, dead tuples and autovacuum runs, then a VACUUM.
	st.Sizes, st.Dead, st.AutoVacuums = map[string]int64{}, map[string]int64{}, map[string]int64{}
	rows, _ := d.admin.Query(ctx, `SELECT c, pg_total_relation_size(('pg_catalog.' || c)::regclass),
			coalesce(s.n_dead_tup, 0), coalesce(s.autovacuum_count, 0)
		FROM unnest($1::text[]) c LEFT JOIN pg_stat_all_tables s ON s.relid = ('pg_catalog.' || c)::regclass
		UNION ALL SELECT 'database', pg_database_size(current_database()), 0, 0`, catalogCatalogs)
	var rel string
	var size, dead, av int64
	must1(pgx.ForEachRow(rows, []any{&rel, &size, &dead, &av}, func() error {
		st.Sizes[rel], st.Dead[rel], st.AutoVacuums[rel] = size, dead, av
		return nil
	}))
	t0 := time.Now()
	must1(d.admin.Exec(ctx, `VACUUM pg_catalog.pg_attribute`))
	st.Vacuum = millis(time.Since(t0))
}

// catalogShardsText is catalogShards in words: "8 and 16".
func catalogShardsText() string {
	var words []string
	for _, n := range catalogShards {
		words = append(words, strconv.Itoa(n))
	}
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// splitStep is what a step measured with the tenants split across n query
// logins; times in ms.
type splitStep struct {
	Split           float64   // dbchat migrate with DBCHAT_QUERY_SHARDS=n, from 1
	Warm            []float64 // the sandbox statement, warm connection
	Cold            []float64 // a new connection as the tenant's login and its first statement
	AfterRoleChange []float64 // a warm connection's statement after a role of the cluster changed
}

// afterRoleChange times box's statement for a random tenant right after a
// role of the cluster changed (a role created and dropped, as a tenant's
// creation elsewhere changes them): PostgreSQL 15 then rebuilds, in the
// next SET ROLE, the list of the roles the session's login belongs to.
func afterRoleChange(ctx context.Context, d *benchDB, box *tenant.Sandbox, tenants []catalogTenant, samples int, rng *rand.Rand) []float64 {
	var out []float64
	for range samples {
		must1(d.admin.Exec(ctx, `CREATE ROLE dbchat_bench_churn NOLOGIN; DROP ROLE dbchat_bench_churn`))
		t := tenants[rng.IntN(len(tenants))]
		t0 := time.Now()
		must(box.Query(ctx, t.id.TenantID, catalogQuery, tenant.Limits{MaxRows: 100, Timeout: 30 * time.Second}, func(rows pgx.Rows) error { return drain(rows, nil) }))
		out = append(out, millis(time.Since(t0)))
	}
	return out
}

// measureSplit splits the tenants across n query logins (dbchat migrate
// with DBCHAT_QUERY_SHARDS), takes the sandbox's figures again with a
// sandbox of n connections that logs in as each tenant's login, and puts
// every tenant back on dbchat_query for the rest of the part.
func measureSplit(ctx context.Context, e *Env, d *benchDB, tenants []catalogTenant, step, n, samples int, rng *rand.Rand, pw string) *splitStep {
	sp := &splitStep{}
	query := func(box *tenant.Sandbox, id uuid.UUID) {
		must(box.Query(ctx, id, catalogQuery, tenant.Limits{MaxRows: 100, Timeout: 30 * time.Second}, func(rows pgx.Rows) error { return drain(rows, nil) }))
	}
	pws := map[string]string{migrate.AppRole: pw, migrate.QueryRole: pw}
	t0 := time.Now()
	must(migrate.Run(ctx, migrate.Options{AdminURL: d.AdminURL, Passwords: pws, QueryShards: n}))
	sp.Split = millis(time.Since(t0))
	box := must1(tenant.NewSandbox(ctx, d.QueryURL, int32(n)))
	must(box.SplitLogins(n))
	// Warm: one statement per login first (a tenant of each).
	warmed := map[string]bool{}
	for _, t := range tenants {
		if login := tenant.QueryLogin(t.id.TenantID, n); !warmed[login] {
			warmed[login] = true
			query(box, t.id.TenantID)
		}
	}
	for range samples {
		t := tenants[rng.IntN(len(tenants))]
		t0 := time.Now()
		query(box, t.id.TenantID)
		sp.Warm = append(sp.Warm, millis(time.Since(t0)))
	}
	cfg := must1(pgx.ParseConfig(d.QueryURL))
	for range max(3, samples/4) {
		t := tenants[rng.IntN(len(tenants))]
		login := cfg.Copy()
		login.User = tenant.QueryLogin(t.id.TenantID, n)
		t0 := time.Now()
		conn := must1(pgx.ConnectConfig(ctx, login))
		must(sandboxTx(ctx, conn, t.id.TenantID, func() error { return drain(conn.Query(ctx, catalogQuery, pgx.QueryExecModeSimpleProtocol)) }))
		sp.Cold = append(sp.Cold, millis(time.Since(t0)))
		conn.Close(ctx)
	}
	sp.AfterRoleChange = afterRoleChange(ctx, d, box, tenants, samples, rng)
	box.Close()
	must(migrate.Run(ctx, migrate.Options{AdminURL: d.AdminURL, Passwords: pws, QueryShards: 1}))
	e.logf("catalog: %d tenants split across %d query logins in %.0f ms: sandbox warm p50 %.1f ms, cold %.1f ms, after a role change %.1f ms",
		step, n, sp.Split, pq(sp.Warm, 0.5), pq(sp.Cold, 0.5), pq(sp.AfterRoleChange, 0.5))
	return sp
}

// catalogRepeatMS: a figure that took longer once is not repeated.
const catalogRepeatMS = 30_000

// timeoutText words a statement that ran out of time.
func timeoutText(err error, limit time.Duration) string {
	if strings.Contains(err.Error(), "statement timeout") || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("> %s (timed out)", limit)
	}
	return err.Error()
}

// sandboxTx runs fn inside the sandbox's transaction prelude for tenantID
// (tenant.Sandbox.Query's, as a member: role t_<hex>_m), then rolls back.
func sandboxTx(ctx context.Context, conn *pgx.Conn, tenantID uuid.UUID, fn func() error) error {
	_, err := conn.Exec(ctx, fmt.Sprintf(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET LOCAL ROLE %s;
		SET LOCAL app.tenant_id = '%s'; SET LOCAL search_path = %s`,
		pgx.Identifier{tenant.MemberRole(tenantID)}.Sanitize(), tenantID, pgx.Identifier{tenant.Schema(tenantID)}.Sanitize()))
	if err == nil {
		err = fn()
	}
	_, rerr := conn.Exec(ctx, `ROLLBACK`)
	return cmp.Or(err, rerr)
}

// explainSandbox is catalogQuery's planning and execution time in ms.
func explainSandbox(ctx context.Context, conn *pgx.Conn, tenantID uuid.UUID) (plan, exec float64) {
	var out []byte
	must(sandboxTx(ctx, conn, tenantID, func() error {
		return conn.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+catalogQuery, pgx.QueryExecModeSimpleProtocol).Scan(&out)
	}))
	var res []struct {
		Planning  float64 `json:"Planning Time"`
		Execution float64 `json:"Execution Time"`
	}
	must(json.Unmarshal(out, &res))
	mustf(len(res) == 1, "EXPLAIN: %s", out)
	return res[0].Planning, res[0].Execution
}

// dropTenantRoles drops the roles of the part's tenants (their database
// is gone), a thousand per statement.
func dropTenantRoles(e *Env, tenants []catalogTenant) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var names []string
	for _, t := range tenants {
		names = append(names, pgx.Identifier{tenant.Schema(t.id.TenantID)}.Sanitize(), pgx.Identifier{tenant.MemberRole(t.id.TenantID)}.Sanitize())
	}
	for chunk := range slices.Chunk(names, 1000) {
		if err := e.exec(ctx, "DROP ROLE IF EXISTS "+strings.Join(chunk, ", ")); err != nil {
			e.logf("catalog: dropping tenant roles: %v", err)
			return
		}
	}
}

// growthClass names how a figure grew against the tenants: the exponent k
// of figure ∝ tenants^k between the first and the last step.
func growthClass(ratio, tenants float64) (float64, string) {
	k := math.Log(ratio) / math.Log(tenants)
	switch {
	case math.IsNaN(k) || math.IsInf(k, 0):
		return k, "n/a"
	case k < 0.2:
		return k, "flat"
	case k < 0.8:
		return k, "sublinear"
	case k <= 1.25:
		return k, "linear"
	}
	return k, "**superlinear**"
}

// catalogRow is one figure across the steps: its value at each step and
// how it grew.
func catalogRow(name string, steps []*catalogStep, format string, v func(*catalogStep) (float64, string)) []string {
	row := []string{name}
	var first, last float64
	for i, st := range steps {
		x, note := v(st)
		row = append(row, cmp.Or(note, fmt.Sprintf(format, x)))
		if i == 0 {
			first = x
		}
		last = x
	}
	if note := row[len(row)-1]; len(steps) < 2 || strings.HasPrefix(note, ">") || strings.HasPrefix(row[1], ">") {
		return append(row, "—", "—")
	}
	tr := float64(steps[len(steps)-1].Tenants) / float64(steps[0].Tenants)
	k, class := growthClass(last/first, tr)
	if strings.Contains(name, "(ms") && last < 5 && class != "flat" {
		class += " (under 5 ms: noise)"
	}
	return append(row, fmt.Sprintf("%.2f× (k = %.2f)", last/first, k), class)
}

func catalogSection(c CatalogConfig, preRoles int, steps []*catalogStep) *Section {
	med := func(xs []float64) float64 { return pq(xs, 0.5) }
	timeRows := [][]string{
		catalogRow("one tenant + its tables and rows, provisioning (ms, p50)", steps, "%.0f", func(s *catalogStep) (float64, string) { return med(s.PerTenant), "" }),
		catalogRow("create one more table, catalog.Create (ms, p50)", steps, "%.1f", func(s *catalogStep) (float64, string) { return med(s.CreateTable), "" }),
		catalogRow("create one more table (ms, p95)", steps, "%.1f", func(s *catalogStep) (float64, string) { return pq(s.CreateTable, 0.95), "" }),
		catalogRow("sandbox statement, warm connection (ms, p50)", steps, "%.2f", func(s *catalogStep) (float64, string) { return med(s.SandboxWarm), "" }),
		catalogRow("sandbox statement, warm connection (ms, p95)", steps, "%.2f", func(s *catalogStep) (float64, string) { return pq(s.SandboxWarm, 0.95), "" }),
		catalogRow("planning time, EXPLAIN ANALYZE (ms, p50)", steps, "%.3f", func(s *catalogStep) (float64, string) { return med(s.Plan), "" }),
		catalogRow("execution time, EXPLAIN ANALYZE (ms, p50)", steps, "%.3f", func(s *catalogStep) (float64, string) { return med(s.Exec), "" }),
		catalogRow("new dbchat_query connection + first statement (ms, p50)", steps, "%.1f", func(s *catalogStep) (float64, string) { return med(s.SandboxCold), "" }),
		catalogRow("sandbox statement after a role of the cluster changed (ms, p50)", steps, "%.1f", func(s *catalogStep) (float64, string) { return med(s.AfterRoleChange), "" }),
		catalogRow("`dbchat migrate`, nothing to apply (ms)", steps, "%.0f", func(s *catalogStep) (float64, string) { return med(s.Migrate), "" }),
		catalogRow("`dbchat audit` report, audit.Collect (ms)", steps, "%.0f", func(s *catalogStep) (float64, string) { return med(s.Audit), s.AuditErr }),
	}
	for _, n := range catalogShards {
		split := func(f func(*splitStep) float64) func(*catalogStep) (float64, string) {
			return func(s *catalogStep) (float64, string) { return f(s.Splits[n]), "" }
		}
		name := fmt.Sprintf("split across %d query logins: ", n)
		rows := [][]string{
			catalogRow(name+"sandbox statement, warm connection (ms, p50)", steps, "%.2f", split(func(s *splitStep) float64 { return med(s.Warm) })),
			catalogRow(name+"sandbox statement, warm connection (ms, p95)", steps, "%.2f", split(func(s *splitStep) float64 { return pq(s.Warm, 0.95) })),
			catalogRow(name+"new connection as the tenant's login + first statement (ms, p50)", steps, "%.1f", split(func(s *splitStep) float64 { return med(s.Cold) })),
			catalogRow(name+"sandbox statement after a role of the cluster changed (ms, p50)", steps, "%.1f", split(func(s *splitStep) float64 { return med(s.AfterRoleChange) })),
			catalogRow(fmt.Sprintf("`dbchat migrate` with DBCHAT_QUERY_SHARDS=%d from 1 (ms)", n), steps, "%.0f", split(func(s *splitStep) float64 { return s.Split })),
		}
		// After the one-login figures they repeat, before migrate's.
		at := slices.IndexFunc(timeRows, func(r []string) bool { return strings.HasPrefix(r[0], "`dbchat migrate`, nothing") })
		timeRows = slices.Insert(timeRows, at, rows...)
	}
	var views []string
	for v := range steps[len(steps)-1].ViewRows {
		views = append(views, v)
	}
	for v := range steps[len(steps)-1].ViewErr {
		views = append(views, v)
	}
	slices.Sort(views)
	views = slices.Compact(views)
	for _, v := range views {
		timeRows = append(timeRows, catalogRow("`SELECT * FROM audit."+v+"`, all rows (ms)", steps, "%.0f",
			func(s *catalogStep) (float64, string) { return med(s.Views[v]), s.ViewErr[v] }))
	}
	timeRows = append(timeRows, catalogRow("audit.findings' query as a plain statement, JIT allowed: as before migration 00022 (ms)", steps, "%.0f",
		func(s *catalogStep) (float64, string) { return s.Before, s.BeforeErr }))
	timeRows = append(timeRows, catalogRow("`VACUUM pg_attribute` (ms)", steps, "%.0f", func(s *catalogStep) (float64, string) { return s.Vacuum, "" }))
	var sizeRows [][]string
	for _, rel := range append([]string{"database"}, catalogCatalogs...) {
		sizeRows = append(sizeRows, catalogRow(rel+" (MiB)", steps, "%.1f", func(s *catalogStep) (float64, string) { return mib(s.Sizes[rel]), "" }))
	}
	var vacRows [][]string
	for _, rel := range []string{"pg_class", "pg_attribute", "pg_depend", "pg_shdepend", "pg_auth_members", "pg_type"} {
		vacRows = append(vacRows, append([]string{rel}, collect(steps, func(s *catalogStep) string {
			return fmt.Sprintf("%s dead, %d autovacuums", thousands(int(s.Dead[rel])), s.AutoVacuums[rel])
		})...))
	}
	header := "Figure"
	for _, s := range steps {
		header += fmt.Sprintf(" | %s tenants (%s tables)", thousands(s.Tenants), thousands(s.Tables))
	}
	header += " | last / first | growth"
	sec := &Section{}
	first, last := steps[0], steps[len(steps)-1]
	tr := float64(last.Tenants) / float64(first.Tenants)
	summary := slices.DeleteFunc(slices.Clone(timeRows), func(r []string) bool {
		return !slices.ContainsFunc([]string{"catalog.Create (ms, p50)", "planning time", "new dbchat_query", "new connection as the tenant's login", "after a role of the cluster changed", "`dbchat migrate`, nothing", "`dbchat audit`", "audit.findings`", "before migration 00022"},
			func(k string) bool { return strings.Contains(r[0], k) })
	})
	for _, r := range summary {
		ratio := r[len(r)-2]
		sec.Summary = append(sec.Summary, Row{Measure: strings.ReplaceAll(r[0], "`", "") + fmt.Sprintf(", %s → %s tenants", thousands(first.Tenants), thousands(last.Tenants)),
			Floor: r[1], Dbchat: r[len(r)-3], Ratio: ratio, Goal: fmt.Sprintf("≤ %.0f× (linear)", tr), Verdict: r[len(r)-1]})
	}
	sec.Body = render("catalog", map[string]any{"C": c, "Steps": steps, "PreRoles": preRoles, "Query": catalogQuery,
		"Times": mdTable(strings.Split(header, " | "), timeRows), "Sizes": mdTable(strings.Split(header, " | "), sizeRows),
		"Vacuum": mdTable(strings.Split(strings.TrimSuffix(header, " | last / first | growth"), " | "), vacRows),
		"Ratio":  tr, "Full": len(steps) > 0 && last.Tenants >= 10000, "Shards": catalogShardsText()})
	return sec
}
