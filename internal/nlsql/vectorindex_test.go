package nlsql_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/vectest"
)

func TestHNSWBuildMB(t *testing.T) {
	// PostgreSQL's default maintenance_work_mem (64 MB) holds about 16,000
	// graph elements of 768 dimensions; 50,000 rows need about 200 MB.
	require.InDelta(t, 64, nlsql.HNSWBuildMB(16_000), 2)
	require.InDelta(t, 196, nlsql.HNSWBuildMB(50_000), 2)
}

// TestModelVectorIndex follows one model's own HNSW index through its life:
// none below the creation threshold, built once the model crosses it, kept
// between the two thresholds (hysteresis), dropped below the lower one.
// While it exists, retrieval's actual statement scans it (counted by
// PostgreSQL in the same transaction, so after prepared-statement plan
// caching too, not only in an EXPLAIN), the answers are the tenant's rows
// only although another tenant holds exact copies of its vectors under the
// same model id (the policy still applies, and the index's name is the
// tenant's and model's, so the other tenant never finds it), and recall
// against exact search stays at least 0.95. A per-tenant index of an
// earlier version is dropped.
func TestModelVectorIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	// One connection: every transaction below runs on the same backend, with
	// the same prepared statements, as a server's pooled connection would.
	db := tenant.New(d.AppPool(t, 1))
	admin, err := d.AdminPool(t).Acquire(ctx)
	require.NoError(t, err)
	defer admin.Release()
	tuning := nlsql.VectorIndexTuning{Create: 500, Drop: 300}

	s := vectest.New(7, 8)
	draw := func(n int) scaleTenant {
		st := scaleTenant{rows: map[string][][]float32{}}
		for i := range n {
			kind := nlsql.KindSQL
			if i%10 == 1 {
				kind = nlsql.KindDDL
			}
			st.rows[kind] = append(st.rows[kind], s.Draw())
		}
		return st
	}
	// big grows past the threshold; twin has exact copies of big's vectors
	// (the nearest rows to any of big's questions, were the policy to let
	// them through) in a model with big's model id; small stays small.
	bigT, twinT, smallT := dbtest.NewTenant(t, db, "big"), dbtest.NewTenant(t, db, "twin"), dbtest.NewTenant(t, db, "small")
	big := draw(400)
	big.id = bigT.Identity
	require.NoError(t, load(ctx, db, &big))
	_, err = admin.Exec(ctx, `INSERT INTO dbchat.models (tenant_id, id, name) VALUES ($1, $2, 'twinned')`, twinT.ID, big.modelID)
	require.NoError(t, err)
	twin := scaleTenant{id: twinT.Identity, modelID: big.modelID, rows: big.rows}
	require.NoError(t, load(ctx, db, &twin))
	small := draw(50)
	small.id = smallT.Identity
	require.NoError(t, load(ctx, db, &small))

	// The builds raise maintenance_work_mem for their graphs; the
	// connection's own value comes back afterwards.
	_, err = admin.Exec(ctx, `SET maintenance_work_mem = '7MB'`)
	require.NoError(t, err)
	tune := func() []nlsql.VectorIndexChange {
		t.Helper()
		changes, err := nlsql.TuneVectorIndexes(ctx, admin.Conn(), tuning, nil)
		require.NoError(t, err)
		var mem string
		require.NoError(t, admin.QueryRow(ctx, `SELECT current_setting('maintenance_work_mem')`).Scan(&mem))
		require.Equal(t, "7MB", mem, "TuneVectorIndexes leaves the connection's maintenance_work_mem as it found it")
		return changes
	}
	name := nlsql.ModelIndexName(bigT.ID, big.modelID, nlsql.KindSQL)
	names := []string{nlsql.ModelIndexName(bigT.ID, big.modelID, nlsql.KindDDL), nlsql.ModelIndexName(bigT.ID, big.modelID, nlsql.KindDocumentation), name}
	slices.Sort(names)
	indexes := func() []string {
		t.Helper()
		rows, err := admin.Query(ctx, `SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
			WHERE i.indrelid = 'dbchat.training_data'::regclass AND (c.relname LIKE 'training\_data\_m\_%' OR c.relname LIKE 'training\_data\_t\_%') ORDER BY 1`)
		require.NoError(t, err)
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return names
	}
	grow := func(st *scaleTenant, n int) {
		t.Helper()
		more := draw(n)
		more.id = st.id
		require.NoError(t, load(ctx, db, &more))
		for k, v := range more.rows {
			st.rows[k] = append(st.rows[k], v...)
		}
	}
	shrinkTo := func(id tenant.Identity, keep int) {
		t.Helper()
		err := db.TxAs(ctx, id, func(tx tenant.Conn) error {
			_, err := tx.Exec(ctx, `DELETE FROM dbchat.training_data WHERE id IN (
				SELECT id FROM dbchat.training_data ORDER BY id OFFSET $1)`, keep)
			return err
		})
		require.NoError(t, err)
	}

	// 400 rows (twin 400, small 50): below 500, no index; a per-tenant
	// index of an earlier version is dropped.
	legacy := "training_data_t_" + strings.ReplaceAll(bigT.ID.String(), "-", "") + "_sql"
	var ext string
	require.NoError(t, admin.QueryRow(ctx, `SELECT n.nspname::text FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'vector'`).Scan(&ext))
	_, err = admin.Exec(ctx, `CREATE INDEX `+legacy+` ON dbchat.training_data USING hnsw (embedding `+pgx.Identifier{ext}.Sanitize()+`.vector_cosine_ops)
		WHERE tenant_id = '`+bigT.ID.String()+`'::uuid AND (kind || '') = 'sql'`)
	require.NoError(t, err)
	changes := tune()
	require.Len(t, changes, 1)
	require.Equal(t, legacy, changes[0].Index)
	require.False(t, changes[0].Created)
	require.Equal(t, bigT.ID, changes[0].Tenant)
	require.Empty(t, indexes())

	// 600: big gets its indexes, one per kind; twin (400) and small do not.
	grow(&big, 200)
	changes = tune()
	require.Len(t, changes, 3)
	for i, kind := range nlsql.Kinds {
		require.True(t, changes[i].Created)
		require.Equal(t, bigT.ID, changes[i].Tenant)
		require.Equal(t, big.modelID, changes[i].Model)
		require.Equal(t, kind, changes[i].Kind)
		require.Equal(t, 600, changes[i].Rows)
	}
	require.Equal(t, names, indexes())
	var def string
	require.NoError(t, admin.QueryRow(ctx, `SELECT pg_get_indexdef(to_regclass('dbchat.'||$1))`, name).Scan(&def))
	require.Contains(t, def, "vector_cosine_ops) WITH (m='16', ef_construction='64') WHERE ((tenant_id = '"+bigT.ID.String()+"'::uuid) AND (model_id = '"+big.modelID.String()+"'::uuid) AND ((kind || ''::text) = 'sql'::text))")
	var comment string
	require.NoError(t, admin.QueryRow(ctx, `SELECT obj_description(to_regclass('dbchat.'||$1), 'pg_class')`, name).Scan(&comment))
	require.Contains(t, comment, "tenant "+bigT.ID.String()+", model "+big.modelID.String()+", kind sql", "a DBA reads whose graph it is")
	require.Empty(t, tune(), "a second run changes nothing")

	// Retrieval uses it: sets above TenantExactMax are searched through the
	// tenant's own graph, the statement's scans counted in its transaction.
	r := nlsql.Retriever{TenantExactMax: 100}
	retrieve := func(r nlsql.Retriever, id tenant.Identity, modelID uuid.UUID, q []float32) (got nlsql.Context, ownScans, globalScans int64, plan string) {
		t.Helper()
		// The backend's scan counters not yet reported (this transaction's and
		// maybe earlier ones'): their growth across Retrieve is its scans.
		const scans = `SELECT coalesce(pg_stat_get_xact_numscans(to_regclass('dbchat.'||$1)), 0),
			pg_stat_get_xact_numscans('dbchat.training_data_sql_hnsw'::regclass)`
		// Retrieve leaves the transaction's settings as it found them.
		const settings = `SELECT current_setting('enable_sort'), current_setting('jit'), current_setting('plan_cache_mode'),
			current_setting('hnsw.ef_search'), current_setting('hnsw.iterative_scan')`
		var before, after [5]string
		err := db.TxAs(ctx, id, func(tx tenant.Conn) error {
			var own0, global0 int64
			if err := tx.QueryRow(ctx, scans, name).Scan(&own0, &global0); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `SELECT set_config('hnsw.ef_search', '41', true), set_config('hnsw.iterative_scan', 'off', true)`); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, settings).Scan(&before[0], &before[1], &before[2], &before[3], &before[4]); err != nil {
				return err
			}
			var err error
			if got, err = r.Retrieve(ctx, tx, modelID, "synthetic", q, nlsql.Ks{}); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, settings).Scan(&after[0], &after[1], &after[2], &after[3], &after[4]); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, scans, name).Scan(&ownScans, &globalScans); err != nil {
				return err
			}
			ownScans, globalScans = ownScans-own0, globalScans-global0
			_, err = nlsql.WithPlanHook(r, func(p string) { plan += p + "\n" }).Retrieve(ctx, tx, modelID, "synthetic", q, nlsql.Ks{})
			return err
		})
		require.NoError(t, err)
		require.Equal(t, before, after, "settings after Retrieve")
		require.Equal(t, "on", after[0])
		require.Equal(t, "41", after[3])
		return got, ownScans, globalScans, plan
	}
	owner := func(ids []uuid.UUID) map[uuid.UUID]int {
		rows, err := admin.Query(ctx, `SELECT tenant_id FROM dbchat.training_data WHERE id = ANY($1)`, ids)
		require.NoError(t, err)
		tenants, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		require.NoError(t, err)
		n := map[uuid.UUID]int{}
		for _, id := range tenants {
			n[id]++
		}
		return n
	}
	sqlRows := func(tenantID uuid.UUID) int {
		var n int
		require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM dbchat.training_data WHERE tenant_id = $1 AND kind = 'sql'`, tenantID).Scan(&n))
		return n
	}
	bigPairs := sqlRows(bigT.ID)
	var hits, want int
	for i := range 12 { // more than 5: past the point where a prepared statement may switch to a generic plan
		q := s.Near(big.rows[nlsql.KindSQL][i], vectest.QueryNoise)
		got, own, global, plan := retrieve(r, big.id, big.modelID, q)
		require.Equal(t, "hnsw", got.Scans[0].Method, "%+v", got.Scans)
		require.True(t, got.Scans[0].TenantIndex)
		require.Equal(t, bigPairs, got.Scans[0].Rows, "the trigger's count")
		require.Greater(t, own, int64(0), "query %d: the statement scanned the tenant's index (global %d):\n%s", i, global, plan)
		require.Zero(t, global, "query %d: not the global graph", i)
		require.Contains(t, plan, name)
		require.Len(t, got.SQL, 10)
		var ids []uuid.UUID
		for _, m := range slices.Concat(got.SQL, got.DDL) {
			ids = append(ids, m.ID)
		}
		require.Equal(t, map[uuid.UUID]int{bigT.ID: len(ids)}, owner(ids), "only big's rows, never twin's copies")
		exact, _, _, _ := retrieve(nlsql.Retriever{Method: nlsql.ForceExact}, big.id, big.modelID, q)
		for _, m := range got.SQL {
			if slices.ContainsFunc(exact.SQL, func(e nlsql.Match) bool { return e.ID == m.ID }) {
				hits++
			}
		}
		want += len(exact.SQL)
	}
	// Reading the sizes before each search touches no training row, in
	// whichever plan PostgreSQL gives the prepared statement (a generic one
	// after five executions): they are kept in training_counts (00029).
	// Counting the rows instead, a generic plan once picked an index
	// without embedder and kind and fetched every row from the heap (00028).
	// Forced here, with k = 0 so that Retrieve only reads the sizes.
	for _, mode := range []string{"force_generic_plan", "force_custom_plan"} {
		var fetched int64
		err := db.TxAs(ctx, big.id, func(tx tenant.Conn) error {
			// Heap rows fetched through an index count against the index.
			const heap = `SELECT pg_stat_get_xact_tuples_fetched('dbchat.training_data'::regclass) +
				(SELECT coalesce(sum(pg_stat_get_xact_tuples_fetched(indexrelid)), 0)::bigint FROM pg_index WHERE indrelid = 'dbchat.training_data'::regclass)`
			var before int64
			if err := tx.QueryRow(ctx, `SELECT set_config('plan_cache_mode', $1, true)`, mode).Scan(new(string)); err != nil {
				return err
			}
			if err := tx.QueryRow(ctx, heap).Scan(&before); err != nil {
				return err
			}
			got, err := nlsql.Retriever{GlobalOnly: true}.Retrieve(ctx, tx, big.modelID, "synthetic", s.Draw(), nlsql.Ks{SQL: -1, DDL: -1, Documentation: -1})
			if err != nil {
				return err
			}
			if got.Scans[0].Rows < 500 {
				return fmt.Errorf("counted %d pairs", got.Scans[0].Rows)
			}
			err = tx.QueryRow(ctx, heap).Scan(&fetched)
			fetched -= before
			return err
		})
		require.NoError(t, err)
		require.Zero(t, fetched, "%s: reading the sizes fetched training rows", mode)
	}

	// The listings still count (ListModelsWithCounts): every index led by
	// (tenant_id, model_id) covers embedder and kind, whichever a generic
	// plan picks.
	var uncovered []string
	rows, err := admin.Query(ctx, `WITH a AS (SELECT attname, attnum FROM pg_attribute WHERE attrelid = 'dbchat.training_data'::regclass)
		SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = 'dbchat.training_data'::regclass AND i.indpred IS NULL
		  AND i.indkey[0] = (SELECT attnum FROM a WHERE attname = 'tenant_id')
		  AND i.indkey[1] = (SELECT attnum FROM a WHERE attname = 'model_id')
		  AND NOT ((SELECT attnum FROM a WHERE attname = 'embedder') = ANY (i.indkey::int2[])
		       AND (SELECT attnum FROM a WHERE attname = 'kind') = ANY (i.indkey::int2[]))`)
	require.NoError(t, err)
	uncovered, err = pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.Empty(t, uncovered, "indexes a generic plan may count through with a heap fetch per row")

	recall := float64(hits) / float64(want)
	t.Logf("recall@10 through the model's index: %.3f", recall)
	require.GreaterOrEqual(t, recall, 0.95)

	// GlobalOnly, and every other tenant, still use the global graph (twin's
	// 400 rows are searched exactly unless forced onto a graph).
	got, own, global, _ := retrieve(nlsql.Retriever{GlobalOnly: true, Method: nlsql.ForceHNSW}, big.id, big.modelID, s.Near(big.rows[nlsql.KindSQL][0], vectest.QueryNoise))
	require.False(t, got.Scans[0].TenantIndex)
	require.Equal(t, bigPairs, got.Scans[0].Rows)
	require.Zero(t, own)
	require.Greater(t, global, int64(0))
	got, own, global, _ = retrieve(nlsql.Retriever{Method: nlsql.ForceHNSW, ExactMax: 100}, twin.id, twin.modelID, s.Near(big.rows[nlsql.KindSQL][0], vectest.QueryNoise))
	require.False(t, got.Scans[0].TenantIndex)
	require.Equal(t, sqlRows(twinT.ID), got.Scans[0].Rows)
	require.Zero(t, own, "twin never reads big's index, although its model has the same id")
	require.Greater(t, global, int64(0))
	var ids []uuid.UUID
	for _, m := range got.SQL {
		ids = append(ids, m.ID)
	}
	require.Equal(t, map[uuid.UUID]int{twinT.ID: len(ids)}, owner(ids))

	// 400 rows, between the thresholds: the index stays.
	shrinkTo(big.id, 400)
	require.Empty(t, tune())
	require.Equal(t, names, indexes())

	// 250, below 300: dropped, and retrieval is back on the global graph.
	shrinkTo(big.id, 250)
	changes = tune()
	require.Len(t, changes, 3)
	require.False(t, changes[0].Created)
	require.Equal(t, 250, changes[0].Rows)
	require.Empty(t, indexes())
	got, own, global, _ = retrieve(nlsql.Retriever{Method: nlsql.ForceHNSW}, big.id, big.modelID, s.Draw())
	require.False(t, got.Scans[0].TenantIndex)
	require.Zero(t, own)
	require.Greater(t, global, int64(0))

	// An index left invalid (a concurrent build that failed) is rebuilt.
	grow(&big, 300)
	require.Len(t, tune(), 3)
	_, err = admin.Exec(ctx, `UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass('dbchat.'||$1)`, name)
	require.NoError(t, err)
	got, own, _, _ = retrieve(r, big.id, big.modelID, s.Draw())
	require.False(t, got.Scans[0].TenantIndex, "an invalid index is not used")
	require.Zero(t, own)
	changes = tune()
	require.Len(t, changes, 2, "dropped, then built again: %v", changes)
	require.False(t, changes[0].Created)
	require.True(t, changes[1].Created)
	got, own, _, _ = retrieve(r, big.id, big.modelID, s.Draw())
	require.True(t, got.Scans[0].TenantIndex)
	require.Greater(t, own, int64(0))

	// Before the rebuild below, a graph of LargeGraph rows built sparser
	// (here with pgvector's default m, as an earlier version's m 24 graphs
	// are) is searched at SparseLargeEfSearch, which its recall needs.
	efOfSQL := func() string {
		_, _, _, plan := retrieve(nlsql.Retriever{TenantExactMax: 1, LargeGraph: 400}, big.id, big.modelID, s.Near(big.rows[nlsql.KindSQL][0], vectest.QueryNoise))
		for _, stmt := range strings.Split(plan, "hnsw.ef_search = ")[1:] {
			if ef, _, _ := strings.Cut(stmt, "\n"); strings.Contains(stmt, name) {
				return ef
			}
		}
		return "none: " + plan
	}
	require.Equal(t, strconv.Itoa(nlsql.SparseLargeEfSearch), efOfSQL())

	// A graph that grows past Large is rebuilt denser, in place; retrieval
	// goes on through it (searched wider: LargeEfSearch).
	tuning.Large = 400
	changes = tune()
	require.Len(t, changes, 1, "only the sql graph has 400 rows: %v", changes)
	require.True(t, changes[0].Rebuilt)
	require.Equal(t, name, changes[0].Index)
	var opts []string
	require.NoError(t, admin.QueryRow(ctx, `SELECT c.reloptions FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
		WHERE c.oid = to_regclass('dbchat.'||$1) AND i.indisvalid`, name).Scan(&opts))
	require.Equal(t, []string{"m=32", "ef_construction=200"}, opts)
	require.Empty(t, tune(), "a second run changes nothing")
	require.Equal(t, strconv.Itoa(nlsql.DefaultLargeEfSearch), efOfSQL())
	got, own, _, plan := retrieve(nlsql.Retriever{TenantExactMax: 1, LargeGraph: 400}, big.id, big.modelID, s.Near(big.rows[nlsql.KindSQL][0], vectest.QueryNoise))
	require.Greater(t, own, int64(0))
	require.Len(t, got.SQL, 10)
	// Only the large graph is searched wider: ef_search holds for a whole
	// statement, so the small DDL graph gets a statement of its own, at
	// TenantEfSearch.
	var methods []string
	for _, sc := range got.Scans {
		methods = append(methods, fmt.Sprintf("%s %s own=%t", sc.Kind, sc.Method, sc.TenantIndex))
	}
	require.Equal(t, []string{"sql hnsw own=true", "ddl hnsw own=true", "documentation none own=false"}, methods)
	efOf := map[string]string{}
	for _, stmt := range strings.Split(plan, "hnsw.ef_search = ")[1:] {
		ef, _, _ := strings.Cut(stmt, "\n")
		for _, index := range names {
			if strings.Contains(stmt, index) {
				efOf[index] = ef
			}
		}
	}
	require.Equal(t, map[string]string{
		name: strconv.Itoa(nlsql.DefaultLargeEfSearch),
		nlsql.ModelIndexName(bigT.ID, big.modelID, nlsql.KindDDL): strconv.Itoa(nlsql.DefaultTenantEfSearch),
	}, efOf, plan)
	require.Len(t, got.DDL, min(5, got.Scans[1].Rows))

	// The batch runs in every query mode a deployment may name in its URL
	// (behind PgBouncer, README says cache_describe) and finds the same rows.
	q := s.Near(big.rows[nlsql.KindSQL][0], vectest.QueryNoise)
	twoGroups := nlsql.Retriever{TenantExactMax: 1, LargeGraph: 400}
	found := func(db *tenant.DB) (ids []uuid.UUID) {
		t.Helper()
		require.NoError(t, db.TxAs(ctx, big.id, func(tx tenant.Conn) error {
			got, err := twoGroups.Retrieve(ctx, tx, big.modelID, "synthetic", q, nlsql.Ks{})
			for _, m := range slices.Concat(got.SQL, got.DDL, got.Documentation) {
				ids = append(ids, m.ID)
			}
			return err
		}))
		return ids
	}
	first := found(db)
	require.NotEmpty(t, first)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol} {
		cfg, err := pgxpool.ParseConfig(d.AppURL)
		require.NoError(t, err)
		cfg.MaxConns, cfg.ConnConfig.DefaultQueryExecMode = 1, mode
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		require.NoError(t, err)
		require.Equal(t, first, found(tenant.New(pool)), "query mode %v", mode)
		pool.Close()
	}

	// The runtime role cannot tune: it counts only its own tenant's rows.
	app, err := d.AppPool(t, 1).Acquire(ctx)
	require.NoError(t, err)
	defer app.Release()
	_, err = nlsql.TuneVectorIndexes(ctx, app.Conn(), tuning, nil)
	require.True(t, errors.Is(err, nlsql.ErrCannotCountTenants), "%v", err)
}
