package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/pguuid"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Env is what a part needs: the configuration, the machine, and helpers to
// create benchmark databases and pools.
type Env struct {
	cfg     Config
	machine machine
	exe     string // this binary, re-executed for the load generator and the server
	dbs     []string
	closers []func() // of the running part
	servers int      // server processes started (numbers their CPU profiles)
}

// close drops the benchmark databases unless asked to keep them.
func (e *Env) close() {
	for _, name := range map[bool][]string{false: e.dbs}[e.cfg.Keep] {
		e.dropDatabase(name)
	}
}

func (e *Env) logf(format string, args ...any) {
	fmt.Fprintf(e.cfg.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// stamp is the line under each section heading: when, how, on what.
func (e *Env) stamp(took time.Duration) string {
	return fmt.Sprintf("Measured %s with `%s` (scale %s, %d runs per figure, part took %s) on %s; load average %s at the end; commit %s.",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), e.cfg.Command, e.cfg.Scale, e.cfg.Runs,
		took.Round(time.Second), e.machine.oneLine(), loadAverage(), e.machine.Commit)
}

// loadAverage is the 1, 5 and 15 minute load average: a machine busy with
// other work shows up as spread.
func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// benchDB is a freshly migrated database for one part.
type benchDB struct {
	admin    *pgx.Conn
	AdminURL string // superuser
	AppURL   string // dbchat_app: the server's runtime role, subject to RLS
	QueryURL string // dbchat_query: the SQL sandbox's role
}

// open (re)creates dbchat_bench_<suffix>, migrated as by `dbchat migrate`,
// and connects to it as the superuser; both go when the run ends.
func (e *Env) open(ctx context.Context, suffix string) *benchDB {
	name := "dbchat_bench_" + suffix
	e.dropDatabase(name)
	// internal/dbtest's role passwords: tests and benchmarks share a cluster
	// without resetting each other's (cluster-wide) roles.
	sum := sha256.Sum256([]byte("dbchat-test-app:" + e.cfg.AdminURL))
	pw := hex.EncodeToString(sum[:16])
	d := &benchDB{AdminURL: withDatabase(e.cfg.AdminURL, name, "", ""), AppURL: withDatabase(e.cfg.AdminURL, name, migrate.AppRole, pw),
		QueryURL: withDatabase(e.cfg.AdminURL, name, migrate.QueryRole, pw)}
	must(migrate.Run(ctx, migrate.Options{AdminURL: d.AdminURL, Passwords: map[string]string{migrate.AppRole: pw, migrate.QueryRole: pw}}))
	e.dbs = append(e.dbs, name)
	// The superuser's sessions find the vector type and operators where the
	// platform roles do (migrate keeps the extension out of public).
	must(e.exec(ctx, "ALTER ROLE CURRENT_USER IN DATABASE "+pgx.Identifier{name}.Sanitize()+
		" SET search_path = \"$user\", public, "+migrate.ExtensionSchema))
	d.admin = must1(pgx.Connect(ctx, d.AdminURL))
	e.atEnd(func() { d.admin.Close(context.Background()) })
	return d
}

// must aborts the running part on an error: Env.runPart recovers it, and
// the report says the part did not run.
func must(err error) {
	if err != nil {
		panic(partError{err})
	}
}

func must1[T any](v T, err error) T { must(err); return v }

// mustf aborts the running part unless ok, with the formatted error.
func mustf(ok bool, format string, args ...any) {
	if !ok {
		must(fmt.Errorf(format, args...))
	}
}

type partError struct{ error }

// runPart runs one part, closing what it opened with e.pool afterwards.
func (e *Env) runPart(ctx context.Context, p part) (s *Section, err error) {
	defer func() {
		for _, c := range slices.Backward(e.closers) {
			c()
		}
		e.closers = nil
		if r := recover(); r != nil {
			pe, ok := r.(partError)
			if !ok {
				panic(r)
			}
			err = pe.error
		}
	}()
	return p.run(ctx, e)
}

func (e *Env) dropDatabase(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = e.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
}

// exec runs one statement as the superuser in the maintenance database.
func (e *Env) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, withDatabase(e.cfg.AdminURL, "postgres", "", ""))
	if err == nil {
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, sql)
	}
	return err
}

