// Package bench is dbchat's benchmark suite (`make bench`, cmd/dbchat-bench).
//
// Benchmarks, not tests: nothing fails on a number. Each figure is compared
// with a reference measured in the same run on the same machine and is the
// median of several runs with its spread (docs/BENCHMARKS.md says which).
// The suite prints the summary and writes docs/BENCHMARKS.md, one section
// per part: rls, http, vector, vector10k, import, ask, noisy, soak,
// replica, catalog.
// BENCH=name[,name] runs some, refreshing only their sections;
// BENCH_SCALE=full the sizes; BENCH_SOAK=10m the soak's duration.
//
// Opt-in diagnostics, never in the report: BENCH_EXPLAIN=1 writes EXPLAIN
// (ANALYZE, BUFFERS) of the rls and http parts' measured queries to
// <workdir>/explain/<part>.txt.
// `dbchat-bench -cpuprofile FILE` writes a CPU profile of the benchmark
// process, which hosts the servers under test (go tool pprof FILE), and
// one of each server in a process of its own (FILE.serve-1, -2, …: parts
// 4, 6 and 7 run theirs so).
//
// The binary re-executes itself: `dbchat-bench load` is the HTTP load
// generator, `dbchat-bench serve` the API server in a process of its own.
package bench

import (
	"cmp"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// Config is one benchmark invocation.
type Config struct {
	AdminURL string   // superuser URL of the cluster (TEST_DATABASE_URL)
	Parts    []string // part names, in the suite's order
	Scale    string   // "quick" or "full"
	Runs     int      // measured runs per figure (median and spread)
	Out      string   // report path; empty: stdout only
	WorkDir  string   // CSV files, EXPLAIN output
	Explain  bool     // BENCH_EXPLAIN
	Keep     bool     // keep the benchmark databases
	Command  string   // reproduces this invocation (shown in the report)
	// CPUProfile, when set, is where a CPU profile of this process (the
	// servers under test and the floors) is written, and with .serve-N
	// appended each server process's: a diagnostic, never in the report.
	CPUProfile string

	RLS    RLSConfig
	HTTP   HTTPConfig
	Vector VectorConfig
	Import ImportConfig
	Ask    AskConfig
	Noisy  NoisyConfig
	Soak   time.Duration // part 7's duration (BENCH_SOAK), reported per soakSlice

	Catalog CatalogConfig // part 9's steps (tenants) and sizes

	Stdout, Stderr io.Writer
}

// RLSConfig sizes part 1: tenants × query_history rows each, queries per
// variant and run.
type RLSConfig struct{ Tenants, RowsPerTenant, Samples int }

// HTTPConfig sizes part 2: tenants sharing the tables (one is measured),
// query_history rows and catalog tables of each; the load per measured run.
type HTTPConfig struct {
	Tenants, RowsPerTenant, Tables, Concurrency int
	Duration, Warmup                            time.Duration
}

// VectorConfig sizes part 3: training rows, tenants (one huge, ten large, the
// rest small), models per tenant, shared topics, queries per size class.
type VectorConfig struct{ Rows, Tenants, Models, Topics, Queries int }

// ImportConfig sizes part 4: the large import (ratio and memory); the small
// one, whose memory is compared with it, has a tenth of the rows.
type ImportConfig struct{ Rows int }

// AskConfig sizes part 5: training rows of the asking tenant, questions per run.
type AskConfig struct{ TrainingRows, Questions int }

// NoisyConfig sizes part 6: rows of the noisy tenant's large table.
type NoisyConfig struct{ Rows int }

// scales are the presets; environment variables override single knobs.
var scales = map[string]Config{
	"quick": {Runs: 7, RLS: RLSConfig{200, 1000, 1000}, HTTP: HTTPConfig{100, 1000, 10, 32, 3 * time.Second, time.Second},
		Vector: VectorConfig{40_000, 200, 3, 256, 40}, Import: ImportConfig{Rows: 200_000}, Ask: AskConfig{10_000, 40},
		Noisy: NoisyConfig{1_000_000}, Soak: 2 * time.Minute, Catalog: CatalogConfig{[]int{100, 300, 500}, 5, 200, 20, 2, time.Minute}},
	"full": {Runs: 5, RLS: RLSConfig{1000, 1000, 3000}, HTTP: HTTPConfig{1000, 1000, 10, 32, 10 * time.Second, 2 * time.Second},
		Vector: VectorConfig{200_000, 1000, 3, 256, 60}, Import: ImportConfig{Rows: 1_000_000}, Ask: AskConfig{10_000, 60},
		Noisy: NoisyConfig{10_000_000}, Soak: 10 * time.Minute, Catalog: CatalogConfig{[]int{1000, 5000, 10000}, 5, 300, 20, 2, 10 * time.Minute}},
}

// knobs are the environment variables that tune a run, echoed in the report
// when set; a positive integer overrides the field it points at.
var knobs = []struct {
	name  string
	field func(*Config) *int
}{
	{"BENCH", nil}, {"BENCH_SCALE", nil}, {"BENCH_RUNS", func(c *Config) *int { return &c.Runs }},
	{"BENCH_RLS_TENANTS", func(c *Config) *int { return &c.RLS.Tenants }}, {"BENCH_RLS_ROWS", func(c *Config) *int { return &c.RLS.RowsPerTenant }},
	{"BENCH_HTTP_DURATION", nil}, {"BENCH_HTTP_CONCURRENCY", func(c *Config) *int { return &c.HTTP.Concurrency }},
	{"BENCH_VECTOR_ROWS", func(c *Config) *int { return &c.Vector.Rows }}, {"BENCH_VECTOR_TENANTS", func(c *Config) *int { return &c.Vector.Tenants }},
	{"BENCH_IMPORT_ROWS", func(c *Config) *int { return &c.Import.Rows }}, {"BENCH_ASK_ROWS", func(c *Config) *int { return &c.Ask.TrainingRows }},
	{"BENCH_SOAK", nil}, {"BENCH_EXPLAIN", nil},
	// Read by the Makefile (the cluster's shared_buffers), echoed so that
	// the command in a section reproduces its run.
	{"BENCH_SHARED_BUFFERS", nil},
}

// Main runs the dbchat-bench command and returns its exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if sub := map[string]func(context.Context, []string, io.Writer, io.Writer) int{"load": loadMain, "serve": serveMain}[append(args, "")[0]]; sub != nil {
		return sub(ctx, args[1:], stdout, stderr)
	}
	cfg, err := ParseConfig(args, os.Getenv, stdout, stderr)
	code := 2 // a bad invocation; 1: a part did not run
	if err == nil {
		code, err = 1, profiled(cfg.CPUProfile, func() error { return Run(ctx, cfg) })
	}
	if err == nil {
		return 0
	}
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "dbchat-bench: %v\n", err)
	}
	return code
}

