package bench

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/evalset"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sqlguard"
)

func TestDist(t *testing.T) {
	if d := newDist([]float64{5, 1, 3, 2, 4}); d.Med != 3 || d.Min != 1 || d.Max != 5 || d.N != 5 || d.f("%.1f") != "3.0 (1.0–5.0)" {
		t.Fatalf("dist = %+v, %q", d, d.f("%.1f"))
	}
	if got := newDist([]float64{1, 2, 3, 4}).Med; got != 2.5 || !math.IsNaN(newDist(nil).Med) || newDist(nil).f("%.1f") != "n/a" {
		t.Fatalf("median of 1..4 = %v, or empty dist", got)
	}
	if pq([]float64{10, 1, 5}, 0.5) != 5 || thousands(1234567) != "1,234,567" || thousands(-100) != "-100" {
		t.Fatal("pq or thousands")
	}
}

func TestGoalVerdict(t *testing.T) {
	le, ge := goal{1.10, true, ""}, goal{0.5, false, ""}
	for _, c := range [][2]string{{le.verdict(1.05), "met (5% headroom)"}, {le.verdict(1.21), "**missed** by 10% (1.21× vs ≤ 1.10×)"},
		{ge.verdict(0.25), "**missed** by 50% (0.25× vs ≥ 0.50×)"}, {ge.verdict(0.75), "met (50% above)"}} {
		if c[0] != c[1] {
			t.Errorf("verdict %q, want %q", c[0], c[1])
		}
	}
}

func TestSelectParts(t *testing.T) {
	all, err1 := selectParts("")
	got, err2 := selectParts("import, 1, soak")
	if _, err3 := selectParts("nope"); err1 != nil || len(all) != len(suite) || err2 != nil || strings.Join(got, ",") != "rls,import,soak" || err3 == nil {
		t.Fatalf("all %v, %v; got %v, %v; unknown part: %v", all, err1, got, err2, err3)
	}
}

// A report written by one part keeps the other parts' sections.
func TestReportKeepsOtherSections(t *testing.T) {
	path := filepath.Join(t.TempDir(), "B.md")
	for _, s := range []*Section{
		{Part: "rls", Title: "1. RLS policy cost", Body: "rls body --> still fine\n", Summary: []Row{{Measure: "lookup", Ratio: "1.01", Verdict: "met"}}},
		{Part: "import", Title: "4. Import vs COPY", Body: "import body\n", Summary: []Row{{Measure: "rows/s", Ratio: "0.6", Verdict: "met"}}},
	} {
		if err := writeReport(path, machine{CPU: "cpu", Cores: 2}, "make bench BENCH="+s.Part, []*Section{s}); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := os.ReadFile(path)
	// What follows the sections (make lighthouse's block) stays.
	if err := os.WriteFile(path, append(b, "\n## Web app\n\n<!-- lighthouse:begin -->\nscores\n<!-- lighthouse:end -->\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeReport(path, machine{CPU: "cpu", Cores: 2}, "make bench BENCH=rls", []*Section{{Part: "rls", Title: "1. RLS policy cost", Body: "rls body --> still fine\n",
		Summary: []Row{{Measure: "lookup", Ratio: "1.01", Verdict: "met"}}}}); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	text := string(b)
	for _, want := range []string{"rls body --> still fine", "import body", "<!-- lighthouse:begin -->\nscores\n<!-- lighthouse:end -->", "| 1. RLS policy cost | lookup |", "| 4. Import vs COPY | rows/s |", "not run yet"} {
		if !strings.Contains(text, want) {
			t.Errorf("report lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "<!-- bench:begin rls -->"); n != 1 {
		t.Errorf("%d rls sections", n)
	}
}

// procStat parses this process's /proc entry: its parent pid, and a CPU
// time that agrees with getrusage (both count every thread; /proc in ticks).
func TestProcStat(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc here")
	}
	// Spin until getrusage shows at least 50 ms of CPU (a busy machine
	// gives this process less than the wall time).
	var before, after syscall.Rusage
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end) && rusageCPU(&before) < 50*time.Millisecond; {
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	}
	ppid, cpu, ok := procStat(os.Getpid())
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &after); err != nil {
		t.Fatal(err)
	}
	if !ok || ppid != os.Getppid() {
		t.Fatalf("procStat = ppid %d, ok %v; want ppid %d", ppid, ok, os.Getppid())
	}
	// /proc counts whole ticks (10 ms), so allow two ticks either side.
	const slack = 2 * time.Second / clockTick
	if lo, hi := rusageCPU(&before)-slack, rusageCPU(&after)+slack; cpu < 30*time.Millisecond || cpu < lo || cpu > hi {
		t.Fatalf("procStat CPU %v, want ≥ 30ms and within %v–%v (getrusage)", cpu, lo, hi)
	}
	if m, err := procMemory(os.Getpid()); err != nil || m.HWM <= 0 || m.RssAnon <= 0 {
		t.Fatalf("procMemory: %+v, %v", m, err)
	}
}

