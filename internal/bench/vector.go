package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgvector/pgvector-go"

	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/vectest"
)

// Part 3: vector retrieval at scale. Many tenants' training rows share one
// table (and one HNSW graph per kind) with a skewed distribution: one tenant
// holds 25 % of the rows, ten hold 2 % each, the rest are small. For each
// tenant size class the same queries go through the real retrieval code
// (nlsql.Retriever in a tenant transaction as dbchat_app) with each access
// path forced in turn, and through the exact reference: the same exact
// search as the superuser with an explicit tenant filter, the ground truth
// for recall. It is not a floor (on a large set it is slower than the index
// search): the goals are absolute.

const (
	vecRecallGoal = 0.95
	vecP95GoalMS  = 20.0
	// vecEmbedder labels the synthetic rows (retrieval compares only rows of
	// the embedder it is given).
	vecEmbedder = "bench/clustered-v1"
	// vecTenantTopics is how many of the shared topics one tenant's rows
	// are drawn from.
	vecTenantTopics = 16
)

// The strategies, in the order of the tables.
const (
	vsFloor = iota
	vsExact
	vsHNSW
	vsAuto
)

type vecStrategy struct {
	name   string
	method nlsql.Method
}

var vecStrategies = []vecStrategy{
	vsFloor: {name: "exact reference: superuser, explicit tenant filter"},
	vsExact: {name: "exact (ForceExact)", method: nlsql.ForceExact},
	vsHNSW:  {name: "HNSW, no fallback (ForceHNSW)", method: nlsql.ForceHNSW},
	vsAuto:  {name: "**Auto (shipped)**", method: nlsql.Auto},
}

// vecKinds are the kinds in nlsql.Kinds order with the k retrieval asks for.
var vecKinds = []struct {
	kind string
	k    int
}{{nlsql.KindSQL, nlsql.DefaultKs.SQL}, {nlsql.KindDDL, nlsql.DefaultKs.DDL}, {nlsql.KindDocumentation, nlsql.DefaultKs.Documentation}}

type vecTenant struct {
	id        tenant.Identity
	models    []uuid.UUID
	topics    []int
	rows      int
	modelRows []int
	sqlRows   []int // per model
	sqlIdx    []int // indexes (in load order) of the tenant's pair rows
}

type vecClass struct {
	name    string // huge, large, small
	share   string
	tenants []int
}

type vecQuery struct {
	tenant, model int
	near          bool // a stored pair's vector plus noise; else a fresh draw from the tenant's topics
	vec           []float32
}

// vecRow is one row to load: its tenant, model and kind (index in vecKinds).
type vecRow struct {
	tenant int32
	model  uint8
	kind   uint8
}

// vecResult is what one strategy returned for one query: ids per kind, and
// how retrieval searched the pairs.
type vecResult struct {
	ids  [3][]uuid.UUID
	scan nlsql.Scan
}

// vecData is the seeded table.
type vecData struct {
	tenants   []vecTenant
	classes   []vecClass
	queries   [][]vecQuery // per class
	rows      int
	loadTook  time.Duration
	buildTook time.Duration
	tableSize string
	indexSize []string // "name: size"
}

