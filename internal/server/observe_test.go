package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// obsBuffer is a goroutine-safe log sink.
type obsBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *obsBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *obsBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// obsEnv is a server called in-process (ServeHTTP returns only after the
// request's log line and metrics are written), logging JSON to a buffer.
type obsEnv struct {
	srv  *server.Server
	db   *tenant.DB
	logs *obsBuffer
}

func newObsEnv(t *testing.T) *obsEnv {
	t.Helper()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	logs := &obsBuffer{}
	srv := server.New(db, slog.New(slog.NewJSONHandler(logs, nil)), server.Config{AdminToken: operatorToken})
	return &obsEnv{srv: srv, db: db, logs: logs}
}

// do serves one request; headers are name, value pairs.
func (o *obsEnv) do(t *testing.T, method, target, body string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequestWithContext(t.Context(), method, target, r)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	o.srv.ServeHTTP(rec, req)
	return rec
}

// obsSample returns the value of the sample line "name{labels}" in a
// Prometheus text exposition, and whether it is there.
func obsSample(exposition, series string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(exposition))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), series+" ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
		return v, err == nil
	}
	return 0, false
}

func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	o := newObsEnv(t)
	a := dbtest.NewTenant(t, o.db, "Metrics")
	auth := "Bearer " + a.APIKey

	for range 2 {
		require.Equal(t, http.StatusOK, o.do(t, "GET", "/v1/me", "", "Authorization", auth).Code)
	}
	require.Equal(t, http.StatusUnauthorized, o.do(t, "GET", "/v1/me", "").Code)
	require.Equal(t, http.StatusOK, o.do(t, "GET", "/healthz", "").Code)
	require.Equal(t, http.StatusNotFound, o.do(t, "GET", "/no/such/route", "").Code)
	unknown := uuid.NewString()
	require.Equal(t, http.StatusNotFound, o.do(t, "GET", "/v1/tables/"+unknown, "", "Authorization", auth).Code)

	rec := o.do(t, "GET", "/metrics", "", "Authorization", "Bearer "+operatorToken)
	require.Equal(t, http.StatusOK, rec.Code)
	require.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain"), rec.Header().Get("Content-Type"))
	text := rec.Body.String()

	for series, want := range map[string]float64{
		`dbchat_http_requests_total{method="GET",route="/v1/me",status="200"}`:               2,
		`dbchat_http_requests_total{method="GET",route="/v1/me",status="401"}`:               1,
		`dbchat_http_requests_total{method="GET",route="/healthz",status="200"}`:             1,
		`dbchat_http_requests_total{method="GET",route="unmatched",status="404"}`:            1,
		`dbchat_http_requests_total{method="GET",route="/v1/tables/:id",status="404"}`:       1,
		`dbchat_http_request_duration_seconds_count{method="GET",route="/v1/me"}`:            3,
		`dbchat_http_request_duration_seconds_bucket{method="GET",route="/v1/me",le="+Inf"}`: 3,
		`dbchat_db_pool_connections{state="max"}`:                                            4,
	} {
		got, ok := obsSample(text, series)
		require.True(t, ok, "missing %s in:\n%s", series, text)
		require.Equal(t, want, got, series)
	}
	for _, series := range []string{
		`dbchat_db_pool_connections{state="idle"}`,
		`dbchat_db_pool_connections{state="acquired"}`,
		`dbchat_db_pool_acquires_total`,
		`dbchat_http_request_duration_seconds_sum{method="GET",route="/v1/me"}`,
	} {
		_, ok := obsSample(text, series)
		require.True(t, ok, "missing %s", series)
	}
	require.Contains(t, text, "# TYPE dbchat_http_requests_total counter")
	require.Contains(t, text, "# TYPE dbchat_http_request_duration_seconds histogram")
	require.Contains(t, text, "# TYPE dbchat_db_pool_connections gauge")

	// Routes are labelled by template: ids and unmatched paths never become
	// label values (unbounded cardinality), and keys never appear.
	require.NotContains(t, text, unknown)
	require.NotContains(t, text, "/no/such/route")
	require.NotContains(t, text, "dbc_")
}

// Metrics reveal pool sizes, heap and traffic by route: on the API's address
// they are the operator's, over real HTTP; MetricsHandler (served on
// DBCHAT_METRICS_ADDR) answers without a token.
func TestMetricsNeedTheOperatorToken(t *testing.T) {
	t.Parallel()
	o := newObsEnv(t)
	a := dbtest.NewTenant(t, o.db, "Metrics Token")
	api := httptest.NewServer(o.srv)
	t.Cleanup(api.Close)

	const badToken = `{"error":{"code":"unauthorized","message":"missing or invalid operator token"}}`
	for name, authz := range map[string]string{
		"no token":       "",
		"wrong token":    "Bearer " + operatorToken + "x",
		"tenant API key": "Bearer " + a.APIKey,
		"not bearer":     "Basic " + operatorToken,
	} {
		status, body := getAuth(t, api.URL+"/metrics", authz)
		require.Equal(t, http.StatusUnauthorized, status, "%s: %s", name, body)
		require.Equal(t, badToken, body, name)
		require.NotContains(t, body, "dbchat_db_pool", name)
	}

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, api.URL+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	text, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(text))
	got, ok := obsSample(string(text), `dbchat_http_requests_total{method="GET",route="/metrics",status="401"}`)
	require.True(t, ok, "the refused scrapes are counted:\n%s", text)
	require.Equal(t, 4.0, got)
	require.Contains(t, string(text), "dbchat_db_pool_connections")
	require.Contains(t, string(text), "go_memstats_heap_alloc_bytes")

	// The separate listener's handler needs no token.
	scrape := httptest.NewServer(o.srv.MetricsHandler())
	t.Cleanup(scrape.Close)
	resp, err = http.Get(scrape.URL + "/metrics")
	require.NoError(t, err)
	text, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(text))
	require.Contains(t, string(text), "dbchat_db_pool_connections")

	// No operator token configured: /metrics does not exist on the API.
	disabled := httptest.NewServer(server.New(o.db, slog.New(slog.DiscardHandler), server.Config{}))
	t.Cleanup(disabled.Close)
	status, body := getAuth(t, disabled.URL+"/metrics", "")
	require.Equal(t, http.StatusNotFound, status, body)
	require.Contains(t, body, `"code":"not_found"`)
}