// profiled runs f with the CPU profiler writing to path, if path is set.
func profiled(path string, f func() error) error {
	if path == "" {
		return f()
	}
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.StartCPUProfile(out); err != nil {
		out.Close()
		return err
	}
	err = f()
	pprof.StopCPUProfile()
	return errors.Join(err, out.Close())
}

// ParseConfig reads flags, falling back on the BENCH_* environment.
func ParseConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("dbchat-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: dbchat-bench [flags]   (TEST_DATABASE_URL: superuser URL of a throwaway cluster; "+
			"BENCH_* knobs: see internal/bench)\n\nparts: %s\n\nflags:\n", strings.Join(partNames(), ", "))
		fs.PrintDefaults()
	}
	partsFlag := fs.String("parts", getenv("BENCH"), "comma-separated parts to run (default all; env BENCH)")
	scale := fs.String("scale", getenv("BENCH_SCALE"), "quick (default, a few minutes) or full (the issue's sizes; env BENCH_SCALE)")
	out := fs.String("out", "docs/BENCHMARKS.md", "report to write (sections of parts not run are kept); empty: none")
	workDir := fs.String("workdir", ".dbchat/bench/work", "scratch directory: CSV files, EXPLAIN output")
	keep := fs.Bool("keep", false, "keep the benchmark databases afterwards")
	runs := fs.Int("runs", 0, "measured runs per figure (env BENCH_RUNS; default 7 quick, 5 full)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the servers and floors it hosts) to this file")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	*scale = cmp.Or(*scale, "quick")
	cfg, ok := scales[*scale]
	if !ok {
		return Config{}, fmt.Errorf("BENCH_SCALE must be quick or full, not %q", *scale)
	}
	cfg.Scale, cfg.AdminURL = *scale, getenv("TEST_DATABASE_URL")
	if cfg.AdminURL == "" {
		return Config{}, errors.New("TEST_DATABASE_URL is not set: run `make bench`, which starts a private cluster, or point it at a superuser URL of a throwaway cluster")
	}
	cfg.Out, cfg.WorkDir, cfg.Keep, cfg.Stdout, cfg.Stderr = *out, *workDir, *keep, stdout, stderr
	cfg.CPUProfile = *cpuProfile
	// The flags override the environment; env is what this run was given.
	env := map[string]string{}
	for _, k := range knobs {
		env[k.name] = getenv(k.name)
	}
	env["BENCH"], env["BENCH_SCALE"] = *partsFlag, map[bool]string{false: *scale}[*scale == "quick"]
	if *runs > 0 {
		env["BENCH_RUNS"] = strconv.Itoa(*runs)
	}
	var set []string
	var err error
	cfg.Parts, err = selectParts(*partsFlag)
	for _, k := range knobs {
		if v := env[k.name]; v != "" {
			set = append(set, k.name+"="+v)
			if k.field != nil && err == nil {
				if *k.field(&cfg), err = strconv.Atoi(v); err == nil && *k.field(&cfg) <= 0 {
					err = fmt.Errorf("%s must be positive", k.name)
				}
			}
		}
	}
	for k, d := range map[string]*time.Duration{"BENCH_HTTP_DURATION": &cfg.HTTP.Duration, "BENCH_SOAK": &cfg.Soak} {
		if v := env[k]; err == nil && v != "" {
			*d, err = time.ParseDuration(v)
		}
	}
	cfg.Explain = env["BENCH_EXPLAIN"] != "" && env["BENCH_EXPLAIN"] != "0"
	if err != nil {
		return Config{}, err
	}
	if slices.Contains(cfg.Parts, "vector") && (cfg.Vector.Tenants < 12 || cfg.Vector.Rows < 10*cfg.Vector.Tenants) {
		return Config{}, errors.New("BENCH_VECTOR_TENANTS must be at least 12 (one huge, ten large, small ones), BENCH_VECTOR_ROWS at least 10 per tenant")
	}
	if cfg.Runs < 5 {
		fmt.Fprintf(stderr, "dbchat-bench: note: %d runs per figure; the report's rules ask for at least 5\n", cfg.Runs)
	}
	cfg.Command = strings.TrimSpace(strings.Join(set, " ") + " make bench")
	return cfg, nil
}

