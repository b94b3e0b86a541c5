// Package bench is dbchat's benchmark suite (`make bench`, cmd/dbchat-bench).
//
// These are benchmarks, not tests: nothing here fails on a number. Every
// figure is compared with a reference measured in the same run on the same
// machine: a floor (the same work without dbchat's machinery: no RLS, no
// auth, bare net/http, plain COPY) for parts 1, 2 and 4, exact search (the
// ground truth, not a floor) for part 3, one bare query (for scale; the goal
// is absolute) for part 5. Each is the median of several runs with its
// spread. The suite prints a table and writes docs/BENCHMARKS.md,
// one section per part, with the machine and the command that reproduces it.
//
// Parts (BENCH=name[,name] runs a subset; BENCH_SCALE=full the sizes):
//
//	rls     1. RLS policy cost: the tenant policy vs an explicit WHERE tenant_id
//	http    2. request path vs the floor: GET /v1/tables and /v1/history
//	vector  3. vector retrieval at scale: recall@10 and latency per tenant size class
//	import  4. CSV import vs COPY, and the server's peak RSS
//	ask     5. /v1/ask overhead: the pipeline's time outside the generator
//
// The binary re-executes itself for the processes a part needs apart from the
// orchestrator: `dbchat-bench load` is the HTTP load generator and
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
	WorkDir  string   // CSV files, profiles
	Keep     bool     // keep the benchmark databases

	RLS    RLSConfig
	HTTP   HTTPConfig
	Vector VectorConfig
	Import ImportConfig
	Ask    AskConfig

	// Command reproduces this invocation (shown in the report).
	Command string

	Stdout, Stderr io.Writer
}

// RLSConfig sizes part 1.
type RLSConfig struct {
	Tenants       int // tenants with history
	RowsPerTenant int // query_history rows per tenant
	Samples       int // queries per variant and run
}

// HTTPConfig sizes part 2.
type HTTPConfig struct {
	Tenants       int // tenants sharing the tables (one is measured)
	RowsPerTenant int // query_history rows per tenant
	Tables        int // catalog tables of each tenant
	Concurrency   int
	Duration      time.Duration // per measured run
	Warmup        time.Duration
}

// VectorConfig sizes part 3.
type VectorConfig struct {
	Rows    int // training rows in all (every tenant, model and kind)
	Tenants int // one huge (25 %), ten large (2 % each), the rest small
	Models  int // models per tenant
	Topics  int // topic centres shared by all tenants
	Queries int // queries per tenant size class (the same in every run)
}

// AskConfig sizes part 5.
type AskConfig struct {
	TrainingRows int // training rows of the asking tenant
	Questions    int // questions per run
}

// ImportConfig sizes part 4.
type ImportConfig struct {
	Rows      int // the large import (ratio and memory)
	SmallRows int // the small import (memory is compared with it)
}

// scales are the presets; environment variables override single knobs.
var scales = map[string]Config{
	"quick": {
		Runs:   7,
		RLS:    RLSConfig{Tenants: 200, RowsPerTenant: 1000, Samples: 1000},
		HTTP:   HTTPConfig{Tenants: 100, RowsPerTenant: 1000, Tables: 10, Concurrency: 32, Duration: 3 * time.Second, Warmup: time.Second},
		Vector: VectorConfig{Rows: 40_000, Tenants: 200, Models: 3, Topics: 256, Queries: 40},
		Import: ImportConfig{Rows: 200_000, SmallRows: 20_000},
		Ask:    AskConfig{TrainingRows: 10_000, Questions: 40},
	},
	"full": {
		Runs:   5,
		RLS:    RLSConfig{Tenants: 1000, RowsPerTenant: 1000, Samples: 3000},
		HTTP:   HTTPConfig{Tenants: 1000, RowsPerTenant: 1000, Tables: 10, Concurrency: 32, Duration: 10 * time.Second, Warmup: 2 * time.Second},
		Vector: VectorConfig{Rows: 200_000, Tenants: 1000, Models: 3, Topics: 256, Queries: 60},
		Import: ImportConfig{Rows: 1_000_000, SmallRows: 100_000},
		Ask:    AskConfig{TrainingRows: 10_000, Questions: 60},
	},
}

// knobs are the environment variables that tune a run; they are echoed in
// the reproduce command when set.
var knobs = []string{"BENCH", "BENCH_SCALE", "BENCH_RUNS", "BENCH_RLS_TENANTS", "BENCH_RLS_ROWS",
	"BENCH_HTTP_DURATION", "BENCH_HTTP_CONCURRENCY", "BENCH_VECTOR_ROWS", "BENCH_VECTOR_TENANTS", "BENCH_IMPORT_ROWS",
	"BENCH_ASK_ROWS"}

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
	if errors.Is(err, flag.ErrHelp) {
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "dbchat-bench: %v\n", err)
		return 2
	}
	if err := Run(ctx, cfg); err != nil {
		fmt.Fprintf(stderr, "dbchat-bench: %v\n", err)
		return 1
	}
	return 0
}