func TestMeasureQuality(t *testing.T) {
	ids := collect(make([]uuid.UUID, 12), func(uuid.UUID) uuid.UUID { return uuid.New() })
	truth := vecResult{ids: [3][]uuid.UUID{ids[:10], ids[10:12], nil}}
	full := vecResult{ids: truth.ids, scan: nlsql.Scan{Kind: nlsql.KindSQL, Method: "hnsw"}}
	short := vecResult{ids: [3][]uuid.UUID{ids[:7], ids[10:12], nil}, scan: nlsql.Scan{Kind: nlsql.KindSQL, Method: "hnsw", FellBack: true}}
	q := measureQuality([][]vecResult{{truth, full, short, full}, {truth, full, full, full}}, vsHNSW)
	if q.recall() != 17.0/20 || q.short != 1 || q.queries != 2 || q.recallAll() != 21.0/24 {
		t.Fatalf("quality = %+v (recall %v, all %v)", q, q.recall(), q.recallAll())
	}
	if got := q.pathText(); got != "hnsw 1, hnsw → exact (fell back) 1" {
		t.Fatal(got)
	}
	if v, w := vecVerdict(0.99, 25, 20), vecVerdict(0.96, 10, 20); !strings.Contains(v, "missed") || !strings.Contains(v, "25% over") || !strings.HasPrefix(w, "met") {
		t.Fatal(v, w)
	}
}

// The floor's search is retrieval's exact branch with a tenant filter.
func TestFloorSearchSQL(t *testing.T) {
	sql := floorSearchSQL()
	for _, want := range []string{"tenant_id = $1 AND kind = 'sql' AND model_id = $2 AND embedder = $3", "LIMIT 10) s0", "kind = 'ddl'", "LIMIT 5) s2", "MATERIALIZED"} {
		if !strings.Contains(sql, want) {
			t.Errorf("floor SQL lacks %q:\n%s", want, sql)
		}
	}
	if statementPhase(sql) != "retrieval search (one UNION ALL branch per kind)" || statementPhase("-- name: CountRetrievable :one\nSELECT 1") != "CountRetrievable" {
		t.Error("statementPhase")
	}
}

// A pipeline is named by its statements, or by its first when that is
// retrieval's SAVEPOINT.
func TestPipelinePhase(t *testing.T) {
	var tr phaseTracer
	for _, sqls := range [][]string{
		{"BEGIN", "SELECT set_config('app.tenant_id', $1, true)", "-- name: ListTables :many\nSELECT 1"},
		{"SAVEPOINT nlsql_retrieve", "SELECT set_config('hnsw.ef_search', $1, true)", "SELECT 'sql' AS kind FROM x ORDER BY embedding <=> $3", "ROLLBACK TO SAVEPOINT nlsql_retrieve", "RELEASE SAVEPOINT nlsql_retrieve"},
		{"-- name: ListActiveCatalog :many\nSELECT 1", "COMMIT"},
		{"-- name: ListTableColumns :many\nSELECT 1", "-- name: CountRetrievable :one\nSELECT current_setting('app.tenant_id')"},
		{"SELECT set_config('app.tenant_id', $1, true)", "\nSELECT c.relname::text, c.relrowsecurity FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_policies p", "-- name: CreateQueryHistory :one\nINSERT 1"},
	} {
		tr.end(tr.start(context.Background(), sqls...))
	}
	var names []string
	for _, p := range tr.take() {
		names = append(names, p.Name)
	}
	want := []string{"BEGIN + tenant setting + ListTables", "HNSW retrieval pipeline (savepoint, settings, a search per ef_search, rollback)",
		"ListActiveCatalog + COMMIT", "ListTableColumns + CountRetrievable", "tenant setting + security receipt (policies of the tables read) + CreateQueryHistory"}
	if !slices.Equal(names, want) {
		t.Errorf("got %q, want %q", names, want)
	}
}