// withDatabase returns connURL with its database (and, if user is set, its
// credentials) replaced.
func withDatabase(connURL, dbName, user, password string) string {
	u := must1(url.Parse(connURL))
	u.Path = "/" + dbName
	if user != "" {
		u.User = url.UserPassword(user, password)
	}
	return u.String()
}

// countingConn counts writes to PostgreSQL: pgx flushes what it queued (a
// whole pipeline) in one Write, so writes are round trips.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) { c.writes.Add(1); return c.Conn.Write(b) }

// pool opens a pool on connURL for the running part (maxConns 0: pgxpool's
// default), counting round trips into writes if not nil, traced if asked.
func (e *Env) pool(ctx context.Context, connURL string, maxConns int32, writes *atomic.Int64, tracer ...pgx.QueryTracer) *pgxpool.Pool {
	cfg := must1(pgxpool.ParseConfig(connURL))
	cfg.AfterConnect = pguuid.AfterConnect // as dbchat serve's pool, the floor's too
	if len(tracer) > 0 {
		cfg.ConnConfig.Tracer = tracer[0]
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	if writes != nil {
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			return countingConn{Conn: conn, writes: writes}, err
		}
	}
	p := must1(pgxpool.NewWithConfig(ctx, cfg))
	e.atEnd(p.Close)
	return p
}

// explain appends EXPLAIN (ANALYZE, BUFFERS) of sql, run through query, to
// <workdir>/explain/<part>.txt when BENCH_EXPLAIN is set.
func (e *Env) explain(ctx context.Context, part, title string, query func(context.Context, string, ...any) (pgx.Rows, error), sql string, args ...any) {
	if path := filepath.Join(e.cfg.WorkDir, "explain", part+".txt"); e.cfg.Explain {
		rows, err := query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+sql, args...)
		var plan []string
		if err == nil {
			plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		must(os.MkdirAll(filepath.Dir(path), 0o755))
		f := must1(os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644))
		defer f.Close()
		_, _ = fmt.Fprintf(f, "== %s\n%s\n-- args %v\n%s\n\n", title, sql, args, cmp.Or(strings.Join(plan, "\n"), fmt.Sprint(err)))
	}
}

// atEnd runs f when the running part ends.
func (e *Env) atEnd(f func()) { e.closers = append(e.closers, f) }

// seedTenants creates n tenants with users members (the first an admin) and
// models models (the first "default") as the superuser, not through the
// provisioning path, which is not measured; ids are md5 hashes of the
// tenant's number (and the tenant id), so callers can compute them.
func seedTenants(ctx context.Context, conn *pgx.Conn, n, users, models int) {
	b := &pgx.Batch{}
	b.Queue(render("seed-tenants", nil), n)
	b.Queue(render("seed-users", nil), users)
	b.Queue(render("seed-models", nil), models)
	must(conn.SendBatch(ctx, b).Close())
}

// seedHistory gives every tenant rowsPerTenant query_history rows over 90
// days in created_at order across tenants (scattered as a live service
// writes them), foreign keys unchecked, then VACUUM ANALYZE.
func seedHistory(ctx context.Context, conn *pgx.Conn, rowsPerTenant int) {
	must1(conn.Exec(ctx, `SET session_replication_role = replica`))
	defer func() { _, _ = conn.Exec(context.Background(), `RESET session_replication_role`) }()
	must1(conn.Exec(ctx, render("seed-history", nil), rowsPerTenant))
	must1(conn.Exec(ctx, `VACUUM (ANALYZE) dbchat.tenants, dbchat.users, dbchat.api_keys, dbchat.models,
		dbchat.database_tables, dbchat.database_columns, dbchat.query_history`))
}

// histSample is one existing query_history row.
type histSample struct{ Tenant, ID, User uuid.UUID }