// ParseConfig reads flags, falling back on the BENCH_* environment.
func ParseConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) (Config, error) {
	fs := flag.NewFlagSet("dbchat-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: dbchat-bench [flags]   (TEST_DATABASE_URL: superuser URL of a throwaway cluster)\n\n"+
			"parts: %s\nenvironment: %s\n\nflags:\n", strings.Join(partNames(), ", "), strings.Join(knobs, ", "))
		fs.PrintDefaults()
	}
	partsFlag := fs.String("parts", getenv("BENCH"), "comma-separated parts to run (default all; env BENCH)")
	scale := fs.String("scale", getenv("BENCH_SCALE"), "quick (default, a few minutes) or full (the issue's sizes; env BENCH_SCALE)")
	out := fs.String("out", "docs/BENCHMARKS.md", "report to write (sections of parts not run are kept); empty: none")
	workDir := fs.String("workdir", ".dbchat/bench/work", "scratch directory: CSV files and CPU profiles")
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
	var err error
	if cfg.Parts, err = selectParts(*partsFlag); err != nil {
		return Config{}, err
	}
	setInt := func(dst *int, name string) {
		if err != nil || getenv(name) == "" {
			return
		}
		var n int
		if n, err = strconv.Atoi(getenv(name)); err == nil && n <= 0 {
			err = fmt.Errorf("%s must be positive", name)
		}
		*dst = n
	}
	setInt(&cfg.Runs, "BENCH_RUNS")
	setInt(&cfg.RLS.Tenants, "BENCH_RLS_TENANTS")
	setInt(&cfg.RLS.RowsPerTenant, "BENCH_RLS_ROWS")
	setInt(&cfg.HTTP.Concurrency, "BENCH_HTTP_CONCURRENCY")
	setInt(&cfg.Vector.Rows, "BENCH_VECTOR_ROWS")
	setInt(&cfg.Vector.Tenants, "BENCH_VECTOR_TENANTS")
	setInt(&cfg.Import.Rows, "BENCH_IMPORT_ROWS")
	setInt(&cfg.Ask.TrainingRows, "BENCH_ASK_ROWS")
	if v := getenv("BENCH_HTTP_DURATION"); err == nil && v != "" {
		cfg.HTTP.Duration, err = time.ParseDuration(v)
	}
	if err != nil {
		return Config{}, err
	}
	if *runs > 0 {
		cfg.Runs = *runs
	}
	if slices.Contains(cfg.Parts, "vector") && cfg.Vector.Tenants < 12 {
		return Config{}, errors.New("BENCH_VECTOR_TENANTS must be at least 12 (one huge, ten large, small ones)")
	}
	if slices.Contains(cfg.Parts, "vector") && cfg.Vector.Rows < 10*cfg.Vector.Tenants {
		return Config{}, errors.New("BENCH_VECTOR_ROWS must be at least 10 per tenant")
	}
	if cfg.Runs < 5 {
		fmt.Fprintf(stderr, "dbchat-bench: note: %d runs per figure; the report's rules ask for at least 5\n", cfg.Runs)
	}
	cfg.Import.SmallRows = max(1, cfg.Import.Rows/10)
	cfg.Command = reproduce(getenv, *partsFlag, *scale, *runs)
	return cfg, nil
}

// reproduce spells the make command for this configuration.
func reproduce(getenv func(string) string, parts, scale string, runs int) string {
	set := map[string]string{"BENCH": parts, "BENCH_SCALE": scale, "BENCH_RUNS": getenv("BENCH_RUNS")}
	if scale == "quick" {
		set["BENCH_SCALE"] = ""
	}
	if runs > 0 {
		set["BENCH_RUNS"] = strconv.Itoa(runs)
	}
	var env []string
	for _, k := range knobs {
		v, ok := set[k]
		if !ok {
			v = getenv(k)
		}
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	return strings.TrimSpace(strings.Join(env, " ") + " make bench")
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
	e, err := newEnv(ctx, cfg)
	if err != nil {
		return err
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
		s, err := p.run(ctx, e)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", p.name, ctx.Err())
			}
			e.logf("%s failed: %v", p.name, err)
			failed = append(failed, fmt.Sprintf("%s: %v", p.name, err))
			s = failedSection(err)
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
