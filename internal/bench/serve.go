package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// serveMain is `dbchat-bench serve`: the API server as `dbchat serve` builds
// it (server.New over a dbchat_app pool from DATABASE_URL, JSON access log,
// here to /dev/null), in a process of its own so that its memory is its own.
// It adds two benchmark-only routes: /debug/pprof/profile (CPU profile) and
// /debug/bench/phases (time per database statement since the last call). It
// prints its address on stdout and serves until stdin closes.
func serveMain(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "dbchat-bench serve: %v\n", err)
		return 1
	}
	cfg, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
	if err != nil {
		return fail(err)
	}
	tr := &phaseTracer{}
	cfg.ConnConfig.Tracer = tr
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return fail(err)
	}
	defer pool.Close()
	api := server.New(tenant.New(pool), devNullLog, server.Config{MaxImportBytes: 1 << 40})
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.Handle("/debug/bench/phases", tr)
	mux.HandleFunc("/debug/bench/memstats", func(w http.ResponseWriter, _ *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(memStats{Sys: m.Sys, HeapSys: m.HeapSys, TotalAlloc: m.TotalAlloc, NumGC: m.NumGC})
	})
	mux.Handle("/", api)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintln(stdout, ln.Addr().String())

	stdinClosed := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(stdinClosed) }()
	select {
	case <-stdinClosed:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return 0
}

// devNullLog is the JSON access log of `dbchat serve`, written to /dev/null
// so that the cost of formatting and writing stays.
var devNullLog = func() *slog.Logger {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		panic(err)
	}
	return slog.New(slog.NewJSONHandler(f, nil))
}()

// phase is the time one database call took, as the client saw it.
type phase struct {
	Name string  `json:"name"`
	Ms   float64 `json:"ms"`
}

// phaseTracer records every statement's duration (a pgx tracer), so the
// benchmark can say where an import's time goes.
type phaseTracer struct {
	mu     sync.Mutex
	phases []phase
	// name names a statement (default statementPhase); paused stops
	// recording.
	name   func(sql string) string
	paused atomic.Bool
}

func (t *phaseTracer) phaseName(sql string) string {
	if t.name != nil {
		return t.name(sql)
	}
	return statementPhase(sql)
}

// take returns the phases recorded so far and forgets them.
func (t *phaseTracer) take() []phase {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.phases
	t.phases = nil
	return p
}

type traceKey struct{}

type traceStart struct {
	at   time.Time
	sqls []string
}

func (t *phaseTracer) add(name string, start time.Time) {
	t.mu.Lock()
	t.phases = append(t.phases, phase{name, float64(time.Since(start)) / float64(time.Millisecond)})
	t.mu.Unlock()
}

func (t *phaseTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	if t.paused.Load() {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, &traceStart{at: time.Now(), sqls: []string{d.SQL}})
}

func (t *phaseTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	if s, ok := ctx.Value(traceKey{}).(*traceStart); ok {
		t.add(t.phaseName(s.sqls[0]), s.at)
	}
}

func (t *phaseTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	if t.paused.Load() {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, &traceStart{at: time.Now()})
}

func (t *phaseTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	if s, ok := ctx.Value(traceKey{}).(*traceStart); ok {
		s.sqls = append(s.sqls, d.SQL)
	}
}

func (t *phaseTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	if s, ok := ctx.Value(traceKey{}).(*traceStart); ok && len(s.sqls) > 0 {
		prefix := "tenant setting + "
		if s.sqls[0] == "BEGIN" {
			prefix = "BEGIN + " + prefix
		}
		t.add(prefix+t.phaseName(s.sqls[len(s.sqls)-1]), s.at)
	}
}

func (t *phaseTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return context.WithValue(ctx, traceKey{}, &traceStart{at: time.Now()})
}

func (t *phaseTracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	if s, ok := ctx.Value(traceKey{}).(*traceStart); ok {
		t.add(phaseCopy, s.at)
	}
}

const (
	phaseCopy   = "COPY into the staging table (streams the body: read, CSV parse, convert, encode)"
	phaseInsert = "INSERT … SELECT into the data table (policy WITH CHECK, defaults, PK index)"
)

// statementPhase names a statement by what it does in the request path.
func statementPhase(sql string) string {
	s := strings.TrimSpace(sql)
	switch {
	case strings.HasPrefix(s, "CREATE TEMPORARY TABLE"):
		return "create the staging table"
	case strings.HasPrefix(s, "INSERT INTO") && strings.Contains(s, "SELECT"):
		return phaseInsert
	case strings.HasPrefix(s, "DROP TABLE"):
		return "drop the staging table"
	case s == "COMMIT" || s == "ROLLBACK":
		return s
	case strings.Contains(s, "dbchat.database_columns"):
		return "catalog: columns"
	case strings.Contains(s, "dbchat.database_tables"):
		return "catalog: table"
	case strings.Contains(s, "dbchat.api_keys"):
		return "key lookup"
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
}

// ServeHTTP returns the phases recorded since the last call and forgets them.
func (t *phaseTracer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	p := t.take()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(p)
}

// child is a `dbchat-bench serve` process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	url   string
}

// startServer starts the API server in a child process on dbURL.
func (e *Env) startServer(ctx context.Context, dbURL string) (*child, error) {
	cmd := exec.CommandContext(ctx, e.exe, "serve")
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL)
	cmd.Stderr = e.cfg.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd, stdin: stdin}
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		addr <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		if a == "" {
			_ = c.stop()
			return nil, errors.New("the server process exited before listening")
		}
		c.url = "http://" + a
	case <-time.After(30 * time.Second):
		_ = c.stop()
		return nil, errors.New("the server process did not start listening within 30 s")
	}
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop closes the child's stdin (it shuts down) and waits for it.
func (c *child) stop() error {
	_ = c.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(40 * time.Second):
		_ = c.cmd.Process.Kill()
		return <-done
	}
}

// memStats is the Go runtime's view of the server's memory.
type memStats struct {
	Sys        uint64 `json:"sys"`         // obtained from the OS
	HeapSys    uint64 `json:"heap_sys"`    // of which heap
	TotalAlloc uint64 `json:"total_alloc"` // allocated since start, cumulative
	NumGC      uint32 `json:"num_gc"`
}

func (c *child) memStats(ctx context.Context) (memStats, error) {
	var m memStats
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/debug/bench/memstats", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return m, err
	}
	defer resp.Body.Close()
	return m, json.NewDecoder(resp.Body).Decode(&m)
}

// phases fetches and resets the child's statement timings.
func (c *child) phases(ctx context.Context) ([]phase, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+"/debug/bench/phases", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var p []phase
	return p, json.NewDecoder(resp.Body).Decode(&p)
}