// Every generated training pair passes the validator against the demo
// tables (nlsql.Store.Add would refuse the batch otherwise), questions are
// distinct, and the kinds are split 85/7.5/7.5; the catalog questions are
// ones the offline generator answers from the demo tables alone.
func TestAskQuestions(t *testing.T) {
	policy := sqlguard.Policy{Schema: "t_x", Tables: map[string]bool{"customers": true, "orders": true},
		Columns: map[string]map[string]bool{
			"customers": {"id": true, "name": true, "country": true, "signed_up": true},
			"orders":    {"id": true, "customer_id": true, "amount": true, "ordered_at": true},
		}}
	kinds, seen := map[string]int{}, map[string]bool{}
	for _, it := range askTrainingItems(2000) {
		if kinds[it.Kind]++; it.Kind != nlsql.KindSQL {
			continue
		}
		if err := sqlguard.Check(it.Content, policy); err != nil || seen[it.Question] {
			t.Fatalf("%q (duplicate: %v): %v", it.Content, seen[it.Question], err)
		}
		seen[it.Question] = true
	}
	if kinds[nlsql.KindSQL] != 1700 || kinds[nlsql.KindDDL] != 150 || kinds[nlsql.KindDocumentation] != 150 {
		t.Fatalf("kinds %v", kinds)
	}
	for _, q := range askNovel {
		out, err := generate.NewOffline().Generate(context.Background(), generate.Input{Question: q, Tables: evalset.Tables(evalset.Schema{Tables: demo.Tables})})
		if err == nil {
			err = sqlguard.Check(out.SQL, policy)
		}
		if err != nil {
			t.Errorf("%q → %q: %v", q, out.SQL, err)
		}
	}
	qs := askQuestions([]nlsql.NewItem{{Kind: nlsql.KindSQL, Question: "How many orders?", Content: "SELECT 1"}}, 4)
	if len(qs) != 4 || qs[0] != "how many orders" || qs[1] != askNovel[0] {
		t.Fatalf("questions %+v", qs)
	}
}

