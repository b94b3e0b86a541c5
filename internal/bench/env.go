package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/migrate"
)

// Env is what a part needs: the configuration, the machine, and helpers to
// create benchmark databases and pools.
type Env struct {
	cfg     Config
	machine machine
	exe     string // this binary, re-executed for the load generator and the server
	dbs     []string
	closers []func() // of the running part
}

func (e *Env) close() {
	for _, name := range e.dbs {
		if !e.cfg.Keep {
			e.dropDatabase(name)
		}
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

// open is every part's setup: it (re)creates dbchat_bench_<suffix>, applies
// the migrations the way `dbchat migrate` does, and connects to it as the
// superuser. Connection and database go when the run ends.
func (e *Env) open(ctx context.Context, suffix string) *benchDB {
	name := "dbchat_bench_" + suffix
	e.dropDatabase(name)
	// The role passwords follow internal/dbtest's derivation, so that the
	// benchmarks and the tests share a cluster without resetting each
	// other's roles (roles are cluster-wide).
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

func must1[T any](v T, err error) T {
	must(err)
	return v
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

// countingConn counts Write calls on a connection to PostgreSQL. pgx flushes
// everything it has queued (a whole pipeline, up to its Sync) in one Write
// and then waits for the answer, so writes are round trips (the method of
// internal/server/roundtrip_test.go).
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// pool opens a pool on connURL for the running part; maxConns 0 keeps
// pgxpool's default (as `dbchat serve` does). A non-nil writes counts the
// pool's round trips; a tracer sees its statements.
func (e *Env) pool(ctx context.Context, connURL string, maxConns int32, writes *atomic.Int64, tracer ...pgx.QueryTracer) *pgxpool.Pool {
	cfg := must1(pgxpool.ParseConfig(connURL))
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

// atEnd runs f when the running part ends.
func (e *Env) atEnd(f func()) { e.closers = append(e.closers, f) }

// seedTenants creates n synthetic tenants, each with users members (the
// first an admin) and models models (the first "default"), directly as the
// superuser: the provisioning path is not what is measured, and going
// through it for 1,000 tenants would only cost time. Ids are md5 hashes of
// the tenant's number (and the tenant id), so callers can compute them.
func seedTenants(ctx context.Context, conn *pgx.Conn, n, users, models int) {
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO dbchat.tenants (id, name, slug)
		SELECT md5('bench-tenant-' || i)::uuid, 'Bench tenant ' || i, 'tenant-' || i FROM generate_series(1, $1::int) i`, n)
	b.Queue(`INSERT INTO dbchat.users (tenant_id, id, email, name, role)
		SELECT t.id, md5(t.id::text || '/user/' || u)::uuid, 'user' || u || '@' || t.slug || '.invalid', 'User ' || u,
		       CASE WHEN u = 1 THEN 'admin' ELSE 'member' END
		FROM dbchat.tenants t, generate_series(1, $1::int) u WHERE t.slug LIKE 'tenant-%'`, users)
	b.Queue(`INSERT INTO dbchat.models (tenant_id, id, name, description)
		SELECT t.id, md5(t.id::text || CASE WHEN k = 1 THEN '/model' ELSE '/model/' || k END)::uuid,
		       CASE WHEN k = 1 THEN 'default' ELSE 'model-' || k END, 'Bench model ' || k
		FROM dbchat.tenants t, generate_series(1, $1::int) k WHERE t.slug LIKE 'tenant-%'`, models)
	must(conn.SendBatch(ctx, b).Close())
}

// seedHistory gives every tenant rowsPerTenant query_history rows over its
// users and the last 90 days, in created_at order across tenants (one
// tenant's rows scattered over the heap, as a live service writes them),
// foreign-key triggers skipped, then VACUUM ANALYZE (a steady state).
func seedHistory(ctx context.Context, conn *pgx.Conn, rowsPerTenant int) {
	must1(conn.Exec(ctx, `SET session_replication_role = replica`))
	defer func() { _, _ = conn.Exec(context.Background(), `RESET session_replication_role`) }()
	must1(conn.Exec(ctx, `
		INSERT INTO dbchat.query_history (tenant_id, id, user_id, model_id, question, generated_sql, status, error,
		                                  row_count, generation_ms, execution_ms, created_at)
		SELECT tenant_id, gen_random_uuid(), users[1 + (g % array_length(users, 1))], model,
		       'How many orders did region ' || g || ' place last month?',
		       'SELECT count(*) FROM orders WHERE region = ' || g || ' AND placed_at >= date_trunc(''month'', now()) - interval ''1 month''',
		       CASE WHEN r < 0.70 THEN 'success' WHEN r < 0.85 THEN 'error' WHEN r < 0.95 THEN 'rejected' ELSE 'pending' END,
		       CASE WHEN r >= 0.70 AND r < 0.85 THEN 'column "region" does not exist' END,
		       CASE WHEN r < 0.70 THEN (g * 7) % 1000 END,
		       50 + 900 * random(), 0.2 + 20 * random(),
		       now() - interval '90 days' * random()
		FROM (SELECT u.tenant_id, array_agg(u.id ORDER BY u.id) AS users,
		             (SELECT m.id FROM dbchat.models m WHERE m.tenant_id = u.tenant_id ORDER BY m.created_at LIMIT 1) AS model
		      FROM dbchat.users u GROUP BY u.tenant_id) t,
		     LATERAL (SELECT g, random() AS r FROM generate_series(1, $1::int) g) s
		ORDER BY 12`, rowsPerTenant))
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

// machine describes where the numbers were taken.
type machine struct {
	CPU        string
	Cores      int
	MemGiB     float64
	OS         string
	Kernel     string
	Postgres   string // version()
	PGShort    string // e.g. "PostgreSQL 15.18"
	PGVector   string
	PGSettings [][2]string
	Go         string
	Commit     string
	pgPID      int // postmaster pid when the cluster is local, else 0
}

// pgSettings are the server settings that matter to these numbers.
var pgSettings = []string{"shared_buffers", "work_mem", "temp_buffers", "max_wal_size", "fsync",
	"synchronous_commit", "full_page_writes", "jit", "max_connections"}

func probeMachine(ctx context.Context, adminURL string) (machine, error) {
	m := machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	m.CPU = firstField("/proc/cpuinfo", "model name", ":")
	if kb, err := strconv.ParseFloat(strings.Fields(firstField("/proc/meminfo", "MemTotal", ":") + " 0")[0], 64); err == nil {
		m.MemGiB = kb / (1 << 20)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.OS = strings.Trim(firstField("/etc/os-release", "PRETTY_NAME", "="), `"`)
	m.Commit = gitCommit()
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
	for _, s := range pgSettings {
		var v string
		if conn.QueryRow(ctx, "SELECT current_setting($1)", s).Scan(&v) == nil {
			m.PGSettings = append(m.PGSettings, [2]string{s, v})
		}
	}
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
	return fmt.Sprintf("%d cores (%s), %.0f GiB RAM, %s, %s", m.Cores, m.CPU, m.MemGiB, m.PGShort, m.Go)
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

// clockTick is Linux's USER_HZ, the unit of /proc/<pid>/stat CPU times; it is
// 100 on every mainstream architecture.
const clockTick = 100

// cpuTimes is CPU time (user+system) consumed so far by the processes that
// share the machine during a load run.
type cpuTimes struct {
	self     time.Duration // this process: the servers under test
	postgres time.Duration // the postmaster and its children (backends, walwriter, …)
}

func (m machine) cpuNow() cpuTimes {
	var t cpuTimes
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		t.self = rusageCPU(&ru)
	}
	if m.pgPID == 0 {
		return t
	}
	entries, _ := os.ReadDir("/proc")
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

// procMem is a process's memory from /proc/<pid>/status, in bytes.
type procMem struct {
	HWM     int64 // VmHWM: peak resident set
	RssAnon int64 // resident anonymous memory (heap, stacks) now
	RssFile int64 // resident file mappings (the binary's pages) now
}

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

// peakAnon samples a process's anonymous RSS every 5 ms until stop, which
// returns the peak (and may be called again): VmHWM also counts the
// binary's file pages, which do not depend on the work done.
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
	return func() int64 {
		cancel()
		<-done
		return peak.Load()
	}
}