func runVector(ctx context.Context, e *Env) (*Section, error) {
	c := e.cfg.Vector
	d, admin, err := e.open(ctx, "vector")
	if err != nil {
		return nil, err
	}
	data, err := seedVectors(ctx, e, admin, c)
	if err != nil {
		return nil, err
	}

	// One warm connection (backend) per strategy. The three dbchat_app pools
	// share a tracer that records statements only while a capture is on.
	capture := &stmtCapture{}
	pools := make([]*pgxpool.Pool, len(vecStrategies))
	dbs := make([]*tenant.DB, len(vecStrategies))
	for s := range pools {
		u, tr := d.AppURL, pgx.QueryTracer(capture)
		if s == vsFloor {
			u, tr = d.AdminURL, nil
		}
		if pools[s], err = openPool(ctx, u, 1, nil, tr); err != nil {
			return nil, err
		}
		defer pools[s].Close()
		dbs[s] = tenant.New(pools[s])
	}
	floor := floorSearchSQL()
	call := func(s int, q vecQuery) (vecResult, error) {
		t := data.tenants[q.tenant]
		model := t.models[q.model]
		var res vecResult
		if s == vsFloor {
			rows, err := pools[s].Query(ctx, floor, t.id.TenantID, model, vecEmbedder, pgvector.NewVector(q.vec))
			if err != nil {
				return res, err
			}
			for rows.Next() {
				var kind string
				var id uuid.UUID
				var question *string
				var content string
				var dist float64
				if err := rows.Scan(&kind, &id, &question, &content, &dist); err != nil {
					rows.Close()
					return res, err
				}
				ki := kindIndex(kind)
				res.ids[ki] = append(res.ids[ki], id)
			}
			rows.Close()
			return res, rows.Err()
		}
		err := dbs[s].TxAs(ctx, t.id, func(tx tenant.Conn) error {
			got, err := nlsql.Retriever{Method: vecStrategies[s].method}.Retrieve(ctx, tx, model, vecEmbedder, q.vec, nlsql.DefaultKs)
			if err != nil {
				return err
			}
			for ki, ms := range [][]nlsql.Match{got.SQL, got.DDL, got.Documentation} {
				for _, m := range ms {
					res.ids[ki] = append(res.ids[ki], m.ID)
				}
			}
			for _, sc := range got.Scans {
				if sc.Kind == nlsql.KindSQL {
					res.scan = sc
				}
			}
			return nil
		})
		return res, err
	}

	// The quality pass, which also warms every backend and cache: every
	// query through every strategy once.
	results := make([][][]vecResult, len(data.classes)) // [class][query][strategy]
	for ci := range data.classes {
		results[ci] = make([][]vecResult, len(data.queries[ci]))
		for qi, q := range data.queries[ci] {
			results[ci][qi] = make([]vecResult, len(vecStrategies))
			for s := range vecStrategies {
				if results[ci][qi][s], err = call(s, q); err != nil {
					return nil, fmt.Errorf("%s, %s: %w", data.classes[ci].name, vecStrategies[s].name, err)
				}
			}
		}
	}
	quality := make([][]vecQuality, len(data.classes))
	for ci := range data.classes {
		quality[ci] = make([]vecQuality, len(vecStrategies))
		for s := range vecStrategies {
			quality[ci][s] = measureQuality(results[ci], s)
		}
		e.logf("vector: %s: recall@10 exact %.3f, HNSW without fallback %.3f, Auto %.3f", data.classes[ci].name,
			quality[ci][vsExact].recall(), quality[ci][vsHNSW].recall(), quality[ci][vsAuto].recall())
	}

	// Timed runs. p50/p95 per run over the class's queries; each query goes
	// through the strategies back to back in a random order.
	p50 := make([][][]float64, len(data.classes)) // [class][strategy][run]
	p95 := make([][][]float64, len(data.classes))
	last := make([][][]float64, len(data.classes)) // [class][strategy][query], last run
	for ci := range data.classes {
		p50[ci] = make([][]float64, len(vecStrategies))
		p95[ci] = make([][]float64, len(vecStrategies))
		last[ci] = make([][]float64, len(vecStrategies))
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for run := range e.cfg.Runs {
		var line []string
		for ci := range data.classes {
			lat := make([][]float64, len(vecStrategies))
			for _, q := range data.queries[ci] {
				for _, s := range rng.Perm(len(vecStrategies)) {
					start := time.Now()
					if _, err := call(s, q); err != nil {
						return nil, fmt.Errorf("%s, %s: %w", data.classes[ci].name, vecStrategies[s].name, err)
					}
					lat[s] = append(lat[s], float64(time.Since(start))/float64(time.Millisecond))
				}
			}
			for s := range vecStrategies {
				sorted := slices.Clone(lat[s])
				slices.Sort(sorted)
				p50[ci][s] = append(p50[ci][s], quantile(sorted, 0.5))
				p95[ci][s] = append(p95[ci][s], quantile(sorted, 0.95))
				last[ci][s] = lat[s]
			}
			line = append(line, fmt.Sprintf("%s p95 floor %.1f / exact %.1f / HNSW %.1f / Auto %.1f ms", data.classes[ci].name,
				p95[ci][vsFloor][run], p95[ci][vsExact][run], p95[ci][vsHNSW][run], p95[ci][vsAuto][run]))
		}
		e.logf("vector: run %d/%d: %s", run+1, e.cfg.Runs, strings.Join(line, "; "))
	}

	// Plans of the query at the p95 of Auto's latency in the last run, per
	// class: Auto's statements replayed with EXPLAIN (ANALYZE, BUFFERS), and
	// the exact reference's; for the small class also HNSW without fallback,
	// the under-fill case.
	var plans []vecPlans
	if e.cfg.Explain {
		plans = make([]vecPlans, len(data.classes))
	}
	for ci, cl := range plans2(data.classes, plans) {
		qi := p95Index(last[ci][vsAuto])
		q := data.queries[ci][qi]
		plans[ci].Query = qi
		plans[ci].ClientMS = last[ci][vsAuto][qi]
		strategies := []int{vsAuto}
		if cl.name == "small" {
			// HNSW without fallback: a query it answered short (the
			// under-fill), else its own p95 query.
			strategies = append(strategies, vsHNSW)
			plans[ci].HNSWQuery = p95Index(last[ci][vsHNSW])
			for i, r := range results[ci] {
				if len(r[vsHNSW].ids[0]) < len(r[vsFloor].ids[0]) {
					plans[ci].HNSWQuery, plans[ci].HNSWShort = i, true
					break
				}
			}
			plans[ci].HNSWMS = last[ci][vsHNSW][plans[ci].HNSWQuery]
			plans[ci].HNSWGot = len(results[ci][plans[ci].HNSWQuery][vsHNSW].ids[0])
			plans[ci].HNSWWant = len(results[ci][plans[ci].HNSWQuery][vsFloor].ids[0])
		}
		for _, s := range strategies {
			q := q
			if s == vsHNSW {
				q = data.queries[ci][plans[ci].HNSWQuery]
			}
			label := fmt.Sprintf("%s/%d", cl.name, s)
			capture.start(label)
			_, err := call(s, q)
			capture.stop()
			if err != nil {
				return nil, err
			}
			text, err := explainCaptured(ctx, d.AppURL, data.tenants[q.tenant].id, capture.forLabel(label))
			if err != nil {
				e.logf("vector: explain %s: %v", label, err)
				text = "EXPLAIN failed: " + err.Error()
			}
			if s == vsAuto {
				plans[ci].Auto = text
			} else {
				plans[ci].HNSW = text
			}
		}
		t := data.tenants[q.tenant]
		plans[ci].Floor, err = explainFloor(ctx, admin, floor, t.id.TenantID, t.models[q.model], q.vec)
		if err != nil {
			e.logf("vector: explain floor: %v", err)
			plans[ci].Floor = "EXPLAIN failed: " + err.Error()
		}
	}
	return vectorSection(e, c, data, quality, p50, p95, plans), nil
}

func kindIndex(kind string) int {
	for i, k := range vecKinds {
		if k.kind == kind {
			return i
		}
	}
	return 0
}

// floorSearchSQL is the exact search of nlsql.Retriever (one UNION ALL
// branch per kind, distances in a MATERIALIZED CTE, sorted) with an
// explicit tenant filter instead of the policy.
func floorSearchSQL() string {
	var b strings.Builder
	for i, k := range vecKinds {
		if i > 0 {
			b.WriteString("\nUNION ALL\n")
		}
		fmt.Fprintf(&b, `SELECT '%[1]s' AS kind, id, question, content, distance FROM (
    WITH c AS MATERIALIZED (
        SELECT id, question, content, embedding <=> $4 AS distance
        FROM dbchat.training_data
        WHERE tenant_id = $1 AND kind = '%[1]s' AND model_id = $2 AND embedder = $3)
    SELECT * FROM c ORDER BY distance, id LIMIT %[2]d) s%[3]d`, k.kind, k.k, i)
	}
	return b.String()
}

// seedVectors creates the tenants, their models and the training rows.
func seedVectors(ctx context.Context, e *Env, admin *pgx.Conn, c VectorConfig) (*vecData, error) {
	t0 := time.Now()
	e.logf("vector: seeding %s rows of %d dimensions across %s tenants, %d models each", thousands(c.Rows), embed.Dim, thousands(c.Tenants), c.Models)
	if err := seedTenants(ctx, admin, c.Tenants, 1); err != nil {
		return nil, err
	}
	if c.Models > 1 {
		_, err := admin.Exec(ctx, `
			INSERT INTO dbchat.models (tenant_id, id, name, description)
			SELECT t.id, md5(t.id::text || '/model/' || k)::uuid, 'model-' || k, 'Bench model ' || k
			FROM dbchat.tenants t, generate_series(2, $1::int) k WHERE t.slug LIKE 'tenant-%'`, c.Models)
		if err != nil {
			return nil, fmt.Errorf("seed models: %w", err)
		}
	}
	data := &vecData{tenants: make([]vecTenant, c.Tenants), rows: c.Rows}
	rows, err := admin.Query(ctx, `
		SELECT substring(t.slug FROM 8)::int - 1, t.id, u.id,
		       array_agg(m.id ORDER BY m.name <> 'default', m.name)
		FROM dbchat.tenants t
		JOIN dbchat.users u ON u.tenant_id = t.id AND u.role = 'admin'
		JOIN dbchat.models m ON m.tenant_id = t.id
		WHERE t.slug LIKE 'tenant-%'
		GROUP BY t.id, u.id`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var i int
		var t vecTenant
		if err := rows.Scan(&i, &t.id.TenantID, &t.id.UserID, &t.models); err != nil {
			rows.Close()
			return nil, err
		}
		t.id.Role = tenant.Admin
		data.tenants[i] = t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}

	// Sizes: tenant 0 is huge, 1-10 large, the rest small (uniform between
	// 0.2 and 1.8 times their mean). Within a tenant, each model has half the
	// rows of the one before; within a model, DDL and documentation items
	// are 1/16 each, the rest question->SQL pairs.
	rng := rand.New(rand.NewPCG(7, 8))
	huge, large := c.Rows/4, c.Rows/50
	data.tenants[0].rows = huge
	for i := 1; i <= 10; i++ {
		data.tenants[i].rows = large
	}
	rest := c.Rows - huge - 10*large
	weights := make([]float64, c.Tenants-11)
	var sum float64
	for i := range weights {
		weights[i] = 0.2 + 1.6*rng.Float64()
		sum += weights[i]
	}
	left := rest
	for i := range weights {
		n := max(3, int(math.Round(float64(rest)*weights[i]/sum)))
		if i == len(weights)-1 {
			n = max(3, left)
		}
		data.tenants[11+i].rows = n
		left -= n
	}
	gen := vectest.New(42, c.Topics)
	var load []vecRow
	for ti := range data.tenants {
		t := &data.tenants[ti]
		t.topics = rng.Perm(c.Topics)[:min(vecTenantTopics, c.Topics)]
		var wsum float64
		for m := range t.models {
			wsum += math.Pow(2, float64(len(t.models)-1-m))
		}
		leftRows := t.rows
		t.modelRows = make([]int, len(t.models))
		t.sqlRows = make([]int, len(t.models))
		for m := len(t.models) - 1; m >= 0; m-- {
			n := int(math.Round(float64(t.rows) * math.Pow(2, float64(len(t.models)-1-m)) / wsum))
			if m == 0 {
				n = leftRows
			}
			n = max(1, min(n, leftRows-m))
			leftRows -= n
			t.modelRows[m] = n
			ddl, doc := 0, 0
			if n >= 3 {
				ddl, doc = max(1, n/16), max(1, n/16)
			}
			t.sqlRows[m] = n - ddl - doc
			for j := range n {
				kind := uint8(0)
				switch {
				case j < ddl:
					kind = 1
				case j < ddl+doc:
					kind = 2
				}
				load = append(load, vecRow{tenant: int32(ti), model: uint8(m), kind: kind})
			}
		}
	}
	// Rows arrive in random order across tenants, as a live service writes
	// them: one tenant's rows are scattered over the heap.
	rng.Shuffle(len(load), func(i, j int) { load[i], load[j] = load[j], load[i] })
	for i, r := range load {
		if r.kind == 0 {
			t := &data.tenants[r.tenant]
			t.sqlIdx = append(t.sqlIdx, i)
		}
	}
	data.rows = len(load)

	// Classes and their queries: the tenant at random within the class, the
	// model as a random stored pair's; two queries in three are that pair's
	// vector plus noise (a paraphrase of a trained question), one in three a
	// fresh draw from the tenant's topics (a new question on a subject the
	// tenant has trained).
	data.classes = []vecClass{{name: "huge", share: "25 %", tenants: []int{0}}, {name: "large", share: "2 % each", tenants: seq(1, 11)}, {name: "small", share: fmt.Sprintf("the other %s share %.0f %%", thousands(c.Tenants-11), float64(rest)/float64(c.Rows)*100), tenants: seq(11, c.Tenants)}}
	seedAt := map[int][][2]int{} // load index -> (class, query) to draw near it
	data.queries = make([][]vecQuery, len(data.classes))
	for ci, cl := range data.classes {
		for qi := range c.Queries {
			ti := cl.tenants[rng.IntN(len(cl.tenants))]
			t := data.tenants[ti]
			idx := t.sqlIdx[rng.IntN(len(t.sqlIdx))]
			q := vecQuery{tenant: ti, model: int(load[idx].model), near: qi%3 != 2}
			if q.near {
				seedAt[idx] = append(seedAt[idx], [2]int{ci, qi})
			} else {
				q.vec = gen.Near(gen.Centres[t.topics[rng.IntN(len(t.topics))]], vectest.DataNoise)
			}
			data.queries[ci] = append(data.queries[ci], q)
		}
	}

	// COPY as the superuser (no policy), foreign-key triggers skipped (the
	// keys hold by construction), HNSW indexes dropped meanwhile.
	if err := vectest.RegisterCopy(ctx, admin); err != nil {
		return nil, err
	}
	loadStart := time.Now()
	var loadTook time.Duration
	build, err := vectest.LoadWithoutHNSW(ctx, admin, func() error {
		if _, err := admin.Exec(ctx, `SET session_replication_role = replica`); err != nil {
			return err
		}
		defer func() { _, _ = admin.Exec(context.Background(), `RESET session_replication_role`) }()
		i := 0
		src := pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(load) {
				return nil, nil
			}
			r := load[i]
			t := &data.tenants[r.tenant]
			vec := gen.Near(gen.Centres[t.topics[rng.IntN(len(t.topics))]], vectest.DataNoise)
			for _, at := range seedAt[i] {
				data.queries[at[0]][at[1]].vec = gen.Near(vec, vectest.QueryNoise)
			}
			var question *string
			kind := vecKinds[r.kind].kind
			content := fmt.Sprintf("%s item %d", kind, i)
			if r.kind == 0 {
				s := fmt.Sprintf("synthetic question %d", i)
				question = &s
				content = fmt.Sprintf("SELECT %d AS answer", i)
			}
			i++
			return []any{t.id.TenantID, uuid.New(), t.models[r.model], kind, question, content, pgvector.NewVector(vec), vecEmbedder, nlsql.SourceImport}, nil
		})
		n, err := admin.CopyFrom(ctx, pgx.Identifier{"dbchat", "training_data"},
			[]string{"tenant_id", "id", "model_id", "kind", "question", "content", "embedding", "embedder", "source"}, src)
		if err != nil {
			return fmt.Errorf("copy training_data: %w", err)
		}
		if int(n) != len(load) {
			return fmt.Errorf("copied %d rows, want %d", n, len(load))
		}
		loadTook = time.Since(loadStart)
		e.logf("vector: loaded %s rows in %s; building the HNSW indexes", thousands(len(load)), loadTook.Round(time.Second))
		return nil
	})
	if err != nil {
		return nil, err
	}
	data.loadTook, data.buildTook = loadTook, build
	if err := admin.QueryRow(ctx, `SELECT pg_size_pretty(pg_table_size('dbchat.training_data'))`).Scan(&data.tableSize); err != nil {
		return nil, err
	}
	ixRows, err := admin.Query(ctx, `SELECT indexrelid::regclass::text || ': ' || pg_size_pretty(pg_relation_size(indexrelid))
		FROM pg_index WHERE indrelid = 'dbchat.training_data'::regclass ORDER BY pg_relation_size(indexrelid) DESC`)
	if err != nil {
		return nil, err
	}
	if data.indexSize, err = pgx.CollectRows(ixRows, pgx.RowTo[string]); err != nil {
		return nil, err
	}
	e.logf("vector: %s rows (%s heap) ready in %s, HNSW builds %s", thousands(data.rows), data.tableSize,
		time.Since(t0).Round(time.Second), build.Round(time.Second))
	return data, nil
}

