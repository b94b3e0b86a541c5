package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/cli"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// served is `dbchat serve` running in process until stop (its SIGTERM).
type served struct {
	base   string // http://127.0.0.1:port
	addr   string
	stop   context.CancelFunc
	done   chan int // serve's exit code
	stderr *syncBuffer
}

func startServe(t *testing.T, vars map[string]string) *served {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	stdoutR, stdoutW := io.Pipe()
	s := &served{stop: cancel, done: make(chan int, 1), stderr: &syncBuffer{}}
	vars["DBCHAT_ADDR"] = "127.0.0.1:0"
	env := &cli.Env{Stdout: stdoutW, Stderr: s.stderr, Getenv: getenv(vars)}
	go func() {
		code := cli.Run(ctx, env, []string{"serve"})
		stdoutW.Close()
		s.done <- code
	}()
	s.base = waitForLines(t, stdoutR, s.stderr, "dbchat: listening on ")[0]
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()
	s.addr = strings.TrimPrefix(s.base, "http://")
	return s
}

// call sends one JSON request on a connection of its own.
func call(t *testing.T, method, url, key string, body any) (int, string) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(out)
}

// backends watches a test database's backends through a privileged pool.
type backends struct {
	d     *dbtest.DB
	admin *pgxpool.Pool
}

func watchBackends(t *testing.T, d *dbtest.DB) backends {
	return backends{d: d, admin: d.AdminPool(t)}
}