// sampleHistory picks n random rows (with replacement when the table is
// smaller than n).
func sampleHistory(ctx context.Context, conn *pgx.Conn, n int) []histSample {
	rows, _ := conn.Query(ctx, `SELECT tenant_id, id, user_id FROM dbchat.query_history ORDER BY random() LIMIT $1`, n)
	out := must1(pgx.CollectRows(rows, pgx.RowToStructByPos[histSample]))
	for i := len(out); i < n; i++ {
		out = append(out, out[i%len(out)])
	}
	return out
}

// machine describes where the numbers were taken: Postgres is version(),
// PGShort e.g. "PostgreSQL 15.18"; pgPID the postmaster's pid when the
// cluster is local, else 0.
type machine struct {
	CPU, OS, Kernel, Go, Commit, Postgres, PGShort, PGVector string
	Cores, pgPID                                             int
	MemGiB                                                   float64
	PGSettings                                               [][2]string
}

// pgSettings are the server settings that matter to these numbers.
var pgSettings = []string{"shared_buffers", "work_mem", "temp_buffers", "max_wal_size", "fsync",
	"synchronous_commit", "full_page_writes", "jit", "max_connections"}

func probeMachine(ctx context.Context, adminURL string) (machine, error) {
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version(), CPU: firstField("/proc/cpuinfo", "model name", ":"), Kernel: strings.TrimSpace(string(kernel)),
		OS: strings.Trim(firstField("/etc/os-release", "PRETTY_NAME", "="), `"`), Commit: gitCommit()}
	if kb, err := strconv.ParseFloat(strings.Fields(firstField("/proc/meminfo", "MemTotal", ":") + " 0")[0], 64); err == nil {
		m.MemGiB = kb / (1 << 20)
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return m, err
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, `SELECT version(), 'PostgreSQL ' || current_setting('server_version'),
		coalesce((SELECT default_version FROM pg_available_extensions WHERE name = 'vector'), 'not installed')`).
		Scan(&m.Postgres, &m.PGShort, &m.PGVector); err != nil {
		return m, err
	}
	rows, _ := conn.Query(ctx, "SELECT s, current_setting(s, true) FROM unnest($1::text[]) s", pgSettings)
	m.PGSettings, _ = pgx.CollectRows(rows, func(r pgx.CollectableRow) (kv [2]string, err error) { return kv, r.Scan(&kv[0], &kv[1]) })
	// The postmaster's pid lets the HTTP part account PostgreSQL's CPU time;
	// only meaningful when the cluster runs on this machine.
	var pidFile string
	host := conn.Config().Host
	if conn.QueryRow(ctx, `SELECT pg_read_file('postmaster.pid')`).Scan(&pidFile) == nil &&
		(host == "127.0.0.1" || host == "localhost" || host == "::1" || strings.HasPrefix(host, "/")) {
		m.pgPID, _ = strconv.Atoi(strings.TrimSpace(strings.SplitN(pidFile, "\n", 2)[0]))
	}
	return m, nil
}

func (m machine) oneLine() string {
	line := fmt.Sprintf("%d cores (%s), %.0f GiB RAM, %s, %s", m.Cores, m.CPU, m.MemGiB, m.PGShort, m.Go)
	// shared_buffers is set per run (BENCH_SHARED_BUFFERS) and moves the
	// vector parts' figures most, so every section names it.
	for _, kv := range m.PGSettings {
		if kv[0] == "shared_buffers" {
			line += ", shared_buffers " + kv[1]
		}
	}
	return line
}

// firstField is the value of the first "key<sep>value" line of a file.
func firstField(path, key, sep string) string {
	b, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, sep); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func gitCommit() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(bytes.TrimSpace(st)) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

// clockTick is Linux's USER_HZ, the unit of /proc/<pid>/stat CPU times (100
// on every mainstream architecture).
const clockTick = 100

// cpuTimes is CPU time (user+system) consumed so far by this process (the
// servers under test) and PostgreSQL (the postmaster and its children).
type cpuTimes struct{ self, postgres time.Duration }