func seq(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// vecQuality is one strategy's answers for one class against the exact reference's.
type vecQuality struct {
	pairHit, pairWant int // pairs (k = 10) found among the exact top k
	allHit, allWant   int // every kind (10 pairs, 5 DDL, 5 documentation)
	short             int // queries answered with fewer pairs than exist (up to k)
	queries           int
	paths             map[string]int // how the pairs were searched
}

func (q vecQuality) recall() float64 {
	if q.pairWant == 0 {
		return math.NaN()
	}
	return float64(q.pairHit) / float64(q.pairWant)
}

func (q vecQuality) recallAll() float64 {
	if q.allWant == 0 {
		return math.NaN()
	}
	return float64(q.allHit) / float64(q.allWant)
}

func (q vecQuality) pathText() string {
	if len(q.paths) == 0 {
		return "—"
	}
	var parts []string
	for _, p := range []string{"exact", "hnsw", "hnsw → exact (fell back)", "none"} {
		if n := q.paths[p]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", p, n))
		}
	}
	return strings.Join(parts, ", ")
}

func measureQuality(results [][]vecResult, s int) vecQuality {
	q := vecQuality{paths: map[string]int{}}
	if s == vsFloor {
		q.paths = nil
	}
	for _, r := range results {
		q.queries++
		truth, got := r[vsFloor], r[s]
		for ki := range vecKinds {
			want := map[uuid.UUID]bool{}
			for _, id := range truth.ids[ki] {
				want[id] = true
			}
			hit := 0
			for _, id := range got.ids[ki] {
				if want[id] {
					hit++
				}
			}
			q.allHit += hit
			q.allWant += len(truth.ids[ki])
			if ki == 0 {
				q.pairHit += hit
				q.pairWant += len(truth.ids[ki])
				if len(got.ids[ki]) < len(truth.ids[ki]) {
					q.short++
				}
			}
		}
		if s != vsFloor {
			p := got.scan.Method
			if got.scan.FellBack {
				p = "hnsw → exact (fell back)"
			}
			q.paths[p]++
		}
	}
	return q
}