// busy counts the database's backends of role that are not idle (running
// a statement, or inside a transaction).
func (b backends) busy(t *testing.T, role string) int {
	t.Helper()
	var n int
	require.NoError(t, b.admin.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = $1 AND usename = $2 AND state IS DISTINCT FROM 'idle' AND pid <> pg_backend_pid()`,
		b.d.Name, role).Scan(&n))
	return n
}

// trickle is a CSV import body that sends a row every interval until
// finish is closed, then a few more rows, and ends; n is the rows sent.
type trickle struct {
	mu sync.Mutex
	n  int
}

func startTrickle(finish <-chan struct{}, interval time.Duration) (*trickle, io.Reader) {
	r, w := io.Pipe()
	tr := &trickle{}
	go func() {
		if _, err := io.WriteString(w, "id,name\n"); err != nil {
			return
		}
		tick := time.NewTicker(interval)
		defer tick.Stop()
		tail := -1 // rows still to send once finish is closed
		for tail != 0 {
			select {
			case <-finish:
				if tail < 0 {
					tail = 5
				}
			default:
			}
			<-tick.C
			tr.mu.Lock()
			_, err := fmt.Fprintf(w, "%d,row %d\n", tr.n+1, tr.n+1)
			if err == nil {
				tr.n++
			}
			tr.mu.Unlock()
			if err != nil {
				return
			}
			if tail > 0 {
				tail--
			}
		}
		w.Close()
	}()
	return tr, r
}

func (tr *trickle) sent() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.n
}

type upload struct {
	status int
	body   string
	err    error
}

// importAsync posts body to table's rows on a connection of its own.
func importAsync(url, key, table string, body io.Reader) <-chan upload {
	out := make(chan upload, 1)
	go func() {
		req, err := http.NewRequest(http.MethodPost, url+"/v1/tables/"+table+"/rows", body)
		if err != nil {
			out <- upload{err: err}
			return
		}
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "text/csv")
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Minute}
		resp, err := client.Do(req)
		if err != nil {
			out <- upload{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		out <- upload{status: resp.StatusCode, body: string(b), err: err}
	}()
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

// longStatement runs for many minutes of CPU without spilling to disk (a
// generate_series of its own would hit temp_file_limit within a second);
// marker finds it in pg_stat_activity.
func longStatement(marker string) string {
	return "SELECT count(*) FROM generate_series(1, 1000000) a, generate_series(1, 1000000) b WHERE '" + marker + "' <> ''"
}

func withParam(t *testing.T, connURL, key, value string) string {
	u, err := url.Parse(connURL)
	require.NoError(t, err)
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

const uploadsSpec = `{"name":"uploads","columns":[{"name":"id","type":"bigint"},{"name":"name","type":"text"}]}`

func createUploadsTable(t *testing.T, base, key string) string {
	t.Helper()
	var spec any
	require.NoError(t, json.Unmarshal([]byte(uploadsSpec), &spec))
	status, body := call(t, http.MethodPost, base+"/v1/tables", key, spec)
	require.Equal(t, http.StatusCreated, status, body)
	var tbl struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &tbl))
	return tbl.ID
}

// SIGTERM (serve's context cancelled) while four imports are mid-body: the
// listener closes at once (a new connection is refused) while the four go
// on sending; each finishes its body after the signal and gets a complete
// 200 with every row it sent, and serve then exits 0.
func TestServeDrainsRequestsInFlight(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	pg := watchBackends(t, d)
	tn := dbtest.NewTenant(t, tenant.New(d.AppPool(t, 2)), "Drain")
	s := startServe(t, map[string]string{
		"DATABASE_URL":                  withParam(t, d.AppURL, "pool_max_conns", "8"),
		"DBCHAT_MAX_CONCURRENT_IMPORTS": "4",
		"DBCHAT_MAX_TENANT_IMPORTS":     "4",
	})
	table := createUploadsTable(t, s.base, tn.APIKey)

	finish := make(chan struct{})
	var bodies []*trickle
	var results []<-chan upload
	for range 4 {
		tr, r := startTrickle(finish, 50*time.Millisecond)
		bodies = append(bodies, tr)
		results = append(results, importAsync(s.base, tn.APIKey, table, r))
	}
	// All four are inside their transactions, reading their bodies.
	waitUntil(t, "four imports in flight", func() bool { return pg.busy(t, "dbchat_app") == 4 })

	s.stop()
	waitUntil(t, "the listener to refuse new connections", func() bool {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	for _, r := range results {
		select {
		case u := <-r:
			t.Fatalf("an import ended before its body did: %+v", u)
		default:
		}
	}
	close(finish) // the bodies end only now, after the signal and the refusal

	for i, r := range results {
		u := <-r
		require.NoError(t, u.err, "upload %d: the client saw its connection fail", i)
		require.Equal(t, http.StatusOK, u.status, u.body)
		require.JSONEq(t, fmt.Sprintf(`{"inserted":%d}`, bodies[i].sent()), u.body)
	}
	select {
	case code := <-s.done:
		require.Equal(t, 0, code, "stderr: %s", s.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not return after draining")
	}
	require.Contains(t, s.stderr.String(), "every request finished")
	require.Zero(t, pg.busy(t, "dbchat_app"))
}

// Past DBCHAT_SHUTDOWN_TIMEOUT the requests still running are cancelled: an
// upload that never ends and a sandboxed statement that would run for 30 s
// do not keep serve from exiting 0 soon after the deadline, and within a
// second of that no backend of either runtime role is still busy.
func TestServeCancelsWhatOutlivesTheShutdownTimeout(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	pg := watchBackends(t, d)
	tn := dbtest.NewTenant(t, tenant.New(d.AppPool(t, 2)), "Late")
	s := startServe(t, map[string]string{
		"DATABASE_URL":              d.AppURL,
		"DBCHAT_QUERY_DATABASE_URL": d.QueryURL,
		"DBCHAT_SHUTDOWN_TIMEOUT":   "1s",
		"DBCHAT_LLM":                "offline",
	})
	table := createUploadsTable(t, s.base, tn.APIKey)

	never := make(chan struct{}) // the upload's body never ends
	_, r := startTrickle(never, 100*time.Millisecond)
	pending := importAsync(s.base, tn.APIKey, table, r)
	const marker = "zz_shutdown_marker"
	sqlDone := make(chan upload, 1)
	go func() {
		b, _ := json.Marshal(map[string]any{
			"sql":        longStatement(marker),
			"timeout_ms": 30000,
		})
		req, _ := http.NewRequest(http.MethodPost, s.base+"/v1/sql", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tn.APIKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
		if err != nil {
			sqlDone <- upload{err: err}
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		sqlDone <- upload{status: resp.StatusCode, body: string(body), err: err}
	}()
	waitUntil(t, "the import and the statement in flight", func() bool {
		return pg.busy(t, "dbchat_app") == 1 && pg.busy(t, "dbchat_query") == 1
	})

	s.stop()
	select {
	case code := <-s.done:
		require.Equal(t, 0, code, "stderr: %s", s.stderr.String())
	case <-time.After(20 * time.Second): // the deadline is 1 s: generous
		t.Fatalf("serve did not return after its shutdown deadline; stderr: %s", s.stderr.String())
	}
	require.Contains(t, s.stderr.String(), "shutdown deadline passed")
	// The cancelled statement was answered, not cut.
	u := <-sqlDone
	require.NoError(t, u.err)
	require.Equal(t, http.StatusServiceUnavailable, u.status, u.body+"\n"+s.stderr.String())
	// Nothing keeps running in the database on serve's behalf.
	require.Eventually(t, func() bool {
		return pg.busy(t, "dbchat_app") == 0 && pg.busy(t, "dbchat_query") == 0
	}, time.Second, 20*time.Millisecond, "a backend outlived serve")
	<-pending
}
