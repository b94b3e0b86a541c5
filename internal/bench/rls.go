package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/tenant"
)

// Part 1: what the tenant_isolation policy costs. The same queries on the
// same rows, one connection each, one round trip each:
//
//   - floor: the superuser (RLS never applies to it) with an explicit
//     WHERE tenant_id = $1;
//   - dbchat: dbchat_app through tenant.DB.OnceAs, the production path: the
//     tenant setting and the statement pipelined as one implicit transaction,
//     the policy doing the filtering;
//   - floor + setting (diagnostic): the superuser sending the same set_config
//     in the same pipeline but filtering explicitly, which splits dbchat's
//     extra time into "the setting statement" and "the policy".

var rlsGoal = goal{bound: 1.10, atMost: true}

type rlsQuery struct {
	name      string
	rls       string // as the service writes it: the policy adds the tenant
	floor     string // the same with an explicit tenant filter ($1)
	rlsArgs   func(histSample) []any
	floorArgs func(histSample) []any
}

var rlsQueries = []rlsQuery{
	{
		name: "lookup by id",
		rls: `SELECT id, user_id, model_id, question, generated_sql, status, error, row_count, created_at
FROM dbchat.query_history WHERE id = $1`,
		floor: `SELECT id, user_id, model_id, question, generated_sql, status, error, row_count, created_at
FROM dbchat.query_history WHERE tenant_id = $1 AND id = $2`,
		rlsArgs:   func(s histSample) []any { return []any{s.id} },
		floorArgs: func(s histSample) []any { return []any{s.tenant, s.id} },
	},
	{
		name: "a user's 20 most recent rows",
		rls: `SELECT id, question, status, created_at
FROM dbchat.query_history WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20`,
		floor: `SELECT id, question, status, created_at
FROM dbchat.query_history WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at DESC LIMIT 20`,
		rlsArgs:   func(s histSample) []any { return []any{s.user} },
		floorArgs: func(s histSample) []any { return []any{s.tenant, s.user} },
	},
	{
		name: "count by status",
		rls: `SELECT status, count(*)
FROM dbchat.query_history GROUP BY status`,
		floor: `SELECT status, count(*)
FROM dbchat.query_history WHERE tenant_id = $1 GROUP BY status`,
		rlsArgs:   func(histSample) []any { return nil },
		floorArgs: func(s histSample) []any { return []any{s.tenant} },
	},
}

// setContext is the statement tenant.DB pipelines before the first one.
const setContext = `SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true)`

type rlsVariant struct {
	name string
	exec func(ctx context.Context, q rlsQuery, s histSample) error
}

const (
	vFloor   = 0
	vSetting = 1
	vBare    = 2
	vRLS     = 3
)

func drain(rows pgx.Rows) error {
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}

// settingBatch sends set_config and one statement in one pipeline, as
// tenant.DB.OnceAs does, with bare pgx.
func settingBatch(ctx context.Context, pool *pgxpool.Pool, s histSample, sql string, args []any) error {
	b := &pgx.Batch{}
	b.Queue(setContext, s.tenant.String(), s.user.String())
	b.Queue(sql, args...)
	br := pool.SendBatch(ctx, b)
	if _, err := br.Exec(); err != nil {
		br.Close()
		return err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return err
	}
	if err := drain(rows); err != nil {
		br.Close()
		return err
	}
	return br.Close()
}

func rlsVariants(floor, floorSet, app *pgxpool.Pool, db *tenant.DB) []rlsVariant {
	return []rlsVariant{
		vFloor: {"floor", func(ctx context.Context, q rlsQuery, s histSample) error {
			rows, err := floor.Query(ctx, q.floor, q.floorArgs(s)...)
			if err != nil {
				return err
			}
			return drain(rows)
		}},
		vSetting: {"floor + setting", func(ctx context.Context, q rlsQuery, s histSample) error {
			return settingBatch(ctx, floorSet, s, q.floor, q.floorArgs(s))
		}},
		vBare: {"policy, bare pgx", func(ctx context.Context, q rlsQuery, s histSample) error {
			return settingBatch(ctx, app, s, q.rls, q.rlsArgs(s))
		}},
		vRLS: {"dbchat (RLS)", func(ctx context.Context, q rlsQuery, s histSample) error {
			id := tenant.Identity{TenantID: s.tenant, UserID: s.user}
			return db.OnceAs(ctx, id, func(tx tenant.Conn) error {
				rows, err := tx.Query(ctx, q.rls, q.rlsArgs(s)...)
				if err != nil {
					return err
				}
				return drain(rows)
			})
		}},
	}
}