// p95Index is the index of the value at the 95th percentile of xs.
func p95Index(xs []float64) int {
	idx := seq(0, len(xs))
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case xs[a] < xs[b]:
			return -1
		case xs[a] > xs[b]:
			return 1
		}
		return 0
	})
	return idx[min(len(idx)-1, int(math.Round(0.95*float64(len(idx)-1))))]
}

type vecPlans struct {
	Query             int
	ClientMS          float64
	Auto, HNSW, Floor string
	// The HNSW-only plan's query, its latency, and the pairs it returned
	// against those that exist (up to k).
	HNSWQuery         int
	HNSWMS            float64
	HNSWShort         bool
	HNSWGot, HNSWWant int
}

// isSearch reports whether a captured statement is retrieval's search.
func isSearch(sql string) bool {
	return strings.Contains(sql, "FROM dbchat.training_data") && strings.Contains(sql, "embedding <=>")
}

// explainCaptured replays the statements one retrieval ran, in one
// transaction as dbchat_app with the tenant set, the searches under EXPLAIN
// (ANALYZE, BUFFERS); the other statements (the count, the HNSW settings)
// run as they did. The whole sequence runs twice and the second, warm,
// plans are returned.
func explainCaptured(ctx context.Context, appURL string, id tenant.Identity, stmts []capturedStmt) (string, error) {
	conn, err := pgx.Connect(ctx, appURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var out []string
	for range 2 {
		out = out[:0]
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			return "", err
		}
		if _, err := conn.Exec(ctx, setContext, id.TenantID.String(), id.UserID.String()); err != nil {
			return "", err
		}
		for _, st := range stmts {
			if !isSearch(st.sql) {
				if _, err := conn.Exec(ctx, st.sql, st.args...); err != nil {
					return "", fmt.Errorf("replay %q: %w", firstLine(st.sql), err)
				}
				continue
			}
			rows, err := conn.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+st.sql, st.args...)
			if err != nil {
				return "", err
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return "", err
			}
			out = append(out, strings.Join(lines, "\n"))
		}
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			return "", err
		}
	}
	return elideVectors(strings.Join(out, "\n\n")), nil
}