// part is one section of the report.
type part struct {
	name    string
	aliases []string
	title   string
	run     func(ctx context.Context, e *Env) (*Section, error)
}

var suite = []part{
	{name: "rls", aliases: []string{"1", "policy"}, title: "1. RLS policy cost", run: runRLS},
	{name: "http", aliases: []string{"2", "request", "api"}, title: "2. Request path vs the floor", run: runHTTP},
	{name: "vector", aliases: []string{"3", "retrieval"}, title: "3. Vector retrieval at scale", run: runVector},
	{name: "vector10k", aliases: []string{"3b"}, title: "3b. Vector retrieval at 10,000 tenants", run: runVectorWide},
	{name: "import", aliases: []string{"4", "copy"}, title: "4. Import vs COPY", run: runImport},
	{name: "ask", aliases: []string{"5"}, title: "5. Ask overhead", run: runAsk},
	{name: "noisy", aliases: []string{"6", "neighbours"}, title: "6. Quiet tenant under noisy neighbours", run: runNoisy},
	{name: "soak", aliases: []string{"7"}, title: "7. Soak at 80% of the maximum throughput", run: runSoak},
	{name: "replica", aliases: []string{"8", "standby"}, title: "8. SQL sandbox on a hot standby", run: runReplica},
	{name: "catalog", aliases: []string{"9", "tables"}, title: "9. Data tables at scale", run: runCatalog},
}