func runRLS(ctx context.Context, e *Env) (*Section, error) {
	c := e.cfg.RLS
	d, admin, err := e.open(ctx, "rls")
	if err != nil {
		return nil, err
	}

	t0 := time.Now()
	e.logf("rls: seeding %d tenants × %d query_history rows", c.Tenants, c.RowsPerTenant)
	if err := seedTenants(ctx, admin, c.Tenants, 10); err != nil {
		return nil, err
	}
	if err := seedHistory(ctx, admin, c.RowsPerTenant); err != nil {
		return nil, err
	}
	if err := vacuumAnalyze(ctx, admin); err != nil {
		return nil, err
	}
	var total int64
	var size string
	if err := admin.QueryRow(ctx, `SELECT count(*), pg_size_pretty(pg_total_relation_size('dbchat.query_history')) FROM dbchat.query_history`).Scan(&total, &size); err != nil {
		return nil, err
	}
	e.logf("rls: %d rows (%s with indexes) in %s", total, size, time.Since(t0).Round(time.Second))
	samples, err := sampleHistory(ctx, admin, c.Samples)
	if err != nil {
		return nil, err
	}

	// One connection (backend) per variant, so that no variant runs on a
	// backend still warm from another variant's statement.
	pools := make([]*pgxpool.Pool, 4)
	for i := range pools {
		u := d.AdminURL
		if i >= vBare {
			u = d.AppURL
		}
		if pools[i], err = openPool(ctx, u, 1, nil, nil); err != nil {
			return nil, err
		}
		defer pools[i].Close()
	}
	db := tenant.New(pools[vRLS])
	variants := rlsVariants(pools[vFloor], pools[vSetting], pools[vBare], db)

	// Warm up: prepare every statement, load the pages every variant reads.
	for _, q := range rlsQueries {
		for _, v := range variants {
			for _, s := range samples {
				if err := v.exec(ctx, q, s); err != nil {
					return nil, fmt.Errorf("%s, %s: %w", q.name, v.name, err)
				}
			}
		}
	}

	// us[query][variant][run] is the median latency of one query within a run, in µs.
	us := make([][][]float64, len(rlsQueries))
	for qi := range us {
		us[qi] = make([][]float64, len(variants))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range e.cfg.Runs {
		for qi, q := range rlsQueries {
			// Each sample goes through every variant back to back, in a
			// random order, so that whatever else the machine does hits all
			// variants alike and no variant always follows another.
			lat := make([][]float64, len(variants))
			for _, s := range samples {
				for _, vi := range rng.Perm(len(variants)) {
					start := time.Now()
					if err := variants[vi].exec(ctx, q, s); err != nil {
						return nil, fmt.Errorf("%s, %s: %w", q.name, variants[vi].name, err)
					}
					lat[vi] = append(lat[vi], micros(time.Since(start)))
				}
			}
			// The median per query: robust to the odd query that waited for a CPU.
			for vi := range variants {
				us[qi][vi] = append(us[qi][vi], newDist(lat[vi]).Med)
			}
		}
		e.logf("rls: run %d/%d: %s", run+1, e.cfg.Runs, rlsRunLine(us, run))
	}

	// Plans and server-side times, on request.
	var plans [][2]string
	var server [][2]dist
	for qi, q := range rlsQueries {
		if !e.cfg.Explain {
			break
		}
		plans, server = append(plans, [2]string{}), append(server, [2]dist{})
		if plans[qi], server[qi], err = explainPair(ctx, d, q, samples); err != nil {
			return nil, fmt.Errorf("explain %s: %w", q.name, err)
		}
	}
	return rlsSection(e, c, total, size, len(samples), us, plans, server), nil
}

func rlsRunLine(us [][][]float64, run int) string {
	var parts []string
	for qi, q := range rlsQueries {
		parts = append(parts, fmt.Sprintf("%s %.0f/%.0f/%.0f/%.0f µs", q.name, us[qi][vFloor][run], us[qi][vSetting][run], us[qi][vBare][run], us[qi][vRLS][run]))
	}
	return strings.Join(parts, "; ") + " (floor/+setting/policy bare/dbchat)"
}

// explainPair returns EXPLAIN (ANALYZE, BUFFERS) of both forms for the first
// sample, as prepared statements after warm-up (the plans the loop runs),
// and the server-side planning+execution time of each (median over up to 21
// samples, EXPLAIN ANALYZE with TIMING OFF).
func explainPair(ctx context.Context, d *benchDB, q rlsQuery, samples []histSample) ([2]string, [2]dist, error) {
	var plans [2]string
	var times [2]dist
	n := min(21, len(samples))
	floorRuns := make([]planRun, n)
	rlsRuns := make([]planRun, n)
	for i, s := range samples[:n] {
		floorRuns[i] = planRun{args: q.floorArgs(s)}
		rlsRuns[i] = planRun{id: &tenant.Identity{TenantID: s.tenant, UserID: s.user}, args: q.rlsArgs(s)}
	}
	for i, side := range []struct {
		url  string
		sql  string
		runs []planRun
	}{{d.AdminURL, q.floor, floorRuns}, {d.AppURL, q.rls, rlsRuns}} {
		shown, err := explainAsRun(ctx, side.url, side.sql, side.runs[:1], "ANALYZE, BUFFERS, COSTS OFF", false)
		if err != nil {
			return plans, times, err
		}
		plans[i] = shown[0]
		timed, err := explainAsRun(ctx, side.url, side.sql, side.runs, "ANALYZE, TIMING OFF, COSTS OFF", false)
		if err != nil {
			return plans, times, err
		}
		times[i] = newDist(collect(timed, planMicros))
	}
	return plans, times, nil
}

func rlsSection(e *Env, c RLSConfig, total int64, size string, samples int, us [][][]float64, plans [][2]string, server [][2]dist) *Section {
	s := &Section{}
	header := []string{"Query", "floor µs", "floor + setting µs", "policy, bare pgx µs", "dbchat (RLS) µs", "dbchat / floor", "setting: +setting / floor", "policy: bare / +setting", "tenant layer: dbchat / bare"}
	if plans != nil {
		header = append(header, "server plan+exec floor → RLS µs")
	}
	var rows [][]string
	var analysis []string
	for qi, q := range rlsQueries {
		f, st, bare, r := newDist(us[qi][vFloor]), newDist(us[qi][vSetting]), newDist(us[qi][vBare]), newDist(us[qi][vRLS])
		ratio := newDist(ratios(us[qi][vRLS], us[qi][vFloor]))
		setting := newDist(ratios(us[qi][vSetting], us[qi][vFloor]))
		policy := newDist(ratios(us[qi][vBare], us[qi][vSetting]))
		layer := newDist(ratios(us[qi][vRLS], us[qi][vBare]))
		verdict := rlsGoal.verdict(ratio.Med)
		row := []string{q.name, f.f("%.0f"), st.f("%.0f"), bare.f("%.0f"), r.f("%.0f"), ratio.f("%.2f"), setting.f("%.2f"), policy.f("%.2f"), layer.f("%.2f")}
		if plans != nil {
			row = append(row, server[qi][0].m("%.0f")+" → "+server[qi][1].m("%.0f"))
		}
		rows = append(rows, append(row, verdict))
		s.Summary = append(s.Summary, Row{Measure: q.name + " (µs/query)", Floor: f.m("%.0f µs"), Dbchat: r.m("%.0f µs"),
			Ratio: ratio.f("%.2f"), Goal: rlsGoal.String(), Verdict: verdict})
		if !rlsGoal.met(ratio.Med) {
			analysis = append(analysis, fmt.Sprintf("%s: dbchat is %.2f× the floor: the tenant setting statement %.2f× (%+.0f%%), the policy in PostgreSQL %.2f× (%+.0f%%), the Go tenant layer %.2f× (%+.0f%%).",
				q.name, ratio.Med, setting.Med, (setting.Med-1)*100, policy.Med, (policy.Med-1)*100, layer.Med, (layer.Med-1)*100))
		}
	}
	type plan struct{ Name, FloorSQL, FloorPlan, RLSSQL, RLSPlan string }
	var ps []plan
	for qi, q := range rlsQueries {
		if plans != nil {
			ps = append(ps, plan{q.name, q.floor, plans[qi][0], q.rls, plans[qi][1]})
		}
	}
	s.Body = render("rls", map[string]any{"Goal": rlsGoal.bound, "C": c, "Total": int(total), "Size": size, "Samples": samples,
		"Table": mdTable(append(header, "Verdict"), rows), "Analysis": analysis, "Plans": ps})
	return s
}

func pct(part, whole float64) float64 {
	if whole == 0 || math.IsNaN(whole) {
		return 0
	}
	return part / whole * 100
}

// thousands formats n with thousands separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	var parts []string
	for len(s) > 3 {
		parts = append(parts, s[len(s)-3:])
		s = s[:len(s)-3]
	}
	parts = append(parts, s)
	slices.Reverse(parts)
	return strings.Join(parts, ",")
}