func explainFloor(ctx context.Context, admin *pgx.Conn, sql string, tenantID, modelID uuid.UUID, vec []float32) (string, error) {
	var lines []string
	for range 2 {
		// Text form of the vector, as the floor's pool sends it.
		rows, err := admin.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "+sql, tenantID, modelID, vecEmbedder, pgvector.NewVector(vec).String())
		if err != nil {
			return "", err
		}
		if lines, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return "", err
		}
	}
	return elideVectors(strings.Join(lines, "\n")), nil
}

func firstLine(s string) string {
	s = stripSQLCName(s)
	l, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(l)
}

// elideVectors shortens the 768 numbers of a vector literal in a plan.
func elideVectors(plan string) string {
	return vectorLiteral.ReplaceAllString(plan, "'[…768 numbers…]'")
}

var (
	vectorLiteral = regexp.MustCompile(`'\[[-0-9.e+,]{200,}\]'`)
	planBuffers   = regexp.MustCompile(`Buffers: shared hit=(\d+)(?: read=(\d+))?`)
	planIndex     = regexp.MustCompile(`(?:Index|Index Only|Bitmap Index) Scan (?:Backward )?(?:using|on) (\S+)`)
)

// planFacts summarises a plan for the analysis: PostgreSQL's own time, the
// buffers of the top node and the indexes used.
func planFacts(plan string) string {
	var parts []string
	if us := planTotalMicros(plan); us > 0 {
		parts = append(parts, fmt.Sprintf("PostgreSQL planning+execution %.1f ms", us/1000))
	}
	if m := planBuffers.FindStringSubmatch(plan); m != nil {
		read := m[2]
		if read == "" {
			read = "0"
		}
		parts = append(parts, fmt.Sprintf("top node's buffers %s hit, %s read", m[1], read))
	}
	seen := map[string]bool{}
	var idx []string
	for _, m := range planIndex.FindAllStringSubmatch(plan, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			idx = append(idx, "`"+m[1]+"`")
		}
	}
	if len(idx) > 0 {
		parts = append(parts, "indexes "+strings.Join(idx, ", "))
	}
	return strings.Join(parts, "; ")
}