func partNames() []string { return collect(suite, func(p part) string { return p.name }) }

func selectParts(spec string) ([]string, error) {
	if spec = strings.TrimSpace(spec); spec == "" || spec == "all" {
		return partNames(), nil
	}
	want := map[string]bool{}
	for _, s := range strings.Split(spec, ",") {
		s = strings.ToLower(strings.TrimSpace(s))
		i := slices.IndexFunc(suite, func(p part) bool { return s == p.name || slices.Contains(p.aliases, s) })
		if i < 0 {
			return nil, fmt.Errorf("unknown part %q in BENCH (parts: %s)", s, strings.Join(partNames(), ", "))
		}
		want[suite[i].name] = true
	}
	return slices.DeleteFunc(partNames(), func(n string) bool { return !want[n] }), nil
}

// Run runs the selected parts, prints the summary and writes the report. A
// part that fails to run is reported as such; the others still run.
func Run(ctx context.Context, cfg Config) error {
	e, err := &Env{cfg: cfg}, os.MkdirAll(cfg.WorkDir, 0o755)
	if err == nil {
		e.exe, err = os.Executable()
	}
	if err == nil {
		e.machine, err = probeMachine(ctx, cfg.AdminURL)
	}
	if err != nil {
		return fmt.Errorf("set up (TEST_DATABASE_URL reachable?): %w", err)
	}
	defer e.close()
	start := time.Now()
	e.logf("machine: %s", e.machine.oneLine())
	e.logf("scale %s, %d runs per figure; parts: %s", cfg.Scale, cfg.Runs, strings.Join(cfg.Parts, ", "))
	var sections, failed = []*Section{}, []string{}
	for _, p := range suite {
		if !slices.Contains(cfg.Parts, p.name) {
			continue
		}
		e.logf("== %s (load average %s)", p.title, loadAverage())
		t0 := time.Now()
		_ = os.Remove(filepath.Join(cfg.WorkDir, "explain", p.name+".txt"))
		s, err := e.runPart(ctx, p)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", p.name, ctx.Err())
			}
			e.logf("%s failed: %v", p.name, err)
			failed = append(failed, fmt.Sprintf("%s: %v", p.name, err))
			s = &Section{Summary: []Row{{Measure: "—", Verdict: "did not run: " + err.Error()}},
				Body: "The benchmark did not complete: `" + strings.ReplaceAll(err.Error(), "`", "'") + "`.\n"}
		}
		s.Part, s.Title, s.Stamp = p.name, p.title, e.stamp(time.Since(t0))
		sections = append(sections, s)
		e.logf("%s done in %s", p.name, time.Since(t0).Round(time.Second))
		// The report is written after every part, so a long run cut short
		// keeps the parts it finished.
		if cfg.Out != "" {
			if err := writeReport(cfg.Out, e.machine, cfg.Command, sections); err != nil {
				return err
			}
		}
	}
	printSummary(cfg.Stdout, sections)
	if cfg.Out != "" {
		fmt.Fprintf(cfg.Stdout, "\nwrote %s (%s in total)\n", cfg.Out, time.Since(start).Round(time.Second))
	}
	if len(failed) > 0 {
		return fmt.Errorf("some parts did not run: %s", strings.Join(failed, "; "))
	}
	return nil
}

// Section is one part's contribution to the report: Part is its suite name,
// Stamp when, with what command and on what machine, Body markdown.
type Section struct {
	Part, Title, Stamp, Body string
	Summary                  []Row // lines of the summary table
}

// Row is one line of the summary table.
type Row struct {
	Measure string `json:"measure"`
	Floor   string `json:"floor"`
	Dbchat  string `json:"dbchat"`
	Ratio   string `json:"ratio"`
	Goal    string `json:"goal"`
	Verdict string `json:"verdict"`
}

// summaryRows are the summary table's lines: the part's title on its first.
func summaryRows(title string, rows []Row) [][]string {
	var out [][]string
	for i, r := range rows {
		out = append(out, []string{map[bool]string{true: title}[i == 0], r.Measure, r.Floor, r.Dbchat, r.Ratio, r.Goal, r.Verdict})
	}
	return out
}

