package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

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
	_, err := (&Env{}).runPart(ctx, part{run: func(ctx context.Context, e *Env) (*Section, error) {
		tr := &phaseTracer{}
		mux := http.NewServeMux()
		mux.Handle("/", server.New(tenant.New(e.pool(ctx, os.Getenv("DATABASE_URL"), 0, nil, tr)), devNullLog, server.Config{MaxImportBytes: 1 << 40}))
		mux.HandleFunc("/debug/bench/phases", func(w http.ResponseWriter, _ *http.Request) { _ = json.NewEncoder(w).Encode(tr.take()) })
		mux.HandleFunc("/debug/bench/memstats", func(w http.ResponseWriter, _ *http.Request) {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			_ = json.NewEncoder(w).Encode(memStats{Sys: m.Sys, HeapSys: m.HeapSys, TotalAlloc: m.TotalAlloc, NumGC: m.NumGC})
		})
		fmt.Fprintln(stdout, e.serve(mux))
		_, err := io.Copy(io.Discard, os.Stdin) // until the orchestrator closes it
		return nil, err
	}})
	if err != nil {
		fmt.Fprintf(stderr, "dbchat-bench serve: %v\n", err)
		return 1
	}
	return 0
}

// devNullLog is the JSON access log of `dbchat serve`, written to /dev/null
// so that the cost of formatting and writing stays.
var devNullLog = slog.New(slog.NewJSONHandler(must1(os.OpenFile(os.DevNull, os.O_WRONLY, 0)), nil))

// phase is the time one database call took, as the client saw it.
type phase struct {
	Name string  `json:"name"`
	Ms   float64 `json:"ms"`
}