var rowsRemoved = regexp.MustCompile(`Rows Removed by Filter: (\d+)`)

// maxRemoved is the largest "Rows Removed by Filter" of a plan.
func maxRemoved(plan string) int {
	n := 0
	for _, m := range rowsRemoved.FindAllStringSubmatch(plan, -1) {
		v, _ := strconv.Atoi(m[1])
		n = max(n, v)
	}
	return n
}

// planTotalMicros sums planning and execution times over the (possibly
// several) plans in text.
func planTotalMicros(text string) float64 {
	var total float64
	for _, re := range []*regexp.Regexp{planningTime, executionTime} {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			v, _ := strconv.ParseFloat(m[1], 64)
			total += v * 1000
		}
	}
	return total
}

func vecVerdict(recall, p95 float64) string {
	var miss []string
	if recall < vecRecallGoal {
		miss = append(miss, fmt.Sprintf("recall@10 %.3f, %.3f below %.2f", recall, vecRecallGoal-recall, vecRecallGoal))
	}
	if p95 > vecP95GoalMS {
		miss = append(miss, fmt.Sprintf("p95 %.1f ms, %.0f%% over %.0f ms", p95, (p95-vecP95GoalMS)/vecP95GoalMS*100, vecP95GoalMS))
	}
	if len(miss) == 0 {
		return fmt.Sprintf("met (recall %.3f; p95 %.0f%% under %.0f ms)", recall, (vecP95GoalMS-p95)/vecP95GoalMS*100, vecP95GoalMS)
	}
	return "**missed**: " + strings.Join(miss, "; ")
}