var summaryHeader = []string{"Part", "Measure", "Floor or reference", "dbchat", "Ratio to it: median (min–max)", "Goal", "Verdict"}

// printSummary writes the summary table of this run to w.
func printSummary(w io.Writer, sections []*Section) {
	var rows [][]string
	for _, s := range sections {
		rows = append(rows, summaryRows(s.Title, s.Summary)...)
	}
	fmt.Fprint(w, "\n"+strings.ReplaceAll(mdTable(summaryHeader, rows), "**", ""))
}

// stored is a section as found in an existing report.
type stored struct {
	text string
	rows []Row
}

// writeReport writes the report at path, keeping the sections of parts that
// did not run now from the existing file.
func writeReport(path string, m machine, command string, sections []*Section) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	kept := parseSections(string(old))
	for _, s := range sections {
		kept[s.Part] = stored{text: renderSection(s), rows: s.Summary}
	}
	for _, p := range suite {
		if _, ok := kept[p.name]; !ok {
			rows := []Row{{Measure: "—", Verdict: "not run yet (`make bench BENCH=" + p.name + "`)"}}
			kept[p.name] = stored{rows: rows, text: renderSection(&Section{Part: p.name, Title: p.title, Summary: rows,
				Body: "Not run yet: `make bench BENCH=" + p.name + "`.\n"})}
		}
	}
	rows, text := [][]string{}, ""
	for _, p := range suite {
		rows, text = append(rows, summaryRows(p.title, kept[p.name].rows)...), text+"\n"+kept[p.name].text
	}
	text = render("header", nil) + "\n## Summary\n\n" + mdTable(summaryHeader, rows) + "\n" + render("machine", m) +
		fmt.Sprintf("- Last command: `%s`; commit %s\n", command, m.Commit) + text + afterSections(string(old))
	return errors.Join(os.MkdirAll(filepath.Dir(path), 0o755), os.WriteFile(path, []byte(text), 0o644))
}

//go:embed templates/*.tmpl
var templateFS embed.FS
var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"table":     func(header string, rows [][]string) string { return mdTable(strings.Split(header, " | "), rows) },
	"thousands": thousands, "ms": func(d time.Duration) time.Duration { return d.Round(time.Millisecond) },
	"s": func(d time.Duration) time.Duration { return d.Round(time.Second) },
}).ParseFS(templateFS, "templates/*.tmpl"))

// dataLines are the lines of an embedded template, split at tabs.
func dataLines(name string) [][]string {
	return collect(strings.Split(strings.TrimSpace(render(name, nil)), "\n"), func(l string) []string { return strings.Split(l, "\t") })
}

// render executes one of the embedded templates.
func render(name string, data any) string {
	var b strings.Builder
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		return fmt.Sprintf("(template %s: %v)\n", name, err)
	}
	return b.String()
}

func renderSection(s *Section) string {
	stamp := map[bool]string{true: "_" + s.Stamp + "_\n\n"}[s.Stamp != ""]
	rows, _ := json.Marshal(s.Summary) // escapes < and >, so no "-->" inside
	return fmt.Sprintf("<!-- bench:begin %s -->\n## %s\n\n%s%s\n<!-- bench:summary %s -->\n<!-- bench:end %[1]s -->\n",
		s.Part, s.Title, stamp, strings.TrimRight(s.Body, "\n"), rows)
}

// sectionRE matches a section of an existing report: its part and, in
// the summary mark, its summary rows as JSON.
var sectionRE = regexp.MustCompile(`(?s)<!-- bench:begin (\w+) -->.*?<!-- bench:summary (.*?) -->\n<!-- bench:end \w+ -->\n`)

// parseSections finds the sections of an existing report.
// afterSections is what follows the last part's section (what other
// tools write, such as `make lighthouse`'s block), kept as it is.
func afterSections(text string) string {
	i := strings.LastIndex(text, "<!-- bench:end ")
	j := strings.Index(text[max(i, 0):], "-->")
	if i < 0 || j < 0 {
		return ""
	}
	return text[i+j+len("-->"):]
}