func (m machine) cpuNow() (t cpuTimes) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		t.self = rusageCPU(&ru)
	}
	entries, _ := os.ReadDir(map[bool]string{true: "/proc"}[m.pgPID != 0])
	for _, ent := range entries {
		pid, _ := strconv.Atoi(ent.Name())
		if ppid, cpu, ok := procStat(pid); ok && (pid == m.pgPID || ppid == m.pgPID) {
			t.postgres += cpu
		}
	}
	return t
}

func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStat reads a process's parent and CPU time from /proc/<pid>/stat.
func procStat(pid int) (ppid int, cpu time.Duration, ok bool) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	// After the command name (in parentheses, may contain spaces): state(0)
	// ppid(1) … utime(11) stime(12).
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, time.Duration(ut+st) * time.Second / clockTick, true
}

// procMem is a process's memory from /proc/<pid>/status, in bytes: VmHWM
// (peak resident set), resident anonymous memory (heap, stacks) and file
// mappings (the binary's pages) now.
type procMem struct{ HWM, RssAnon, RssFile int64 }

// procMemory reads /proc/<pid>/status.
func procMemory(pid int) (procMem, error) {
	var m procMem
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	fields := map[string]*int64{"VmHWM": &m.HWM, "RssAnon": &m.RssAnon, "RssFile": &m.RssFile}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if f := strings.Fields(v); fields[k] != nil && len(f) > 0 {
			n, _ := strconv.ParseInt(f[0], 10, 64)
			*fields[k] = n << 10
		}
	}
	if err == nil && m.HWM == 0 {
		err = fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return m, err
}

// peakAnon samples a process's anonymous RSS (VmHWM counts file pages too)
// every 5 ms until stop, which returns the peak (and may be called again).
func peakAnon(pid int) (stop func() int64) {
	var peak atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for t := time.NewTicker(5 * time.Millisecond); ctx.Err() == nil; <-t.C {
			if m, err := procMemory(pid); err == nil && m.RssAnon > peak.Load() {
				peak.Store(m.RssAnon)
			}
		}
	}()
	return func() int64 { cancel(); <-done; return peak.Load() }
}

// serveMain is `dbchat-bench serve`, the API server as `dbchat serve` builds
// it (pgxpool's default pool on DATABASE_URL, 3 s acquire timeout; with
// $BENCH_SERVE_QUERY_URL the sandbox, 8 connections, and /v1/ask, offline
// generator) in a process of its own, plus /debug/bench/phases (statement
// times since the last call; not with the sandbox) and /debug/bench/memstats.
// It prints its address and serves until stdin closes.
func serveMain(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	err := profiled(os.Getenv(serveProfileEnv), func() error { return serve(ctx, stdout) })
	if err != nil {
		fmt.Fprintf(stderr, "dbchat-bench serve: %v\n", err)
		return 1
	}
	return 0
}

// serve runs the API server until the orchestrator closes stdin.
func serve(ctx context.Context, stdout io.Writer) error {
	_, err := (&Env{}).runPart(ctx, part{run: func(ctx context.Context, e *Env) (*Section, error) {
		tr, q := &phaseTracer{}, os.Getenv(serveQueryEnv)
		db := tenant.New(e.pool(ctx, os.Getenv("DATABASE_URL"), 0, nil, map[bool]pgx.QueryTracer{true: tr}[q == ""]))
		db.SetAcquireTimeout(3 * time.Second)
		cfg := server.Config{MaxImportBytes: map[bool]int64{true: 1 << 40}[q == ""]}
		if q != "" {
			box := must1(tenant.NewSandbox(ctx, q, 8))
			e.atEnd(box.Close)
			cfg.SQL = sandbox.New(db, box)
			cfg.Ask = ask.New(db, cfg.SQL, &nlsql.Store{DB: db, Embedder: embed.NewLocal()}, generate.NewOffline())
		}
		mux := http.NewServeMux()
		mux.Handle("/", server.New(db, devNullLog, cfg))
		mux.HandleFunc("/debug/bench/phases", func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(tr.take()) })
		mux.HandleFunc("/debug/bench/memstats", func(w http.ResponseWriter, _ *http.Request) {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			_ = json.NewEncoder(w).Encode(memStats{m.Sys, m.HeapSys, m.TotalAlloc, m.NumGC, runtime.NumGoroutine()})
		})
		fmt.Fprintln(stdout, e.serve(mux))
		_, err := io.Copy(io.Discard, os.Stdin) // until the orchestrator closes it
		return nil, err
	}})
	return err
}