// obsLine is one request log line.
type obsLine map[string]any

func (o *obsEnv) lines(t *testing.T) []obsLine {
	t.Helper()
	var out []obsLine
	for _, l := range strings.Split(strings.TrimSpace(o.logs.String()), "\n") {
		if l == "" {
			continue
		}
		var m obsLine
		require.NoError(t, json.Unmarshal([]byte(l), &m), "every log line is JSON: %s", l)
		if m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

func TestRequestLogs(t *testing.T) {
	t.Parallel()
	o := newObsEnv(t)
	a := dbtest.NewTenant(t, o.db, "Logged")
	auth := "Bearer " + a.APIKey
	// A well-formed key of A's tenant that was never issued.
	forged := a.APIKey[:len(a.APIKey)-4] + "AAAA"
	if forged == a.APIKey {
		forged = a.APIKey[:len(a.APIKey)-4] + "BBBB"
	}

	type want struct {
		requestID string // "" = generated
		method    string
		route     string
		status    int
		authed    bool
	}
	hexID := regexp.MustCompile(`^[0-9a-f]{16}$`)
	cases := []struct {
		method, target, body string
		headers              []string
		want                 want
	}{
		{"GET", "/v1/me", "", []string{"Authorization", auth, "X-Request-Id", "req-me-1"},
			want{"req-me-1", "GET", "/v1/me", 200, true}},
		{"GET", "/healthz", "", nil, want{"", "GET", "/healthz", 200, false}},
		// The key in the query string too: logs carry the route template only.
		{"GET", "/v1/tables?api_key=" + a.APIKey, "", []string{"Authorization", auth, "X-Request-Id", "req-tables"},
			want{"req-tables", "GET", "/v1/tables", 200, true}},
		{"GET", "/v1/history/" + uuid.NewString(), "", []string{"Authorization", auth},
			want{"", "GET", "/v1/history/:id", 404, true}},
		{"GET", "/v1/me", "", []string{"Authorization", "Bearer " + forged, "X-Request-Id", "req-forged"},
			want{"req-forged", "GET", "/v1/me", 401, false}},
		// The key in a body: bodies are never logged.
		{"POST", "/v1/tables", `{"name":"` + a.APIKey + `","columns":[]}`,
			[]string{"Authorization", auth, "Content-Type", "application/json"},
			want{"", "POST", "/v1/tables", 400, true}},
		{"GET", "/nowhere", "", []string{"X-Request-Id", strings.Repeat("x", 65)},
			want{"", "GET", "unmatched", 404, false}},
	}

	var gotIDs []string
	for _, tc := range cases {
		rec := o.do(t, tc.method, tc.target, tc.body, tc.headers...)
		require.Equal(t, tc.want.status, rec.Code, "%s %s: %s", tc.method, tc.target, rec.Body)
		rid := rec.Header().Get("X-Request-Id")
		if tc.want.requestID != "" {
			require.Equal(t, tc.want.requestID, rid, "the caller's X-Request-Id is echoed")
		} else {
			require.Regexp(t, hexID, rid, "a generated id when none (or an overlong one) was sent")
		}
		gotIDs = append(gotIDs, rid)
	}

	lines := o.lines(t)
	require.Len(t, lines, len(cases), "one line per request:\n%s", o.logs)
	for i, tc := range cases {
		l := lines[i]
		w := tc.want
		require.Equal(t, gotIDs[i], l["request_id"], "line %d: %v", i, l)
		require.Equal(t, w.method, l["method"], i)
		require.Equal(t, w.route, l["route"], i)
		require.Equal(t, float64(w.status), l["status"], i)
		require.Equal(t, "INFO", l["level"], i)
		latency, ok := l["latency_ms"].(float64)
		require.True(t, ok, "line %d: latency_ms is a number: %v", i, l)
		require.GreaterOrEqual(t, latency, 0.0)
		if w.authed {
			require.Equal(t, a.ID.String(), l["tenant_id"], i)
			require.Equal(t, a.AdminID.String(), l["user_id"], i)
		} else {
			require.NotContains(t, l, "tenant_id", i)
			require.NotContains(t, l, "user_id", i)
		}
	}

	out := o.logs.String()
	require.NotContains(t, out, a.APIKey)
	require.NotContains(t, out, forged)
	require.NotContains(t, out, a.APIKey[len(a.APIKey)-43:], "not even the key's secret part")
	require.NotContains(t, out, "dbc_")
}