func parseSections(text string) map[string]stored {
	out := map[string]stored{}
	for _, m := range sectionRE.FindAllStringSubmatch(text, -1) {
		st := stored{text: m[0]}
		_ = json.Unmarshal([]byte(m[2]), &st.rows)
		out[m[1]] = st
	}
	return out
}

// mdTable renders a markdown table, the one renderer of every table.
func mdTable(header []string, rows [][]string) string {
	line := func(cells []string) string {
		out := make([]string, len(header))
		for i := range min(len(out), len(cells)) {
			out[i] = strings.NewReplacer("|", `\|`, "\n", " ").Replace(cells[i])
		}
		return "| " + strings.Join(out, " | ") + " |\n"
	}
	table := line(header) + "|" + strings.Repeat("---|", len(header)) + "\n"
	for _, r := range rows {
		table += line(r)
	}
	return table
}

// dist summarises repeated measurements: the median and the full spread.
type dist struct {
	Med, Min, Max float64
	N             int
}

func newDist(xs []float64) dist {
	if len(xs) == 0 {
		return dist{Med: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	s := slices.Sorted(slices.Values(xs))
	return dist{Med: quantile(s, 0.5), Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// quantile of sorted xs, linearly interpolated.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	pos := q * float64(len(sorted)-1)
	lo, hi := int(pos), min(int(pos)+1, len(sorted)-1)
	return sorted[lo] + (sorted[hi]-sorted[lo])*(pos-float64(lo))
}

// pq is the q-quantile of unsorted xs.
func pq(xs []float64, q float64) float64 { return quantile(slices.Sorted(slices.Values(xs)), q) }

// f renders the median with the spread: "12.3 (11.9–13.0)".
func (d dist) f(format string) string {
	if d.N <= 1 {
		return d.m(format)
	}
	return fmt.Sprintf(format+" ("+format+"–"+format+")", d.Med, d.Min, d.Max)
}

// m renders the median alone.
func (d dist) m(format string) string {
	if d.N == 0 {
		return "n/a"
	}
	return fmt.Sprintf(format, d.Med)
}

// ratios divides a by b pairwise (the same run's measurements).
func ratios(a, b []float64) []float64 {
	r := make([]float64, min(len(a), len(b)))
	for i := range r {
		r[i] = a[i] / b[i]
	}
	return r
}

// collect maps xs.
func collect[T, U any](xs []T, f func(T) U) []U {
	out := make([]U, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// goal is a bound on a ratio (or, with a unit, on a value).
type goal struct {
	bound  float64
	atMost bool   // r ≤ bound is met; otherwise r ≥ bound
	unit   string // "" for a ratio
}

func (g goal) String() string {
	return fmt.Sprintf("%s %.2f%s", map[bool]string{true: "≤", false: "≥"}[g.atMost], g.bound, cmp.Or(g.unit, "×"))
}

// verdict judges the median ratio and says by how much a miss misses.
func (g goal) verdict(r float64) string {
	off, met := math.Abs(r-g.bound)/g.bound*100, g.atMost == (r <= g.bound) || r == g.bound
	switch {
	case math.IsNaN(r):
		return "not measured"
	case met && g.atMost:
		return fmt.Sprintf("met (%.0f%% headroom)", off)
	case met:
		return fmt.Sprintf("met (%.0f%% above)", off)
	}
	return fmt.Sprintf("**missed** by %.0f%% (%.2f%s vs %s)", off, r, cmp.Or(g.unit, "×"), g)
}

// Units.
func mib(b int64) float64            { return float64(b) / (1 << 20) }
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// thousands formats n with thousands separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// pass times call(item, variant) for every item and variant: items in a
// random order, each one's variants back to back in a random order (other
// work on the machine hits all alike); it returns ms[variant] over the items.
func pass(rng *rand.Rand, items, variants int, call func(item, variant int)) [][]float64 {
	ms := make([][]float64, variants)
	for _, i := range rng.Perm(items) {
		for _, v := range rng.Perm(variants) {
			start := time.Now()
			call(i, v)
			ms[v] = append(ms[v], millis(time.Since(start)))
		}
	}
	return ms
}