// plans2 is classes when plans are wanted, else nothing.
func plans2(classes []vecClass, plans []vecPlans) []vecClass {
	if plans == nil {
		return nil
	}
	return classes
}

func vectorSection(e *Env, c VectorConfig, data *vecData, quality [][]vecQuality, p50, p95 [][][]float64, plans []vecPlans) *Section {
	s := &Section{}
	largest := 0
	for _, ti := range data.classes[1].tenants {
		largest = max(largest, slices.Max(data.tenants[ti].sqlRows))
	}
	var rows [][]string
	for ci, cl := range data.classes {
		lo, hi, plo, phi := math.MaxInt, 0, math.MaxInt, 0
		for _, ti := range cl.tenants {
			t := data.tenants[ti]
			lo, hi = min(lo, t.rows), max(hi, t.rows)
			for _, n := range t.sqlRows {
				plo, phi = min(plo, n), max(phi, n)
			}
		}
		rows = append(rows, []string{cl.name + " (" + cl.share + ")", thousands(len(cl.tenants)), rangeText(lo, hi), rangeText(plo, phi), strconv.Itoa(len(data.queries[ci]))})
	}
	classes := mdTable([]string{"Class", "Tenants", "Rows per tenant", "Pairs per (tenant, model)", "Queries"}, rows)
	rows = nil
	var analysis []string
	for ci, cl := range data.classes {
		for _, st := range []int{vsFloor, vsExact, vsHNSW, vsAuto} {
			qv := quality[ci][st]
			recall, recallAll, short := fmt.Sprintf("%.3f", qv.recall()), fmt.Sprintf("%.3f", qv.recallAll()), fmt.Sprintf("%d / %d", qv.short, qv.queries)
			ratio := newDist(ratios(p95[ci][st], p95[ci][vsFloor])).f("%.2f")
			if st == vsFloor {
				recall, recallAll, short, ratio = "1 (truth)", "1 (truth)", "—", "1"
			}
			rows = append(rows, []string{cl.name, vecStrategies[st].name, recall, recallAll, short,
				newDist(p50[ci][st]).f("%.1f"), newDist(p95[ci][st]).f("%.1f"), ratio, qv.pathText()})
		}
		qa := quality[ci][vsAuto]
		ap95 := newDist(p95[ci][vsAuto])
		s.Summary = append(s.Summary, Row{
			Measure: fmt.Sprintf("%s tenants (%s): recall@10, p95", cl.name, cl.share),
			Floor:   "exact search p95 " + newDist(p95[ci][vsFloor]).m("%.1f ms"),
			Dbchat:  fmt.Sprintf("recall %.3f, p95 %s", qa.recall(), ap95.m("%.1f ms")),
			Ratio:   newDist(ratios(p95[ci][vsAuto], p95[ci][vsFloor])).f("%.2f") + " (not judged)",
			Goal:    fmt.Sprintf("recall ≥ %.2f, p95 ≤ %.0f ms", vecRecallGoal, vecP95GoalMS),
			Verdict: vecVerdict(qa.recall(), ap95.Med),
		})
		if qa.recall() < vecRecallGoal || ap95.Med > vecP95GoalMS {
			analysis = append(analysis, vecAnalysis(cl, quality[ci], p95[ci]))
		}
	}
	type planOut struct {
		Class, What string
		P           vecPlans
	}
	var ps []planOut
	for ci, p := range plans {
		what := "its p95 query"
		if p.HNSWShort {
			what = "the first query it answered short"
		}
		ps = append(ps, planOut{data.classes[ci].name, what, p})
	}
	s.Body = render("vector", map[string]any{"Recall": vecRecallGoal, "P95": vecP95GoalMS, "Rows": data.rows, "Dim": embed.Dim, "C": c,
		"Scaled": c.Rows < 200_000 || c.Tenants < 1000, "BelowExact": largest <= nlsql.DefaultExactMax, "Largest": largest,
		"ExactMax": nlsql.DefaultExactMax, "Others": c.Tenants - 11, "TenantTopics": vecTenantTopics, "DataNoise": vectest.DataNoise,
		"QueryNoise": vectest.QueryNoise, "LoadTook": data.loadTook, "BuildTook": data.buildTook, "TableSize": data.tableSize,
		"IndexSize": strings.Join(data.indexSize, ", "), "Classes": classes, "EfSearch": nlsql.DefaultEfSearch,
		"MaxScan": nlsql.DefaultMaxScanTuples, "Table": mdTable([]string{"Class", "Strategy", "recall@10 (pairs)", "recall, all kinds", "short", "p50 ms", "p95 ms", "p95 / exact reference p95", "path taken for the pairs"}, rows),
		"Analysis": analysis, "Observations": vecObservations(data, quality, p50, p95, plans), "Plans": ps})
	return s
}