const (
	serveQueryEnv = "BENCH_SERVE_QUERY_URL"
	// serveProfileEnv names the file a server process writes its CPU
	// profile to (-cpuprofile's path with .serve-N appended).
	serveProfileEnv = "BENCH_SERVE_CPUPROFILE"
)

// devNullLog is the JSON access log of `dbchat serve`, written to /dev/null
// so that the cost of formatting and writing stays.
var devNullLog = slog.New(slog.NewJSONHandler(must1(os.OpenFile(os.DevNull, os.O_WRONLY, 0)), nil))

// phase is the time one database call took, as the client saw it.
type phase struct {
	Name string  `json:"name"`
	Ms   float64 `json:"ms"`
}

// phaseTracer records every statement's (pipeline's, COPY's) duration named
// by statementPhase unless paused, and with keep the statements and arguments.
type phaseTracer struct {
	mu     sync.Mutex
	phases []phase
	kept   [][]any // SQL, arguments…
	paused atomic.Bool
	keep   atomic.Bool
}

func (t *phaseTracer) keepStmt(sql string, args []any) {
	if t.keep.Load() {
		t.mu.Lock()
		defer t.mu.Unlock()
		t.kept = append(t.kept, append([]any{sql}, args...))
	}
}

// take returns the phases recorded so far and forgets them.
func (t *phaseTracer) take() (p []phase) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, t.phases = t.phases, nil
	return p
}

type traceKey struct{}
type traceStart struct {
	at   time.Time
	sqls []string
}

func (t *phaseTracer) start(ctx context.Context, sqls ...string) context.Context {
	if t.paused.Load() {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, &traceStart{at: time.Now(), sqls: sqls})
}

// end records a call: a pipeline by its statements ("BEGIN + tenant
// setting + GetModelByName", "ListActiveCatalog + COMMIT"), or by its first
// when that is a SAVEPOINT (retrieval's HNSW batch).
func (t *phaseTracer) end(ctx context.Context) {
	if s, ok := ctx.Value(traceKey{}).(*traceStart); ok && len(s.sqls) > 0 {
		t.mu.Lock()
		t.phases = append(t.phases, phase{pipelinePhase(s.sqls), millis(time.Since(s.at))})
		t.mu.Unlock()
	}
}

// pipelinePhase names the statements of one call (see end).
func pipelinePhase(sqls []string) string {
	if len(sqls) > 1 && strings.HasPrefix(sqls[0], "SAVEPOINT") {
		return statementPhase(sqls[0])
	}
	var names []string
	for i, sql := range sqls {
		switch {
		case i == 0 && sql == "BEGIN" && len(sqls) > 1:
			names = append(names, "BEGIN")
		case i < 2 && len(sqls) > 1 && strings.Contains(sql, "set_config('app.tenant_id'"):
			names = append(names, "tenant setting")
		default:
			names = append(names, statementPhase(sql))
		}
	}
	return strings.Join(names, " + ")
}

// The pgx tracer interfaces (queries, pipelines, COPY).
func (t *phaseTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.keepStmt(d.SQL, d.Args)
	return t.start(ctx, d.SQL)
}
func (t *phaseTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	t.end(ctx)
}
func (t *phaseTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return t.start(ctx)
}
func (t *phaseTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	t.keepStmt(d.SQL, d.Args)
	if s, ok := ctx.Value(traceKey{}).(*traceStart); ok {
		s.sqls = append(s.sqls, d.SQL)
	}
}
func (t *phaseTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	t.end(ctx)
}
func (t *phaseTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return t.start(ctx, "COPY")
}
func (t *phaseTracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	t.end(ctx)
}

