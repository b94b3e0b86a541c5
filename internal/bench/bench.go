// Package bench is dbchat's benchmark suite (`make bench`, cmd/dbchat-bench).
//
// These are benchmarks, not tests: nothing here fails on a number. Every
// figure is compared with a reference measured in the same run on the same
// machine (a floor without dbchat's machinery, exact search, or one bare
// query; docs/BENCHMARKS.md says which) and is the median of several runs
// with its spread. The suite prints the summary and writes
// docs/BENCHMARKS.md, one section per part (BENCH=name[,name] runs a
// subset, refreshing only their sections; BENCH_SCALE=full the issue's
// sizes): rls, http, vector, import, ask.
//
// The binary re-executes itself for the processes a part needs apart from
// the orchestrator: `dbchat-bench load` is the HTTP load generator and
// `dbchat-bench serve` the API server whose memory is measured.
package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is one benchmark invocation.
type Config struct {
	AdminURL string   // superuser URL of the cluster (TEST_DATABASE_URL)
	Parts    []string // part names, in the suite's order
	Scale    string   // "quick" or "full"
	Runs     int      // measured runs per figure (median and spread)
	Out      string   // report path; empty: stdout only
	WorkDir  string   // CSV files
	Keep     bool     // keep the benchmark databases
	Command  string   // reproduces this invocation (shown in the report)

	RLS    RLSConfig
	HTTP   HTTPConfig
	Vector VectorConfig
	Import ImportConfig
	Ask    AskConfig

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

// VectorConfig sizes part 3: training rows in all, tenants (one huge, ten
// large, the rest small), models per tenant, topic centres shared by all
// tenants, queries per tenant size class (the same in every run).
type VectorConfig struct{ Rows, Tenants, Models, Topics, Queries int }

// ImportConfig sizes part 4: the large import (ratio and memory); the small
// one, whose memory is compared with it, has a tenth of the rows.
type ImportConfig struct{ Rows int }

// AskConfig sizes part 5: training rows of the asking tenant, questions per run.
type AskConfig struct{ TrainingRows, Questions int }

// scales are the presets; environment variables override single knobs.
var scales = map[string]Config{
	"quick": {Runs: 7, RLS: RLSConfig{200, 1000, 1000}, HTTP: HTTPConfig{100, 1000, 10, 32, 3 * time.Second, time.Second},
		Vector: VectorConfig{40_000, 200, 3, 256, 40}, Import: ImportConfig{Rows: 200_000}, Ask: AskConfig{10_000, 40}},
	"full": {Runs: 5, RLS: RLSConfig{1000, 1000, 3000}, HTTP: HTTPConfig{1000, 1000, 10, 32, 10 * time.Second, 2 * time.Second},
		Vector: VectorConfig{200_000, 1000, 3, 256, 60}, Import: ImportConfig{Rows: 1_000_000}, Ask: AskConfig{10_000, 60}},
}

// knobs are the environment variables that tune a run, echoed in the
// reproduce command when set; the positive integers among them override
// the field they point at.
var knobs = []struct {
	name  string
	field func(*Config) *int
}{
	{"BENCH", nil}, {"BENCH_SCALE", nil}, {"BENCH_RUNS", func(c *Config) *int { return &c.Runs }},
	{"BENCH_RLS_TENANTS", func(c *Config) *int { return &c.RLS.Tenants }}, {"BENCH_RLS_ROWS", func(c *Config) *int { return &c.RLS.RowsPerTenant }},
	{"BENCH_HTTP_DURATION", nil}, {"BENCH_HTTP_CONCURRENCY", func(c *Config) *int { return &c.HTTP.Concurrency }},
	{"BENCH_VECTOR_ROWS", func(c *Config) *int { return &c.Vector.Rows }}, {"BENCH_VECTOR_TENANTS", func(c *Config) *int { return &c.Vector.Tenants }},
	{"BENCH_IMPORT_ROWS", func(c *Config) *int { return &c.Import.Rows }}, {"BENCH_ASK_ROWS", func(c *Config) *int { return &c.Ask.TrainingRows }},
}

// Main runs the dbchat-bench command and returns its exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "load":
			return loadMain(ctx, args[1:], stdout, stderr)
		case "serve":
			return serveMain(ctx, args[1:], stdout, stderr)
		}
	}
	cfg, err := ParseConfig(args, os.Getenv, stdout, stderr)
	code := 2 // a bad invocation; 1: a part did not run
	if err == nil {
		code, err = 1, Run(ctx, cfg)
	}
	if err == nil {
		return 0
	}
	if !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(stderr, "dbchat-bench: %v\n", err)
	}
	return code
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
	workDir := fs.String("workdir", ".dbchat/bench/work", "scratch directory: CSV files")
	keep := fs.Bool("keep", false, "keep the benchmark databases afterwards")
	runs := fs.Int("runs", 0, "measured runs per figure (env BENCH_RUNS; default 7 quick, 5 full)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *scale == "" {
		*scale = "quick"
	}
	cfg, ok := scales[*scale]
	if !ok {
		return Config{}, fmt.Errorf("BENCH_SCALE must be quick or full, not %q", *scale)
	}
	cfg.Scale = *scale
	cfg.AdminURL = getenv("TEST_DATABASE_URL")
	if cfg.AdminURL == "" {
		return Config{}, errors.New("TEST_DATABASE_URL is not set: run `make bench`, which starts a private cluster, or point it at a superuser URL of a throwaway cluster")
	}
	cfg.Out, cfg.WorkDir, cfg.Keep = *out, *workDir, *keep
	cfg.Stdout, cfg.Stderr = stdout, stderr
	// The flags override the environment; env is what this run was given.
	env := map[string]string{}
	for _, k := range knobs {
		env[k.name] = getenv(k.name)
	}
	env["BENCH"], env["BENCH_SCALE"] = *partsFlag, map[bool]string{false: *scale}[*scale == "quick"]
	if *runs > 0 {
		env["BENCH_RUNS"] = strconv.Itoa(*runs)
	}
	var err error
	if cfg.Parts, err = selectParts(*partsFlag); err != nil {
		return Config{}, err
	}
	var set []string
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
	if v := env["BENCH_HTTP_DURATION"]; err == nil && v != "" {
		cfg.HTTP.Duration, err = time.ParseDuration(v)
	}
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
	{name: "import", aliases: []string{"4", "copy"}, title: "4. Import vs COPY", run: runImport},
	{name: "ask", aliases: []string{"5"}, title: "5. Ask overhead", run: runAsk},
}

func partNames() []string {
	var names []string
	for _, p := range suite {
		names = append(names, p.name)
	}
	return names
}

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
	var sections []*Section
	var failed []string
	for _, p := range suite {
		if !slices.Contains(cfg.Parts, p.name) {
			continue
		}
		e.logf("== %s (load average %s)", p.title, loadAverage())
		t0 := time.Now()
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
		s.Part, s.Title = p.name, p.title
		s.Stamp = e.stamp(time.Since(t0))
		sections = append(sections, s)
		e.logf("%s done in %s", p.name, time.Since(t0).Round(time.Second))
	}
	printSummary(cfg.Stdout, sections)
	if cfg.Out != "" {
		if err := writeReport(cfg.Out, e.machine, cfg.Command, sections); err != nil {
			return err
		}
		fmt.Fprintf(cfg.Stdout, "\nwrote %s (%s in total)\n", cfg.Out, time.Since(start).Round(time.Second))
	}
	if len(failed) > 0 {
		return fmt.Errorf("some parts did not run: %s", strings.Join(failed, "; "))
	}
	return nil
}
