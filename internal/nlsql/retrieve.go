package nlsql

import (
	"bytes"
	"cmp"
	"context"
	"crypto/md5"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/pgvector/pgvector-go"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Ks is how many rows of each kind to retrieve; a zero field takes the
// default (DefaultKs), a negative one retrieves none of that kind.
type Ks struct {
	SQL           int
	DDL           int
	Documentation int
}

// DefaultKs are the defaults: 10 pairs, 5 DDL items, 5 documentation items.
var DefaultKs = Ks{SQL: 10, DDL: 5, Documentation: 5}

// MaxK caps each k.
const MaxK = 100

func (k Ks) of(kind string) int {
	var n, def int
	switch kind {
	case KindSQL:
		n, def = k.SQL, DefaultKs.SQL
	case KindDDL:
		n, def = k.DDL, DefaultKs.DDL
	case KindDocumentation:
		n, def = k.Documentation, DefaultKs.Documentation
	}
	switch {
	case n == 0:
		return def
	case n < 0:
		return 0
	}
	return min(n, MaxK)
}

// Match is one retrieved training row. For a pair, Question is set and
// Content is its SQL.
type Match struct {
	ID       uuid.UUID `json:"id"`
	Question string    `json:"question,omitempty"`
	Content  string    `json:"content"`
	// Distance is the cosine distance to the question (0 identical, 2
	// opposite).
	Distance float64 `json:"distance"`
	// Verified is set for a pair a tenant admin verified (its SQL is gold).
	Verified bool `json:"verified"`

	asked bool // a pair trained with the question asked (Retriever.Question)
}

// Context is what retrieval found for a question, nearest first per kind.
type Context struct {
	SQL           []Match `json:"sql"`
	DDL           []Match `json:"ddl"`
	Documentation []Match `json:"documentation"`
	// Scans says how each kind was searched (for logs and tests).
	Scans []Scan `json:"scans"`
}

// Scan describes the search of one kind.
type Scan struct {
	Kind string `json:"kind"`
	// Rows is how many rows the (tenant, model, embedder, kind) set holds
	// (dbchat.training_counts, kept by a trigger: migration 00029).
	Rows int `json:"rows"`
	// Method is "none" (empty set or k = 0), "exact" or "hnsw"; FellBack is
	// set when an HNSW scan came back short and the kind was searched
	// exactly instead.
	Method   string `json:"method"`
	FellBack bool   `json:"fell_back,omitempty"`
	// TenantIndex is set when an "hnsw" scan used the tenant's own partial
	// index of the model and kind (TuneVectorIndexes) rather than the kind's
	// graph of all tenants.
	TenantIndex bool `json:"tenant_index,omitempty"`
}

// Method forces an access path (measurements and tests); the zero value
// lets Retrieve choose.
type Method int

// The methods.
const (
	Auto Method = iota
	ForceExact
	ForceHNSW // no fallback either: what the index alone returns
)

// Retriever finds the nearest training rows. Its zero value uses the
// defaults below, which Retrieve uses.
//
// The access path, per kind (see also db/migrations/00004_nlsql.sql):
//
//   - Every tenant's rows live in one table, so an HNSW index over it
//     orders all tenants' vectors together and RLS (and the model,
//     embedder and kind filters) are applied to what the index returns. An
//     HNSW scan stops after hnsw.ef_search candidates, so a tenant holding
//     0.1% of the rows gets about ef_search/1000 of its own back: usually
//     none. pgvector 0.8's iterative scan keeps walking the graph until
//     enough rows pass the filters, but the walk grows with the inverse of
//     the tenant's share (to find k rows it visits about k/share tuples),
//     and stops at hnsw.max_scan_tuples.
//   - So Retrieve first reads the set's size, which a trigger keeps in
//     dbchat.training_counts (migration 00029). A set of up to
//     ExactMax rows is ranked exactly: the B-tree finds precisely its rows
//     and each distance is computed, which is exact, always full k, and as
//     cheap as a graph walk at these sizes (measured on 2 cores: about 2 us
//     per row for 768-dimensional vectors stored inline, 0.4 ms for a
//     tenant of 50 rows, 12 ms for 7000; the graph took 3-5 ms there).
//   - A larger set is searched with the per-kind partial HNSW index and an
//     iterative scan (relaxed order, re-sorted), with ef_search EfSearch,
//     provided its expected walk, k x table rows / set rows, stays under
//     half of MaxScanTuples; otherwise it is ranked exactly too (a big set
//     that is a small share of a huge table). Measured: recall@10 0.99-1.0
//     against exact search for a tenant with 20% of 30,000-50,000 rows.
//   - A model past TuneVectorIndexes's threshold has partial HNSW indexes
//     of its own, one per kind, which the same count statement finds in the
//     catalog. Such a graph holds only the model's rows of the kind, so the
//     walk needs no filter but the embedder's, short even for the largest
//     tenant of a large table, where the global graph also passes every
//     other tenant's rows (p95 29 ms for a 50,000-row tenant among 200,000
//     rows, measured). A set above TenantExactMax rows is then searched
//     through that index: the search adds tenant_id = the tenant's id (a
//     parameter, planned with force_custom_plan so that the planner can
//     prove the index's predicate from it and model_id = $1) to the
//     policy's own filter, with ef_search TenantEfSearch
//     (200: for a 50,000-row tenant among 200,000 rows, measured, recall@10
//     0.970 at 200 but 0.920 at 100, against 0.918 on the global graph at
//     200; p50 21.9 ms against 29.6 on the global graph, on a shared 2-core
//     machine), or LargeEfSearch when that graph holds LargeGraph rows or
//     more (such a graph is also built denser: VectorIndexTuning.Large).
//   - Should an HNSW scan still return fewer than min(k, set size) rows,
//     the kind is searched exactly: a tenant never gets fewer than k rows
//     while it has k.
//
// Only rows whose embedder equals the given name are compared.
type Retriever struct {
	ExactMax       int    // default 2000
	TenantExactMax int    // default 500: the exact threshold when the model has its own index
	EfSearch       int    // default 200 (hnsw.ef_search, the first pass's candidates)
	TenantEfSearch int    // default 200: ef_search when a model's own index is searched
	LargeEfSearch  int    // default 400: the same when that graph holds LargeGraph rows or more
	LargeGraph     int    // default LargeGraphRows
	MaxScanTuples  int    // default 20000 (hnsw.max_scan_tuples)
	Method         Method // default Auto
	// GlobalOnly ignores the model's own index (measurements: the path
	// before own indexes existed).
	GlobalOnly bool
	// Exclude are rows never returned: an evaluation leaves the pair it
	// asks about out of that question's own retrieval (leave-one-out).
	Exclude []uuid.UUID
	// Question, if set, is the question asked: pairs trained with the same
	// question (up to the case of its first letter, spaces and a final
	// ? . or !: QuestionForms) are returned first, whatever an approximate
	// HNSW scan of the pairs found (see statement).
	Question string

	// planHook, if set (tests), receives the EXPLAIN of each search statement.
	planHook func(plan string)
}

// Defaults of Retriever's zero fields.
const (
	DefaultExactMax       = 2000
	DefaultTenantExactMax = 500
	DefaultEfSearch       = 200
	DefaultTenantEfSearch = 200
	DefaultLargeEfSearch  = 400
	// SparseLargeEfSearch is LargeEfSearch for a large graph built with an
	// m below LargeGraphM (recall@10 0.982 at 800, 0.946 at 400, measured:
	// NLSQL.md).
	SparseLargeEfSearch  = 800
	DefaultMaxScanTuples = 20000
)

func (r Retriever) withDefaults() Retriever {
	if r.ExactMax <= 0 {
		r.ExactMax = DefaultExactMax
	}
	if r.TenantExactMax <= 0 {
		r.TenantExactMax = DefaultTenantExactMax
	}
	if r.EfSearch <= 0 {
		r.EfSearch = DefaultEfSearch
	}
	r.EfSearch = min(r.EfSearch, 1000) // pgvector's maximum
	if r.TenantEfSearch <= 0 {
		r.TenantEfSearch = DefaultTenantEfSearch
	}
	r.TenantEfSearch = min(r.TenantEfSearch, 1000)
	if r.LargeEfSearch <= 0 {
		r.LargeEfSearch = DefaultLargeEfSearch
	}
	r.LargeEfSearch = min(r.LargeEfSearch, 1000)
	if r.LargeGraph <= 0 {
		r.LargeGraph = LargeGraphRows
	}
	if r.MaxScanTuples <= 0 {
		r.MaxScanTuples = DefaultMaxScanTuples
	}
	return r
}

// Retrieve returns the nearest question->SQL pairs, DDL items and
// documentation items of the model (and embedder) for vec, with the default
// Retriever. tx must be a transaction (tenant.DB.Tx, not Once). It takes
// two round trips: a count, then one search statement for all kinds or,
// when a kind is searched with HNSW, one pipelined batch (see searchHNSW)
// that leaves the transaction's settings as it found them.
func Retrieve(ctx context.Context, tx tenant.Conn, modelID uuid.UUID, embedder string, vec []float32, k Ks) (Context, error) {
	return Retriever{}.Retrieve(ctx, tx, modelID, embedder, vec, k)
}

// Retrieve is the package-level Retrieve with r's settings.
func (r Retriever) Retrieve(ctx context.Context, tx tenant.Conn, modelID uuid.UUID, embedder string, vec []float32, k Ks) (Context, error) {
	r = r.withDefaults()
	res := Context{SQL: []Match{}, DDL: []Match{}, Documentation: []Match{}}
	if len(vec) != embed.Dim {
		return res, apperr.Errorf(apperr.Internal, "retrieve: vector has %d dimensions, want %d", len(vec), embed.Dim)
	}
	counts, err := q.CountRetrievable(ctx, tx, dbsqlc.CountRetrievableParams{ModelID: modelID, Embedder: embedder})
	if err != nil {
		return res, err
	}
	rows := map[string]int{KindSQL: int(counts.SqlCount), KindDDL: int(counts.DdlCount), KindDocumentation: int(counts.DocumentationCount)}
	table := math.Max(counts.TableEstimate, 1)
	// The model's own graphs, by kind: their sizes, and the tenant's id
	// for the filter that lets the planner use them.
	ownRows := map[string]float64{KindSQL: counts.SqlIndexRows, KindDDL: counts.DdlIndexRows, KindDocumentation: counts.DocumentationIndexRows}
	ownM := map[string]int32{KindSQL: counts.SqlIndexM, KindDDL: counts.DdlIndexM, KindDocumentation: counts.DocumentationIndexM}
	var tenantID *uuid.UUID
	for _, n := range ownRows {
		if n >= 0 && !r.GlobalOnly && tenantID == nil {
			id, err := uuid.Parse(counts.TenantSetting)
			if err != nil {
				return res, apperr.Errorf(apperr.Internal, "retrieve: tenant setting %q: %v", counts.TenantSetting, err)
			}
			tenantID = &id
		}
	}

	var branches []branch
	hnsw := false
	for _, kind := range Kinds {
		want, n := k.of(kind), rows[kind]
		scan := Scan{Kind: kind, Rows: n, Method: "none"}
		if want > 0 && n > 0 {
			scan.Method = "exact"
			own, graph := tenantID != nil && ownRows[kind] >= 0, table
			if own {
				graph = math.Max(ownRows[kind], 1)
			}
			if r.useHNSW(want, n, graph, own) {
				scan.Method, scan.TenantIndex = "hnsw", own
				hnsw = true
			}
			branches = append(branches, branch{kind: kind, k: want, hnsw: scan.Method == "hnsw", own: scan.TenantIndex, graph: graph, m: int(ownM[kind])})
		}
		res.Scans = append(res.Scans, scan)
	}
	if len(branches) == 0 {
		return res, nil
	}
	v := pgvector.NewVector(vec)
	var found map[string][]Match
	if hnsw {
		found, err = r.searchHNSW(ctx, tx, modelID, embedder, v, branches, tenantID)
	} else {
		found, err = r.search(ctx, tx, modelID, embedder, v, branches, nil)
	}
	if err != nil {
		return res, err
	}
	for _, b := range branches { // the question's own pairs may come twice
		found[b.kind] = found[b.kind][:min(len(found[b.kind]), b.k)]
	}
	// Fallback: an HNSW scan that came back short is redone exactly.
	var redo []branch
	for _, b := range branches {
		if b.hnsw && r.Method != ForceHNSW && len(found[b.kind]) < min(b.k, rows[b.kind]) {
			redo = append(redo, branch{kind: b.kind, k: b.k})
			for j := range res.Scans {
				if res.Scans[j].Kind == b.kind {
					res.Scans[j].FellBack = true
				}
			}
		}
	}
	if len(redo) > 0 {
		again, err := r.search(ctx, tx, modelID, embedder, v, redo, nil)
		if err != nil {
			return res, err
		}
		for kind, ms := range again {
			found[kind] = ms
		}
	}
	res.SQL = append(res.SQL, found[KindSQL]...)
	res.DDL = append(res.DDL, found[KindDDL]...)
	res.Documentation = append(res.Documentation, found[KindDocumentation]...)
	return res, nil
}

// useHNSW decides the access path for a set of n rows out of a graph of
// about table rows, the tenant's own of the kind when own is set (see
// Retriever).
func (r Retriever) useHNSW(k, n int, table float64, own bool) bool {
	switch r.Method {
	case ForceExact:
		return false
	case ForceHNSW:
		return true
	}
	if n <= r.ExactMax && (!own || n <= r.TenantExactMax) {
		return false
	}
	walk := float64(k) * math.Max(table, float64(n)) / float64(n)
	return walk <= float64(r.MaxScanTuples)/2
}

// searchHNSW runs the search with the HNSW settings in force: iterative
// scans (relaxed order; the rows are re-sorted), max_scan_tuples, and
// enable_sort and jit off. Branches run in groups by the hnsw.ef_search
// their graph needs (efSearch), one statement per group, because the setting
// holds for a whole statement: a huge tenant's graph of pairs needs
// LargeEfSearch, which would slow its far smaller DDL and documentation
// graphs several-fold. With a branch searching the model's own graph
// (branch.own; tenantID is then the tenant's id) the statements are planned
// for their actual parameters (plan_cache_mode force_custom_plan): a generic
// plan of a prepared statement cannot use a partial index whose predicate
// names a value the parameter only has at execution.
//
// enable_sort: the planner estimates a tenant's share of the table from
// statistics that do not know the tenant (RLS compares tenant_id with a
// setting), so for a large set it still prefers the B-tree and a sort, which
// is exact but, at 7000 rows, about ten times slower than the graph (11 ms
// against 1.2 ms, measured). Retrieve has already decided from the real
// count, so sorting is disabled, which leaves the ordered HNSW scan as the
// only plan for its branches; exact branches keep their sort (they have no
// other plan). A disabled sort costs 1e10 in the planner's units, which would
// make PostgreSQL JIT-compile the statement (about half a second, measured),
// so jit is off too.
//
// Everything travels in one pipelined batch inside a savepoint, whose
// rollback restores every setting for the rest of the transaction (the
// searches write nothing): one round trip however many groups.
func (r Retriever) searchHNSW(ctx context.Context, tx tenant.Conn, modelID uuid.UUID, embedder string, vec pgvector.Vector, branches []branch, tenantID *uuid.UUID) (map[string][]Match, error) {
	plans := "auto"
	if slices.ContainsFunc(branches, func(b branch) bool { return b.own }) {
		plans = "force_custom_plan"
	}
	found := map[string][]Match{}
	b := &pgx.Batch{}
	b.Queue(`SAVEPOINT nlsql_retrieve`)
	b.Queue(`SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.max_scan_tuples', $1, true),
		set_config('enable_sort', 'off', true), set_config('jit', 'off', true),
		set_config('plan_cache_mode', CASE WHEN $2 = 'auto' THEN current_setting('plan_cache_mode') ELSE $2 END, true)`,
		strconv.Itoa(r.MaxScanTuples), plans)
	for _, g := range r.efGroups(branches) {
		b.Queue(`SELECT set_config('hnsw.ef_search', $1, true)`, strconv.Itoa(g.ef))
		id := tenantID
		if !slices.ContainsFunc(g.branches, func(b branch) bool { return b.own }) {
			id = nil // the statement names no tenant_id parameter
		}
		sql, args := r.statement(modelID, embedder, vec, g.branches, id)
		if r.planHook != nil {
			ef := g.ef
			b.Queue("EXPLAIN (COSTS OFF) "+sql, args...).Query(func(rows pgx.Rows) error {
				return r.reportPlan(rows, ef)
			})
		}
		b.Queue(sql, args...).Query(func(rows pgx.Rows) error { return collect(rows, found) })
	}
	b.Queue(`ROLLBACK TO SAVEPOINT nlsql_retrieve`)
	b.Queue(`RELEASE SAVEPOINT nlsql_retrieve`)
	if err := tx.RunBatch(ctx, b); err != nil {
		return nil, err
	}
	sortMatches(found)
	return found, nil
}

// efGroup is the branches searched with one hnsw.ef_search.
type efGroup struct {
	ef       int
	branches []branch
}

// efGroups groups branches by efSearch, in the order of first appearance;
// exact branches join the first group (ef_search does not touch them).
func (r Retriever) efGroups(branches []branch) []efGroup {
	var groups []efGroup
	var exact []branch
	for _, b := range branches {
		if !b.hnsw {
			exact = append(exact, b)
			continue
		}
		ef := r.efSearch(b)
		i := slices.IndexFunc(groups, func(g efGroup) bool { return g.ef == ef })
		if i < 0 {
			groups = append(groups, efGroup{ef: ef})
			i = len(groups) - 1
		}
		groups[i].branches = append(groups[i].branches, b)
	}
	if len(groups) == 0 {
		return []efGroup{{ef: r.EfSearch, branches: exact}}
	}
	groups[0].branches = append(groups[0].branches, exact...)
	return groups
}

// efSearch is the hnsw.ef_search a branch's graph needs: EfSearch on the
// kind's graph of all tenants, TenantEfSearch on the model's own, and
// LargeEfSearch on an own graph of LargeGraph rows or more, or
// SparseLargeEfSearch if that graph was built sparser than LargeGraphM.
func (r Retriever) efSearch(b branch) int {
	switch {
	case !b.own:
		return r.EfSearch
	case b.graph >= float64(r.LargeGraph) && b.m < LargeGraphM:
		return max(r.LargeEfSearch, SparseLargeEfSearch)
	case b.graph >= float64(r.LargeGraph):
		return r.LargeEfSearch
	}
	return r.TenantEfSearch
}

type branch struct {
	kind  string
	k     int
	hnsw  bool
	own   bool    // hnsw through the model's own index of the kind
	graph float64 // rows of the graph searched (own: the model's of the kind)
	m     int     // the own graph's m
}

// kindLiteral is a kind as an SQL literal. Kinds are constants, never
// input; the literal (not a parameter) lets the planner match the kind's
// partial HNSW index.
var kindLiteral = map[string]string{KindSQL: "'sql'", KindDDL: "'ddl'", KindDocumentation: "'documentation'"}

// search runs the statement of branches (see statement) as it stands: the
// exact path, and the exact redo of short HNSW scans.
func (r Retriever) search(ctx context.Context, tx tenant.Conn, modelID uuid.UUID, embedder string, vec pgvector.Vector, branches []branch, tenantID *uuid.UUID) (map[string][]Match, error) {
	sql, args := r.statement(modelID, embedder, vec, branches, tenantID)
	if r.planHook != nil {
		rows, err := tx.Query(ctx, "EXPLAIN (COSTS OFF) "+sql, args...)
		if err != nil {
			return nil, err
		}
		if err := r.reportPlan(rows, 0); err != nil {
			return nil, err
		}
	}
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	found := map[string][]Match{}
	if err := collect(rows, found); err != nil {
		return nil, err
	}
	sortMatches(found)
	return found, nil
}

// statement is one search statement with a UNION ALL branch per kind.
//
// An exact branch computes distances in a MATERIALIZED CTE without ORDER BY,
// which the HNSW index cannot serve, so the planner reaches the rows through
// the B-tree (or the table) and sorts them all: exact. An HNSW branch orders
// by the distance operator with LIMIT, the shape the index serves, in a
// plain subquery (wrapped in a MATERIALIZED CTE, the same scan measured
// about 200 times slower); relaxed-order iterative scans may return rows
// slightly out of order, so rows are re-sorted here. A branch on the
// model's own graph (own) also filters on tenant_id = tenantID, which the
// policy implies anyway but which lets the planner use the partial index.
//
// With r.Question, the pairs branch has a sibling: up to k pairs trained
// with the same question, found by the md5 of each of its QuestionForms
// through a B-tree (migration 00030: md5 and = are leakproof, so the planner
// may use the index under the forced policy) and marked asked, so that they
// rank first. An HNSW graph of near-identical pairs (templated questions
// that differ in a value) leaves some pairs out of even their own vector's
// top k (2.4% of part 5's 8,498, measured), and the generator would then
// adapt another pair or refuse.
func (r Retriever) statement(modelID uuid.UUID, embedder string, vec pgvector.Vector, branches []branch, tenantID *uuid.UUID) (string, []any) {
	var sql strings.Builder
	args := []any{modelID, embedder, vec}
	exclude := "" // only when asked, so every other plan stays as measured
	if len(r.Exclude) > 0 {
		args = append(args, r.Exclude)
		exclude = fmt.Sprintf(" AND id <> ALL ($%d::uuid[])", len(args))
	}
	ownFilter := ""
	if tenantID != nil {
		args = append(args, *tenantID)
		ownFilter = fmt.Sprintf(" AND tenant_id = $%d::uuid", len(args))
	}
	question := 0 // the parameter number of the md5s of r.Question's forms
	if r.Question != "" && slices.ContainsFunc(branches, func(b branch) bool { return b.kind == KindSQL }) {
		var sums []string
		for _, f := range QuestionForms(r.Question) {
			sums = append(sums, fmt.Sprintf("%x", md5.Sum([]byte(f))))
		}
		args = append(args, sums)
		question = len(args)
	}
	for i, b := range branches {
		if i > 0 {
			sql.WriteString("\nUNION ALL\n")
		}
		lit := kindLiteral[b.kind]
		if b.hnsw {
			kindFilter, tenantFilter := "kind = "+lit, ""
			if b.own {
				// The model index's own form of the kind filter (see
				// TuneVectorIndexes): the global graph's predicate (kind =
				// lit) cannot be proven from it, so the planner has the
				// model's graph only. With kind = lit both would match,
				// and it picked the global one in tests.
				kindFilter, tenantFilter = "(kind || '') = "+lit, ownFilter
			}
			fmt.Fprintf(&sql, `SELECT %[1]s AS kind, id, question, content, distance, verified, false AS asked FROM (
    SELECT id, question, content, embedding <=> $3 AS distance, verified_at IS NOT NULL AS verified
    FROM dbchat.training_data
    WHERE %[6]s AND model_id = $1 AND embedder = $2%[4]s%[5]s
    ORDER BY embedding <=> $3
    LIMIT %[2]d) s%[3]d`, lit, b.k, i, exclude, tenantFilter, kindFilter)
		} else {
			fmt.Fprintf(&sql, `SELECT %[1]s AS kind, id, question, content, distance, verified, false AS asked FROM (
    WITH c AS MATERIALIZED (
        SELECT id, question, content, embedding <=> $3 AS distance, verified_at IS NOT NULL AS verified
        FROM dbchat.training_data
        WHERE kind = %[1]s AND model_id = $1 AND embedder = $2%[4]s)
    SELECT * FROM c ORDER BY distance, id LIMIT %[2]d) s%[3]d`, lit, b.k, i, exclude)
		}
		if b.kind == KindSQL && question > 0 {
			fmt.Fprintf(&sql, `
UNION ALL
SELECT 'sql' AS kind, id, question, content, distance, verified, true AS asked FROM (
    SELECT id, question, content, embedding <=> $3 AS distance, verified_at IS NOT NULL AS verified
    FROM dbchat.training_data
    WHERE kind = 'sql' AND model_id = $1 AND embedder = $2%[3]s
      AND md5(question) = ANY ($%[4]d::text[])
    LIMIT %[1]d) q%[2]d`, b.k, i, exclude, question)
		}
	}
	return sql.String(), args
}

// reportPlan hands an EXPLAIN's lines to planHook, headed by the
// statement's hnsw.ef_search (0: an exact search).
func (r Retriever) reportPlan(rows pgx.Rows, ef int) error {
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	r.planHook(fmt.Sprintf("hnsw.ef_search = %d\n%s", ef, strings.Join(lines, "\n")))
	return nil
}

// collect adds a search statement's rows to found, by kind.
func collect(rows pgx.Rows, found map[string][]Match) error {
	defer rows.Close()
	for rows.Next() {
		var kind string
		var question *string
		var m Match
		if err := rows.Scan(&kind, &m.ID, &question, &m.Content, &m.Distance, &m.Verified, &m.asked); err != nil {
			return err
		}
		if question != nil {
			m.Question = *question
		}
		found[kind] = append(found[kind], m)
	}
	return rows.Err()
}

// sortMatches orders each kind's rows: pairs trained with the question
// asked first, then nearest first (relaxed-order iterative scans may return
// rows slightly out of order), ties by id; a row found twice (by the graph
// and by its question) is kept once.
func sortMatches(found map[string][]Match) {
	for kind, ms := range found {
		slices.SortFunc(ms, func(a, b Match) int {
			if a.asked != b.asked {
				if a.asked {
					return -1
				}
				return 1
			}
			if c := cmp.Compare(a.Distance, b.Distance); c != 0 {
				return c
			}
			return bytes.Compare(a.ID[:], b.ID[:])
		})
		seen := make(map[uuid.UUID]bool, len(ms))
		found[kind] = slices.DeleteFunc(ms, func(m Match) bool {
			dup := seen[m.ID]
			seen[m.ID] = true
			return dup
		})
	}
}

// QuestionForms are the forms a question may have been trained in, for
// Retriever.Question: without spaces at either end or a final ? . or !,
// then with each of those, each with its first letter in either case
// ("how many orders" finds "How many orders?").
func QuestionForms(q string) []string {
	base := strings.TrimRight(strings.TrimSpace(q), "?.! ")
	if base == "" {
		return nil
	}
	r, n := utf8.DecodeRuneInString(base)
	var out []string
	for _, first := range []string{string(unicode.ToLower(r)), string(unicode.ToUpper(r))} {
		for _, end := range []string{"", "?", ".", "!"} {
			f := first + base[n:] + end
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}
