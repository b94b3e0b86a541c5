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
// It adds two benchmark-only routes: /debug/bench/phases (time per database
// statement since the last call) and /debug/bench/memstats. It prints its
// address on stdout and serves until stdin closes.
func serveMain(ctx context.Context, _ []string, stdout, stderr io.Writer) int {
	err := func() error {
		cfg, err := pgxpool.ParseConfig(os.Getenv("DATABASE_URL"))
		if err != nil {
			return err
		}
		tr := &phaseTracer{name: statementPhase}
		cfg.ConnConfig.Tracer = tr
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return err
		}
		defer pool.Close()
		mux := http.NewServeMux()
		mux.Handle("/", server.New(tenant.New(pool), devNullLog, server.Config{MaxImportBytes: 1 << 40}))
		mux.HandleFunc("/debug/bench/phases", func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(tr.take()) })
		mux.HandleFunc("/debug/bench/memstats", func(w http.ResponseWriter, _ *http.Request) {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			_ = json.NewEncoder(w).Encode(memStats{Sys: m.Sys, HeapSys: m.HeapSys, TotalAlloc: m.TotalAlloc, NumGC: m.NumGC})
		})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
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
		return srv.Shutdown(sctx)
	}()
	if err != nil {
		fmt.Fprintf(stderr, "dbchat-bench serve: %v\n", err)
		return 1
	}
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

// phaseTracer records every statement's (or pipeline's, or COPY's)
// duration, named by name; paused stops recording.
type phaseTracer struct {
	mu     sync.Mutex
	phases []phase
	name   func(sql string) string
	paused atomic.Bool
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

func (t *phaseTracer) start(ctx context.Context, sqls ...string) context.Context {
	if t.paused.Load() {
		return ctx
	}
	return context.WithValue(ctx, traceKey{}, &traceStart{at: time.Now(), sqls: sqls})
}

func (t *phaseTracer) end(ctx context.Context, name func(sqls []string) string) {
	if s, ok := ctx.Value(traceKey{}).(*traceStart); ok && len(s.sqls) > 0 {
		t.mu.Lock()
		t.phases = append(t.phases, phase{name(s.sqls), millis(time.Since(s.at))})
		t.mu.Unlock()
	}
}

func (t *phaseTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return t.start(ctx, d.SQL)
}

func (t *phaseTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	t.end(ctx, func(s []string) string { return t.name(s[0]) })
}

func (t *phaseTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return t.start(ctx)
}

func (t *phaseTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	if s, ok := ctx.Value(traceKey{}).(*traceStart); ok {
		s.sqls = append(s.sqls, d.SQL)
	}
}

func (t *phaseTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	t.end(ctx, func(s []string) string {
		return map[bool]string{true: "BEGIN + "}[s[0] == "BEGIN"] + "tenant setting + " + t.name(s[len(s)-1])
	})
}

func (t *phaseTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return t.start(ctx, "COPY")
}

func (t *phaseTracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	t.end(ctx, func([]string) string { return phaseCopy })
}

const phaseCopy = "COPY into the staging table (streams the body: read, CSV parse, convert, encode)"

// statementPhase names a statement by what it does in the request path.
func statementPhase(sql string) string {
	s := strings.TrimSpace(sql)
	for _, p := range []struct{ prefix, contains, name string }{
		{"CREATE TEMPORARY TABLE", "", "create the staging table"},
		{"INSERT INTO", "SELECT", "INSERT … SELECT into the data table (policy WITH CHECK, defaults, PK index)"},
		{"DROP TABLE", "", "drop the staging table"},
		{"COMMIT", "", "COMMIT"}, {"ROLLBACK", "", "ROLLBACK"},
		{"", "dbchat.database_columns", "catalog: columns"}, {"", "dbchat.database_tables", "catalog: table"},
		{"", "dbchat.api_keys", "key lookup"},
	} {
		if strings.HasPrefix(s, p.prefix) && strings.Contains(s, p.contains) {
			return p.name
		}
	}
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return s
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
		if a != "" {
			c.url = "http://" + a
			return c, nil
		}
	case <-time.After(30 * time.Second):
	}
	_ = c.stop()
	return nil, errors.New("the server process did not start listening")
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// stop closes the child's stdin (it shuts down) and waits for it.
func (c *child) stop() error {
	_ = c.stdin.Close()
	timer := time.AfterFunc(40*time.Second, func() { _ = c.cmd.Process.Kill() })
	defer timer.Stop()
	return c.cmd.Wait()
}

// memStats is the Go runtime's view of the server's memory.
type memStats struct {
	Sys        uint64 `json:"sys"`         // obtained from the OS
	HeapSys    uint64 `json:"heap_sys"`    // of which heap
	TotalAlloc uint64 `json:"total_alloc"` // allocated since start, cumulative
	NumGC      uint32 `json:"num_gc"`
}

// get decodes the JSON the child serves at path into v.
func (c *child) get(ctx context.Context, path string, v any) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.url+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}