// phaseNames (templates/data.tmpl) name statements by their start, text
// they contain or both; an empty name: the sqlc query's name that follows.
var phaseNames = dataLines("phases")
var phaseCopy = phaseNames[0][2]

// statementPhase names a statement by what it does (an sqlc query by its
// name) for the import's and the ask pipeline's breakdowns.
func statementPhase(sql string) string {
	s := strings.TrimSpace(sql)
	for _, p := range phaseNames {
		if strings.HasPrefix(s, p[0]) && strings.Contains(s, p[1]) {
			if p[2] == "" {
				name, _, _ := strings.Cut(s[len(p[0]):], " ")
				return name
			}
			return p[2]
		}
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// child is a `dbchat-bench serve` process.
type child struct {
	pid  int
	url  string
	stop func() error // closes its stdin (it shuts down) and waits for it
}

// startServer starts the API server in a child process on dbURL (and the
// sandbox on queryURL), stopped at the latest when the running part ends.
func (e *Env) startServer(ctx context.Context, dbURL, queryURL string) *child {
	cmd := exec.CommandContext(ctx, e.exe, "serve")
	cmd.Env, cmd.Stderr = append(os.Environ(), "DATABASE_URL="+dbURL, serveQueryEnv+"="+queryURL), e.cfg.Stderr
	if e.cfg.CPUProfile != "" { // each server process profiles itself
		e.servers++
		cmd.Env = append(cmd.Env, serveProfileEnv+"="+fmt.Sprintf("%s.serve-%d", e.cfg.CPUProfile, e.servers))
	}
	stdin, stdout := must1(cmd.StdinPipe()), must1(cmd.StdoutPipe())
	must(cmd.Start())
	c := &child{pid: cmd.Process.Pid, stop: sync.OnceValue(func() error {
		_ = stdin.Close()
		timer := time.AfterFunc(40*time.Second, func() { _ = cmd.Process.Kill() })
		defer timer.Stop()
		return cmd.Wait()
	})}
	e.atEnd(func() { _ = c.stop() })
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		if c.url = a; a != "" {
			return c
		}
	case <-time.After(30 * time.Second):
	}
	panic(partError{errors.New("the server process did not start listening")})
}

// memStats is the Go runtime's view of the server's memory.
type memStats struct {
	Sys        uint64 `json:"sys"`         // obtained from the OS
	HeapSys    uint64 `json:"heap_sys"`    // of which heap
	TotalAlloc uint64 `json:"total_alloc"` // allocated since start, cumulative
	NumGC      uint32 `json:"num_gc"`
	Goroutines int    `json:"goroutines"`
}

// get decodes the JSON the child serves at path into v.
func (c *child) get(ctx context.Context, path string, v any) {
	doJSON(ctx, http.DefaultClient, http.MethodGet, c.url+path, "", nil, v)
}

// loadResult is what `dbchat-bench load` reports on stdout.
type loadResult struct {
	Errors     int64         `json:"errors"`
	FirstError string        `json:"first_error,omitempty"`
	RPS        float64       `json:"rps"`
	P50us      float64       `json:"p50_us"`
	P99us      float64       `json:"p99_us"`
	CPU        time.Duration `json:"-"` // the load generator's own CPU time (rusage)
}

// loadHeaderEnv carries one request header (the API key) to the load
// generator, out of its command line.
const loadHeaderEnv = "BENCH_LOAD_HEADER"

// loadMain is `dbchat-bench load URLS CONNECTIONS DURATION [RATE]` (a header
// in $BENCH_LOAD_HEADER): GETs cycling through the space-separated URLS on
// keep-alive connections, back to back or RATE per second in all; then it
// prints a loadResult as JSON.
func loadMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	conc, dur, rate := 0, time.Duration(0), 0.0
	if len(args) == 3 || len(args) == 4 {
		conc, _ = strconv.Atoi(args[1])
		dur, _ = time.ParseDuration(args[2])
		rate, _ = strconv.ParseFloat(append(args[3:], "0")[0], 64)
	}
	if conc <= 0 || dur <= 0 {
		fmt.Fprintln(stderr, "usage: dbchat-bench load URLS CONNECTIONS DURATION [RATE]")
		return 2
	}
	targets, header := strings.Fields(args[0]), os.Getenv(loadHeaderEnv)
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc,
		MaxConnsPerHost: conc, DisableCompression: true, IdleConnTimeout: time.Minute}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	res, lat, start := loadResult{}, []float64{}, time.Now() // lat in µs
	deadline := start.Add(dur)
	for w := range conc {
		wg.Go(func() {
			mine, errs, first := []float64{}, int64(0), ""
			for i := w; ctx.Err() == nil && time.Now().Before(deadline); i += conc {
				if rate > 0 { // the i-th request in all is due at start + i/rate
					time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
				}
				t0 := time.Now()
				status, err := roundTrip(ctx, client, http.MethodGet, targets[i%len(targets)], header, nil, io.Discard)
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("status %d", status)
				}
				if err != nil {
					if errs++; first == "" {
						first = err.Error()
					}
					continue
				}
				mine = append(mine, micros(time.Since(t0)))
			}
			mu.Lock()
			defer mu.Unlock()
			lat, res.Errors, res.FirstError = append(lat, mine...), res.Errors+errs, cmp.Or(res.FirstError, first)
		})
	}
	wg.Wait()
	res.RPS = float64(len(lat)) / time.Since(start).Seconds()
	res.P50us, res.P99us = pq(lat, 0.50), pq(lat, 0.99)
	return map[bool]int{true: 1}[json.NewEncoder(stdout).Encode(res) != nil]
}