func rangeText(lo, hi int) string {
	if lo == hi {
		return thousands(lo)
	}
	return thousands(lo) + "–" + thousands(hi)
}

// vecAnalysis states a missed goal for one class from the measurements.
func vecAnalysis(cl vecClass, q []vecQuality, p95 [][]float64) string {
	qa := q[vsAuto]
	text := fmt.Sprintf("%s: Auto's %s. Pairs searched: %s.", cl.name, strings.TrimPrefix(vecVerdict(qa.recall(), newDist(p95[vsAuto]).Med), "**missed**: "), qa.pathText())
	best, bestP95 := -1, math.Inf(1)
	for _, s := range []int{vsExact, vsHNSW} {
		if q[s].recall() >= vecRecallGoal && newDist(p95[s]).Med < bestP95 {
			best, bestP95 = s, newDist(p95[s]).Med
		}
	}
	if best >= 0 {
		return text + fmt.Sprintf(" Of the forced strategies, %s reaches the recall goal with p95 %.1f ms.", vecStrategies[best].name, bestP95)
	}
	return text + " No forced strategy reaches the recall goal either."
}

// vecObservations states what the table shows beyond the verdicts, from
// the numbers (and the plans, when captured).
func vecObservations(data *vecData, q [][]vecQuality, p50, p95 [][][]float64, plans []vecPlans) string {
	var out, exactClasses []string
	for ci, cl := range data.classes {
		if len(q[ci][vsAuto].paths) == 1 && q[ci][vsAuto].paths["exact"] > 0 {
			a, f := newDist(p50[ci][vsAuto]).Med, newDist(p50[ci][vsFloor]).Med
			exactClasses = append(exactClasses, fmt.Sprintf("%s %+.2f ms (%.2f×)", cl.name, a-f, a/f))
		}
	}
	if len(exactClasses) > 0 {
		out = append(out, fmt.Sprintf("Where Auto searches exactly, its p50 differs from the exact reference's (one statement, no count, no transaction) by %s.", strings.Join(exactClasses, ", ")))
	}
	for ci, cl := range data.classes {
		au, hn, ex := newDist(p95[ci][vsAuto]).Med, newDist(p95[ci][vsHNSW]).Med, newDist(p95[ci][vsExact]).Med
		if q[ci][vsAuto].paths["hnsw"] > 0 && hn > au {
			out = append(out, fmt.Sprintf("On the %s class Auto's p95 is %.1f ms against %.1f ms for HNSW without fallback.", cl.name, au, hn))
		}
		if h := q[ci][vsHNSW]; h.short > 0 || h.recall() < vecRecallGoal {
			text := fmt.Sprintf("HNSW without fallback answers %d of %d %s-class queries short (recall %.3f) at p95 %.0f ms.", h.short, h.queries, cl.name, h.recall(), hn)
			if ci < len(plans) {
				if removed := maxRemoved(plans[ci].HNSW); removed > 0 {
					text += fmt.Sprintf(" In the plan below one scan discards %s rows by filter", thousands(removed))
					if m := planBuffers.FindStringSubmatch(plans[ci].HNSW); m != nil && m[2] != "" {
						text += fmt.Sprintf(" and reads %s pages from outside shared_buffers", m[2])
					}
					text += "."
				}
			}
			out = append(out, text)
		}
		if q[ci][vsAuto].paths["hnsw"] > 0 && ex > au {
			out = append(out, fmt.Sprintf("For the %s class exact search (ForceExact) has p95 %.1f ms against Auto's %.1f ms on the HNSW path.", cl.name, ex, au))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, " ") + "\n"
}