// Every section renders from its template (a template error would show
// up in the body) with the figures it was given.
func TestSectionsRender(t *testing.T) {
	e := &Env{cfg: Config{WorkDir: "w"}, machine: machine{Cores: 2, pgPID: 1}}
	runs := func(v float64) []float64 { return []float64{v, v * 1.1, v * 0.9} }
	check := func(name string, s *Section, want ...string) {
		t.Helper()
		if strings.Contains(s.Body, "(template ") || len(s.Summary) == 0 {
			t.Fatalf("%s: %s", name, s.Body)
		}
		for _, w := range want {
			if !strings.Contains(s.Body, w) {
				t.Errorf("%s lacks %q:\n%s", name, w, s.Body)
			}
		}
	}
	us := collect(rlsQueries, func(rlsQuery) [][]float64 { return [][]float64{runs(100), runs(110), runs(115), runs(130)} })
	check("rls", rlsSection(RLSConfig{Tenants: 10, RowsPerTenant: 10}, "1 MB", 10, us), "**Scaled down**", "tenant layer",
		"The Go tenant layer: 1.13×, 1.13×, 1.13×.",
		"| lookup by id | 100 (90–110) | 110 (99–121) | 115 (104–127) | 130 (117–143) | 1.30 (1.30–1.30) |")

	hs := func(rps float64) []httpSample {
		return []httpSample{{load: loadResult{RPS: rps}, roundTrips: 1, serverCPU: 1e4 / rps}, {load: loadResult{RPS: rps}, roundTrips: 1, serverCPU: 1e4 / rps}}
	}
	res := [][][]httpSample{{hs(100), hs(50), hs(45), hs(48)}, {hs(100), hs(90), hs(90), hs(85)}}
	grown := [][][]httpSample{{hs(95), hs(45)}, {hs(100), hs(80)}}
	check("http", httpSection(e, HTTPConfig{Tenants: 10, Tables: 2}, res, grown, [][]int{{1, 2, 2, 2}, {3, 4, 4, 4}}), "### GET /v1/tables",
		"| GET /v1/tables | 100 → 95 | 50 → 45 | 0.90 (0.90–0.90) |", "| GET /v1/history?limit=50 | 100 → 100 | 90 → 80 | 0.89 (0.89–0.89) |", "**missed** by 1%", "| **JWT / API key** | 0.90 (0.90–0.90) |", "| **limits checked: dbchat / floor** | 0.48 (0.48–0.48) |",
		"| dbchat, API key | 50 (50–50) | 0.00 (0.00–0.00) | 0.00 (0.00–0.00) | 1.00 (1.00–1.00) | 200 (200–200) | 0 (0–0) | 0 (0–0) | 2 |",
		"the floor spends 100 µs per request in all three, dbchat 200 µs (server +100, PostgreSQL +0, load generator +0), which predicts 0.50× of the floor's throughput; measured 0.50×", "| **dbchat / floor** | 0.50 (0.50–0.50) |", "goal ≤ 0.03 (ratio drop)): met", "goal ≤ 0.03 (ratio drop)): **missed** by 67%")

	small := &importSize{rows: 10, copyS: runs(1), importS: runs(2), anonPeak: 10 << 20, proc: procMem{HWM: 50 << 20}, phases: map[string][]float64{phaseCopy: runs(5)}}
	large := &importSize{rows: 100, copyS: runs(1), importS: runs(2.5), anonPeak: 11 << 20, proc: procMem{HWM: 51 << 20}, phases: map[string][]float64{phaseCopy: runs(50)}}
	check("import", importSection([]*importSize{small, large}, exportRun{rows: 100, copyS: runs(1), exportS: runs(2)}), "same 100 rows, alternating: COPY TO 100 rows/s, export 50 rows/s, export / COPY TO 0.50 (0.50–0.50)", "anonymous memory grows 1.10×", "flat (1.10× for 10× the rows)",
		"| 100 | 100 (91–111) | 40 (36–44) | 0.40 (0.40–0.40) |", "| "+phaseCopy+" | 50 | 2 % |")

	seed := &askSeeded{counts: map[string]int{nlsql.KindSQL: 8}}
	samples := [][]askSample{{{total: 15, embed: 12, generate: 1, firstEvent: 2, turn: 6, alone: 5}}, {{total: 16, embed: 13, generate: 1, firstEvent: 3, turn: 7, alone: 5}}}
	scores := []evalset.Score{{Schema: "hr", Correct: 2, Wrong: 1, Outcomes: []evalset.Outcome{{Case: evalset.Case{Question: "x?"}, SQL: "SELECT 1", Verdict: evalset.Wrong}}}}
	check("ask", askSection(AskConfig{TrainingRows: 10}, seed, []string{"q"}, samples, [][]float64{{0.1}, {0.1}}, []phase{{"COMMIT", 0.1}}, 3, scores),
		"for scale", "Where the time goes", "| COMMIT | 1.00 | 0.100 |", "| **time outside the generator** (total − generate) | 14.50 (14.00–15.00) |",
		"first streamed event: p50 **2.50 (2.00–3.00) ms**, met", "**1.30 (1.20–1.40)×**, **missed** by 8%", "| hr | 1 | 2 | 0 | 1 |", "- hr, wrong: \"x?\" → `SELECT 1`")

	p99 := [][2][]float64{{runs(1), runs(2)}, {runs(1.5), runs(5)}}
	check("noisy", noisySection(NoisyConfig{Rows: 10}, time.Second, []attack{{name: "(a) x"}}, p99, []int{0, 3}, []map[int]int{{}, {-1: 2, 503: 1}}),
		"| (a) x | 1.50 (1.35–1.65) | 5.00 (4.50–5.50) | 1.50 (1.50–1.50) | 2.50 (2.50–2.50) | 3 | no answer × 2, 503 × 1 | **missed** by 25%")
	slices := []loadResult{{RPS: 10, P99us: 2000}, {RPS: 10, P99us: 2100, Errors: 1, FirstError: "status 503"}}
	check("soak", soakSection(time.Minute, HTTPConfig{}, loadResult{RPS: 20}, slices, []int64{50 << 20, 51 << 20}, soakState{100 << 20, 8, 5}, soakState{105 << 20, 9, 5}),
		"| 2 | 10 | 0.00 | 2.10 | 51.0 | 1 |", "p99, last vs first slice: 2.00 ms → 2.10 ms: met", "**missed**: 1 failed (first: status 503)", "**grew**")
	data := &vecData{rows: 30, tenants: []vecTenant{{rows: 10, sqlRows: []int{8}}, {rows: 10, sqlRows: []int{8}}, {rows: 10, sqlRows: []int{8}}},
		classes: []vecClass{{"huge", "", 0, 1}, {"large", "", 1, 2}, {"small", "", 2, 3}},
		queries: [][]vecQuery{{{}}, {{}}, {{}}}}
	quality := make([][]vecQuality, 3)
	p := make([][][]float64, 3)
	for ci := range quality {
		quality[ci] = []vecQuality{{}, {pairHit: 10, pairWant: 10, queries: 1, paths: map[string]int{"exact": 1}},
			{pairHit: 5, pairWant: 10, short: 1, queries: 1, paths: map[string]int{"hnsw": 1}}}
		p[ci] = [][]float64{runs(30), runs(30), runs(40)}
		for len(quality[ci]) < len(vecStrategies) {
			quality[ci] = append(quality[ci], vecQuality{pairHit: 10, pairWant: 10, queries: 1, paths: map[string]int{"hnsw, model index": 1}})
			p[ci] = append(p[ci], runs(12))
		}
	}
	check("vector", vectorSection(VectorConfig{Rows: 30, Tenants: 14, Models: 1, Topics: 4, Queries: 1}, data, quality, p, p, false),
		"| huge | HNSW on the global graph, no fallback (ForceHNSW, GlobalOnly) | 0.500 | NaN | 1 / 1 | 40.0 (36.0–44.0) |",
		"| huge | **Auto (shipped): model indexes** | 1.000 | NaN | 0 / 1 | 12.0 (10.8–13.2) |", "p95 ≤ 15 ms", "hits them alike")
	check("vector10k", vectorSection(VectorConfig{Rows: 30, Tenants: 14, Models: 1, Topics: 4, Queries: 1}, data, quality, p, p, true),
		"p95 ≤ 25 ms", "timed in a phase of its own")
}