// runLoad runs the load generator in a second process against url (URLs,
// space-separated); failed requests abort the part unless a rate is given.
func (e *Env) runLoad(ctx context.Context, url, header string, conc int, d time.Duration, rate ...float64) loadResult {
	cmd := exec.CommandContext(ctx, e.exe, append([]string{"load", url, strconv.Itoa(conc), d.String()},
		collect(rate, func(r float64) string { return fmt.Sprint(r) })...)...)
	cmd.Env = append(os.Environ(), loadHeaderEnv+"="+header)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	var res loadResult
	err := cmd.Run()
	mustf(err == nil && json.Unmarshal(out.Bytes(), &res) == nil && (res.Errors == 0 || len(rate) > 0),
		"load generator on %s: %v, %d failed requests (first: %s): %s", url, err, res.Errors, res.FirstError, errb.String())
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.CPU = rusageCPU(ru)
	}
	return res
}

// roundTrip sends a request with the headers ("Name: value" lines; a
// file body as CSV, another as JSON) and copies the answer's body to w.
func roundTrip(ctx context.Context, client *http.Client, method, url, header string, body io.Reader, w io.Writer) (status int, err error) {
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, err
	}
	for _, h := range strings.Split(header, "\n") {
		if k, v, ok := strings.Cut(h, ":"); ok {
			req.Header.Set(k, strings.TrimSpace(v))
		}
	}
	if f, ok := body.(*os.File); ok {
		req.Header.Set("Content-Type", "text/csv")
		req.ContentLength = must1(f.Stat()).Size()
	} else if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(w, resp.Body)
	return resp.StatusCode, err
}

// writerFunc is a function as an io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// doJSON decodes a 200 (or 201) answer's JSON body into out (unless nil);
// it returns the body.
func doJSON(ctx context.Context, client *http.Client, method, url, header string, body io.Reader, out any) []byte {
	var b bytes.Buffer
	status, err := roundTrip(ctx, client, method, url, header, body, &b)
	if err == nil && status != http.StatusOK && status != http.StatusCreated {
		err = fmt.Errorf("%s %s: %d %s: %s", method, url, status, http.StatusText(status), b.Bytes())
	}
	if err == nil && out != nil {
		err = json.Unmarshal(b.Bytes(), out)
	}
	must(err)
	return b.Bytes()
}