// phaseTracer records every statement's (or pipeline's, or COPY's)
// duration, named by statementPhase; paused stops recording.
type phaseTracer struct {
	mu     sync.Mutex
	phases []phase
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

// end records a call: a pipeline by its last statement.
func (t *phaseTracer) end(ctx context.Context) {
	if s, ok := ctx.Value(traceKey{}).(*traceStart); ok && len(s.sqls) > 0 {
		name := statementPhase(s.sqls[len(s.sqls)-1])
		if len(s.sqls) > 1 {
			name = map[bool]string{true: "BEGIN + "}[s.sqls[0] == "BEGIN"] + "tenant setting + " + name
		}
		t.mu.Lock()
		t.phases = append(t.phases, phase{name, millis(time.Since(s.at))})
		t.mu.Unlock()
	}
}

func (t *phaseTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return t.start(ctx, d.SQL)
}

func (t *phaseTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	t.end(ctx)
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
	t.end(ctx)
}

func (t *phaseTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromStartData) context.Context {
	return t.start(ctx, "COPY")
}

func (t *phaseTracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	t.end(ctx)
}

const phaseCopy = "COPY into the staging table (streams the body: read, CSV parse, convert, encode)"

// statementPhase names a statement by what it does (an sqlc query by its
// name) for the import's and the ask pipeline's breakdowns.
func statementPhase(sql string) string {
	s := strings.TrimSpace(sql)
	for _, p := range []struct{ prefix, contains, name string }{
		{"COPY", "", phaseCopy}, {"CREATE TEMPORARY TABLE", "", "create the staging table"},
		{"INSERT INTO", "SELECT", "INSERT … SELECT into the data table (policy WITH CHECK, defaults, PK index)"},
		{"DROP TABLE", "", "drop the staging table"}, {"COMMIT", "", "COMMIT"}, {"ROLLBACK", "", "ROLLBACK"},
		{"", "set_config('hnsw.iterative_scan'", "HNSW settings (iterative scan, ef_search, enable_sort off)"},
		{"", "set_config('enable_sort', $1", "restore enable_sort, jit"},
		{"", "embedding <=>", "retrieval search (one UNION ALL branch per kind)"},
		{"-- name: ", "", ""}, // the sqlc name
		{"", "dbchat.database_columns", "catalog: columns"}, {"", "dbchat.database_tables", "catalog: table"},
		{"", "dbchat.api_keys", "key lookup"},
	} {
		if strings.HasPrefix(s, p.prefix) && strings.Contains(s, p.contains) {
			if p.name == "" {
				name, _, _ := strings.Cut(s[len(p.prefix):], " ")
				return name
			}
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
	pid  int
	url  string
	stop func() error // closes its stdin (it shuts down) and waits for it
}

// startServer starts the API server in a child process on dbURL, stopped
// at the latest when the running part ends.
func (e *Env) startServer(ctx context.Context, dbURL string) *child {
	cmd := exec.CommandContext(ctx, e.exe, "serve")
	cmd.Env, cmd.Stderr = append(os.Environ(), "DATABASE_URL="+dbURL), e.cfg.Stderr
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
}

// get decodes the JSON the child serves at path into v.
func (c *child) get(ctx context.Context, path string, v any) {
	doJSON(ctx, http.DefaultClient, http.MethodGet, c.url+path, "", nil, v)
}

// loadResult is what `dbchat-bench load` reports on stdout.
type loadResult struct {
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	RPS        float64 `json:"rps"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`

	CPU time.Duration `json:"-"` // the load generator's own CPU time (rusage)
}

// loadHeaderEnv carries one request header (the API key) to the load
// generator, out of its command line.
const loadHeaderEnv = "BENCH_LOAD_HEADER"

func cutHeader(h string) (name, value string, ok bool) {
	k, v, ok := strings.Cut(h, ":")
	return k, strings.TrimSpace(v), ok
}

// loadMain is the load generator (`dbchat-bench load URL CONNECTIONS
// DURATION`, a header in $BENCH_LOAD_HEADER): the workers send GET URL back
// to back on keep-alive connections, then it prints a loadResult as JSON.
func loadMain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	conc, dur := 0, time.Duration(0)
	if len(args) == 3 {
		conc, _ = strconv.Atoi(args[1])
		dur, _ = time.ParseDuration(args[2])
	}
	if conc <= 0 || dur <= 0 {
		fmt.Fprintln(stderr, "usage: dbchat-bench load URL CONNECTIONS DURATION")
		return 2
	}
	target := args[0]
	hName, hValue, hSet := cutHeader(os.Getenv(loadHeaderEnv))
	client := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: conc, MaxIdleConnsPerHost: conc,
		MaxConnsPerHost: conc, DisableCompression: true, IdleConnTimeout: time.Minute}}
	var mu sync.Mutex
	var res loadResult
	var lat []float64 // µs
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			var mine []float64
			var errs int64
			first := ""
			for ctx.Err() == nil && time.Now().Before(deadline) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				if hSet {
					req.Header.Set(hName, hValue)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
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
			lat, res.Errors = append(lat, mine...), res.Errors+errs
			if res.FirstError == "" {
				res.FirstError = first
			}
		})
	}
	wg.Wait()
	res.RPS = float64(len(lat)) / time.Since(start).Seconds()
	res.P50us, res.P99us = pq(lat, 0.50), pq(lat, 0.99)
	if err := json.NewEncoder(stdout).Encode(res); err != nil {
		return 1
	}
	return 0
}

// runLoad runs the load generator in a second process against url.
func (e *Env) runLoad(ctx context.Context, url, header string, conc int, d time.Duration) loadResult {
	cmd := exec.CommandContext(ctx, e.exe, "load", url, strconv.Itoa(conc), d.String())
	cmd.Env = append(os.Environ(), loadHeaderEnv+"="+header)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	var res loadResult
	if err := cmd.Run(); err != nil || json.Unmarshal(out.Bytes(), &res) != nil || res.Errors > 0 {
		must(fmt.Errorf("load generator on %s: %v, %d failed requests (first: %s): %s", url, err, res.Errors, res.FirstError, errb.String()))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.CPU = rusageCPU(ru)
	}
	return res
}

// doJSON sends a request with the header ("Name: value", may be empty) and
// decodes a 200 response's JSON body into out; it returns the body. A file
// body is sent as CSV.
func doJSON(ctx context.Context, client *http.Client, method, url, header string, body io.Reader, out any) []byte {
	req := must1(http.NewRequestWithContext(ctx, method, url, body))
	if k, v, ok := cutHeader(header); ok {
		req.Header.Set(k, v)
	}
	if f, ok := body.(*os.File); ok {
		req.Header.Set("Content-Type", "text/csv")
		req.ContentLength = must1(f.Stat()).Size()
	} else if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp := must1(client.Do(req))
	defer resp.Body.Close()
	b := must1(io.ReadAll(resp.Body))
	if resp.StatusCode != http.StatusOK {
		must(fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, b))
	}
	if out != nil {
		must(json.Unmarshal(b, out))
	}
	return b
}