// Part 3b times each strategy in a phase of its own, after an untimed pass,
// and takes recall from one pass of every strategy.
func TestTimePhased(t *testing.T) {
	data := &vecData{classes: []vecClass{{"huge", "", 0, 1}, {"small", "", 1, 2}}, queries: [][]vecQuery{{{}, {}}, {{}, {}}}}
	e := &Env{cfg: Config{Runs: 2, Stderr: io.Discard}}
	var order []int
	quality, p50, p95 := timePhased(e, rand.New(rand.NewPCG(1, 2)), data, func(s int, q vecQuery) vecResult {
		order = append(order, s)
		return vecResult{}
	})
	n := len(vecStrategies)
	perPass := 2 * 2 // classes × queries
	if len(order) != perPass*n+perPass*3*n {
		t.Fatalf("%d calls, want the quality pass and 3 passes per strategy", len(order))
	}
	for i, s := range order[perPass*n:] {
		if want := i / (perPass * 3); s != want {
			t.Fatalf("timed call %d ran strategy %d inside strategy %d's phase", i, s, want)
		}
	}
	for ci := range data.classes {
		if len(quality[ci]) != n || len(p50[ci][n-1]) != 2 || len(p95[ci][0]) != 2 {
			t.Fatalf("class %d: %d qualities, %d and %d runs", ci, len(quality[ci]), len(p50[ci][n-1]), len(p95[ci][0]))
		}
	}
}
