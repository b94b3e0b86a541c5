package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/tenant"
)

// Part 1: what the tenant_isolation policy costs: the same queries on the
// same rows through four variants (rlsVariants), one connection and one
// round trip each; templates/rls.md.tmpl describes them.

var rlsGoal = goal{bound: 1.10, atMost: true}

type rlsQuery struct {
	name, rls, floor string // rls as the service writes it; floor with an explicit tenant filter ($1)
	args             func(histSample) []any
}

const histCols = "id, user_id, model_id, question, generated_sql, status, error, row_count, created_at"

var rlsQueries = []rlsQuery{
	{"lookup by id", "SELECT " + histCols + "\nFROM dbchat.query_history WHERE id = $1",
		"SELECT " + histCols + "\nFROM dbchat.query_history WHERE tenant_id = $1 AND id = $2",
		func(s histSample) []any { return []any{s.ID} }},
	{"a user's 20 most recent rows", "SELECT id, question, status, created_at\nFROM dbchat.query_history WHERE user_id = $1 ORDER BY created_at DESC LIMIT 20",
		"SELECT id, question, status, created_at\nFROM dbchat.query_history WHERE tenant_id = $1 AND user_id = $2 ORDER BY created_at DESC LIMIT 20",
		func(s histSample) []any { return []any{s.User} }},
	{"count by status", "SELECT status, count(*)\nFROM dbchat.query_history GROUP BY status",
		"SELECT status, count(*)\nFROM dbchat.query_history WHERE tenant_id = $1 GROUP BY status",
		func(histSample) []any { return nil }},
}

// setContext is the statement tenant.DB pipelines before the first one.
const setContext = `SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true)`

var rlsVariants = []string{"floor", "floor + setting", "policy, bare pgx", "dbchat (RLS)"}

const vFloor, vSetting, vBare, vRLS = 0, 1, 2, 3 // indexes in rlsVariants

func drain(rows pgx.Rows, err error) error {
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}

// rlsExec runs query q for sample s as variant v on pool.
func rlsExec(ctx context.Context, v int, pool *pgxpool.Pool, db *tenant.DB, q rlsQuery, s histSample) error {
	sql, args := q.rls, q.args(s)
	if v <= vSetting {
		sql, args = q.floor, append([]any{s.Tenant}, args...)
	}
	switch v {
	case vFloor:
		return drain(pool.Query(ctx, sql, args...))
	case vRLS:
		return db.OnceAs(ctx, tenant.Identity{TenantID: s.Tenant, UserID: s.User}, func(tx tenant.Conn) error {
			return drain(tx.Query(ctx, sql, args...))
		})
	}
	// set_config and the statement in one pipeline, as tenant.DB.OnceAs sends them.
	b := &pgx.Batch{}
	b.Queue(setContext, s.Tenant.String(), s.User.String())
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error { return drain(rows, nil) })
	return pool.SendBatch(ctx, b).Close()
}

func runRLS(ctx context.Context, e *Env) (*Section, error) {
	c := e.cfg.RLS
	d, t0 := e.open(ctx, "rls"), time.Now()
	e.logf("rls: seeding %d tenants × %d query_history rows", c.Tenants, c.RowsPerTenant)
	seedTenants(ctx, d.admin, c.Tenants, 10, 1)
	seedHistory(ctx, d.admin, c.RowsPerTenant)
	var size string
	must(d.admin.QueryRow(ctx, `SELECT pg_size_pretty(pg_total_relation_size('dbchat.query_history'))`).Scan(&size))
	e.logf("rls: seeded (%s with indexes) in %s", size, time.Since(t0).Round(time.Second))
	samples := sampleHistory(ctx, d.admin, c.Samples)
	// One connection (backend) per variant, so that no variant runs on a
	// backend still warm from another variant's statement.
	pools := make([]*pgxpool.Pool, len(rlsVariants))
	for i := range pools {
		pools[i] = e.pool(ctx, map[bool]string{true: d.AdminURL, false: d.AppURL}[i <= vSetting], 1, nil)
	}
	db := tenant.New(pools[vRLS])
	rng := rand.New(rand.NewPCG(1, 2))
	// A warm-up pass prepares every statement and loads the pages every
	// variant reads. Then us[query][variant][run] is the median latency of
	// one query within a run, in µs: robust to the odd query that waited
	// for a CPU.
	us := make([][][]float64, len(rlsQueries))
	for qi := range us {
		us[qi] = make([][]float64, len(rlsVariants))
	}
	for r := -1; r < e.cfg.Runs; r++ {
		for qi, q := range rlsQueries {
			lat := pass(rng, len(samples), len(rlsVariants), func(i, v int) {
				if err := rlsExec(ctx, v, pools[v], db, q, samples[i]); err != nil {
					must(fmt.Errorf("%s, %s: %w", q.name, rlsVariants[v], err))
				}
			})
			if r < 0 {
				continue
			}
			for v := range rlsVariants {
				us[qi][v] = append(us[qi][v], 1000*newDist(lat[v]).Med)
			}
		}
		e.logf("rls: run %d/%d done (0: warm-up)", r+1, e.cfg.Runs)
	}
	return rlsSection(c, size, len(samples), us), nil
}

func rlsSection(c RLSConfig, size string, samples int, us [][][]float64) *Section {
	s := &Section{}
	var rows [][]string
	for qi, q := range rlsQueries {
		u := us[qi]
		ratio, setting := newDist(ratios(u[vRLS], u[vFloor])), newDist(ratios(u[vSetting], u[vFloor]))
		policy, layer := newDist(ratios(u[vBare], u[vSetting])), newDist(ratios(u[vRLS], u[vBare]))
		verdict := rlsGoal.verdict(ratio.Med)
		rows = append(rows, []string{q.name, newDist(u[vFloor]).f("%.0f"), newDist(u[vSetting]).f("%.0f"), newDist(u[vBare]).f("%.0f"),
			newDist(u[vRLS]).f("%.0f"), ratio.f("%.2f"), setting.f("%.2f"), policy.f("%.2f"), layer.f("%.2f"), verdict})
		s.Summary = append(s.Summary, Row{q.name + " (µs/query)", newDist(u[vFloor]).m("%.0f µs"), newDist(u[vRLS]).m("%.0f µs"),
			ratio.f("%.2f"), rlsGoal.String(), verdict})
	}
	header := []string{"Query", "floor µs", "floor + setting µs", "policy, bare pgx µs", "dbchat (RLS) µs", "dbchat / floor",
		"setting: +setting / floor", "policy: bare / +setting", "tenant layer: dbchat / bare", "Verdict"}
	s.Body = render("rls", map[string]any{"Goal": rlsGoal.bound, "C": c, "Total": c.Tenants * c.RowsPerTenant, "Size": size, "Samples": samples,
		"Table": mdTable(header, rows)})
	return s
}
