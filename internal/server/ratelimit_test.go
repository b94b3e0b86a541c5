package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/limits"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// limitsEnv is one database behind several dbchat instances: each its own
// runtime pool, tenant.DB, limits.Service, sandbox and httptest server, as
// several `dbchat serve` processes would be.
type limitsEnv struct {
	d    *dbtest.DB
	db   *tenant.DB // the first instance's
	urls []string
}

func newLimitsEnv(t *testing.T, instances int, defaults limits.Limits) *limitsEnv {
	t.Helper()
	e := &limitsEnv{d: dbtest.New(t)}
	for range instances {
		db := tenant.New(e.d.AppPool(t, 4))
		box, err := tenant.NewSandbox(context.Background(), e.d.QueryURL, 2)
		require.NoError(t, err)
		t.Cleanup(box.Close)
		sql := sandbox.New(db, box)
		asker := ask.New(db, sql, &nlsql.Store{DB: db, Embedder: embed.NewLocal()}, tokenGenerator{generate.NewOffline()})
		srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{
			AdminToken: operatorToken, SQL: sql, Ask: asker, Limits: limits.New(db, defaults)}))
		t.Cleanup(srv.Close)
		if e.db == nil {
			e.db = db
		}
		e.urls = append(e.urls, srv.URL)
	}
	return e
}

// answer is one response: status, headers and body.
type answer struct {
	status int
	header http.Header
	body   string
}

// call sends method path to instance i as key (the operator token for
// /v1/tenants), with a body of contentType when body is not empty.
func (e *limitsEnv) call(t *testing.T, i int, method, path, key, contentType, body string) answer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.urls[i]+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(out)}
}

// setLimits PATCHes a tenant's limits as the operator and returns the
// tenant as answered.
func (e *limitsEnv) setLimits(t *testing.T, tn dbtest.Tenant, lim string) tenantLimits {
	t.Helper()
	a := e.call(t, 0, http.MethodPatch, "/v1/tenants/"+tn.ID.String(), operatorToken, "application/json", `{"limits":`+lim+`}`)
	require.Equal(t, http.StatusOK, a.status, a.body)
	var out tenantLimits
	require.NoError(t, json.Unmarshal([]byte(a.body), &out))
	return out
}

type tenantLimits struct {
	Limits    map[string]*float64 `json:"limits"`
	LimitsSet map[string]*float64 `json:"limits_set"`
}

// quotaError is the body of a 403 quota_exceeded.
type quotaError struct {
	Error struct {
		Code    string `json:"code"`
		Details struct {
			Quota string `json:"quota"`
			Limit int64  `json:"limit"`
			Used  int64  `json:"used"`
		} `json:"details"`
	} `json:"error"`
}

func requireQuota(t *testing.T, a answer, quota string, limit, used int64) {
	t.Helper()
	require.Equal(t, http.StatusForbidden, a.status, a.body)
	var q quotaError
	require.NoError(t, json.Unmarshal([]byte(a.body), &q), a.body)
	require.Equal(t, "quota_exceeded", q.Error.Code, a.body)
	require.Equal(t, quota, q.Error.Details.Quota, a.body)
	require.Equal(t, limit, q.Error.Details.Limit, a.body)
	if used >= 0 {
		require.Equal(t, used, q.Error.Details.Used, a.body)
	}
}

func header(t *testing.T, a answer, name string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(a.header.Get(name), 10, 64)
	require.NoError(t, err, "%s: %q", name, a.header.Get(name))
	return n
}

// A tenant's bucket is one row in PostgreSQL: its burst is spent across
// both instances, by API keys (whose lookup takes the token) and identity
// provider tokens (the guard takes it) alike, after which either answers
// 429 with Retry-After and the RateLimit-* headers, while another tenant's
// requests go on.
func TestRateLimitAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newLimitsEnv(t, 2, nil)
	a := dbtest.NewTenant(t, e.db, "Flooder")
	b := dbtest.NewTenant(t, e.db, "Quiet")
	idp := newTestIdP(t, "https://idp-limits.example")
	r := e.call(t, 0, http.MethodPost, "/v1/identity-providers", a.APIKey, "application/json",
		fmt.Sprintf(`{"issuer":%q,"audience":"dbchat","jwks":%s}`, idp.issuer, idp.jwks()))
	require.Equal(t, http.StatusCreated, r.status, r.body)
	jwt := idp.token(t, "ec-1", "alice", nil)
	// One token per 1000 s: nothing refills within the test.
	e.setLimits(t, a, `{"requests_per_second":0.001,"burst":3}`)
	e.setLimits(t, b, `{"requests_per_second":0.001,"burst":1000}`)

	for i, inst := range []int{0, 1, 0} {
		r := e.call(t, inst, http.MethodGet, "/v1/me", []string{a.APIKey, jwt, a.APIKey}[i], "", "")
		require.Equal(t, http.StatusOK, r.status, r.body)
		require.Equal(t, int64(3), header(t, r, "RateLimit-Limit"))
		require.Equal(t, int64(2-i), header(t, r, "RateLimit-Remaining"))
		require.Positive(t, header(t, r, "RateLimit-Reset"))
		// The other tenant, at the same time, on either instance.
		q := e.call(t, 1-inst, http.MethodGet, "/v1/me", b.APIKey, "", "")
		require.Equal(t, http.StatusOK, q.status, q.body)
	}
	for i, inst := range []int{1, 0, 1} {
		r := e.call(t, inst, http.MethodGet, "/v1/tables", []string{a.APIKey, a.APIKey, jwt}[i], "", "")
		requireErrorShape(t, r.status, r.body, http.StatusTooManyRequests, "rate_limited", "")
		require.Equal(t, int64(3), header(t, r, "RateLimit-Limit"))
		require.Equal(t, int64(0), header(t, r, "RateLimit-Remaining"))
		// A token every 1000 s: the next comes in at most 1000 s.
		retry := header(t, r, "Retry-After")
		require.True(t, retry >= 1 && retry <= 1000, "Retry-After %d", retry)
	}
	q := e.call(t, 1, http.MethodGet, "/v1/me", b.APIKey, "", "")
	require.Equal(t, http.StatusOK, q.status, q.body)
	require.Equal(t, int64(1000-4), header(t, q, "RateLimit-Remaining"))

	// A forged key naming the flooded tenant takes nothing: 401 first.
	r = e.call(t, 0, http.MethodGet, "/v1/me", "dbc_"+strings.ReplaceAll(b.ID.String(), "-", "")+"_"+strings.Repeat("A", 43), "", "")
	require.Equal(t, http.StatusUnauthorized, r.status, r.body)
	q = e.call(t, 0, http.MethodGet, "/v1/me", b.APIKey, "", "")
	require.Equal(t, int64(1000-5), header(t, q, "RateLimit-Remaining"))

	// The operator lifts the limit: the next request goes through, without
	// RateLimit headers.
	e.setLimits(t, a, `{"requests_per_second":null}`)
	r = e.call(t, 1, http.MethodGet, "/v1/me", a.APIKey, "", "")
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Empty(t, r.header.Get("RateLimit-Limit"))
}

// Configured defaults apply to tenants without a value of their own; an
// explicit null is unlimited whatever the default, and "default" goes back
// to it. GET /v1/tenant and GET /v1/tenants show both views.
func TestLimitsDefaultsAndNull(t *testing.T) {
	t.Parallel()
	rate, burst, day := 0.001, 1.0, 5.0
	e := newLimitsEnv(t, 1, limits.Limits{limits.RequestsPerSecond: &rate, limits.Burst: &burst, limits.QuestionsPerDay: &day})
	a := dbtest.NewTenant(t, e.db, "Defaulted")
	b := dbtest.NewTenant(t, e.db, "Unlimited")
	got := e.setLimits(t, b, `{"requests_per_second":null,"storage_bytes":1000000}`)
	require.Equal(t, map[string]*float64{"requests_per_second": nil, "storage_bytes": ptr(1e6)}, got.LimitsSet)
	require.Nil(t, got.Limits["requests_per_second"])
	require.Equal(t, ptr(1.0), got.Limits["burst"])
	require.Equal(t, ptr(5.0), got.Limits["questions_per_day"])
	require.Equal(t, ptr(1e6), got.Limits["storage_bytes"])
	require.Contains(t, got.Limits, "training_rows")
	require.Nil(t, got.Limits["training_rows"])

	// a takes the default rate: one request, then 429.
	r := e.call(t, 0, http.MethodGet, "/v1/tenant", a.APIKey, "", "")
	require.Equal(t, http.StatusOK, r.status, r.body)
	var own tenantLimits
	require.NoError(t, json.Unmarshal([]byte(r.body), &own))
	require.Equal(t, ptr(0.001), own.Limits["requests_per_second"])
	require.Empty(t, own.LimitsSet)
	r = e.call(t, 0, http.MethodGet, "/v1/tenant", a.APIKey, "", "")
	require.Equal(t, http.StatusTooManyRequests, r.status, r.body)

	// b's null is unlimited: no bucket, no headers.
	for range 5 {
		r = e.call(t, 0, http.MethodGet, "/v1/me", b.APIKey, "", "")
		require.Equal(t, http.StatusOK, r.status, r.body)
		require.Empty(t, r.header.Get("RateLimit-Limit"))
	}
	// "default" unsets: b takes the default rate again (one token, spent).
	got = e.setLimits(t, b, `{"requests_per_second":"default"}`)
	require.Equal(t, map[string]*float64{"storage_bytes": ptr(1e6)}, got.LimitsSet)
	require.Equal(t, http.StatusOK, e.call(t, 0, http.MethodGet, "/v1/me", b.APIKey, "", "").status)
	require.Equal(t, http.StatusTooManyRequests, e.call(t, 0, http.MethodGet, "/v1/me", b.APIKey, "", "").status)

	// The operator's list shows every tenant's limits.
	r = e.call(t, 0, http.MethodGet, "/v1/tenants", operatorToken, "", "")
	require.Equal(t, http.StatusOK, r.status, r.body)
	var list struct {
		Tenants []tenantLimits `json:"tenants"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &list))
	require.Len(t, list.Tenants, 2)
	require.Equal(t, ptr(1e6), list.Tenants[1].Limits["storage_bytes"])
}

func ptr(f float64) *float64 { return &f }

// Wrong limits are 400 invalid naming the field, and change nothing.
func TestPatchLimitsValidation(t *testing.T) {
	t.Parallel()
	e := newLimitsEnv(t, 1, nil)
	a := dbtest.NewTenant(t, e.db, "Validated")
	e.setLimits(t, a, `{"burst":7}`)
	for body, field := range map[string]string{
		`{"limits":{"burst":"many"}}`:                 "limits.burst",
		`{"limits":{"burst":0}}`:                      "limits.burst",
		`{"limits":{"burst":1.5}}`:                    "limits.burst",
		`{"limits":{"storage_bytes":-1}}`:             "limits.storage_bytes",
		`{"limits":{"rows_per_import":true}}`:         "limits.rows_per_import",
		`{"limits":{"training_rows":[1]}}`:            "limits.training_rows",
		`{"limits":{"requests_per_second":0}}`:        "limits.requests_per_second",
		`{"limits":{"questions_per_day":1e300}}`:      "limits.questions_per_day",
		`{"limits":{"llm_tokens_per_month":{"a":1}}}`: "limits.llm_tokens_per_month",
		`{"limits":{"tokens":5}}`:                     "limits.tokens",
		`{"limits":[1,2]}`:                            "limits",
		`{"limits":null}`:                             "limits",
		`{"limits":"none"}`:                           "limits",
	} {
		r := e.call(t, 0, http.MethodPatch, "/v1/tenants/"+a.ID.String(), operatorToken, "application/json", body)
		requireErrorShape(t, r.status, r.body, http.StatusBadRequest, "invalid", field)
	}
	r := e.call(t, 0, http.MethodGet, "/v1/tenant", a.APIKey, "", "")
	var own tenantLimits
	require.NoError(t, json.Unmarshal([]byte(r.body), &own))
	require.Equal(t, map[string]*float64{"burst": ptr(7)}, own.LimitsSet)
}

// questions_per_day counts /v1/ask and conversation turns of both
// instances against one counter; the question over it is refused before any
// work, naming the quota. A month's LLM tokens spent refuse questions too.
// (Every question here reports 40 LLM tokens, see tokenGenerator.)
func TestQuestionQuotasAcrossInstances(t *testing.T) {
	t.Parallel()
	e := newLimitsEnv(t, 2, nil)
	a := dbtest.NewTenant(t, e.db, "Asker")
	b := dbtest.NewTenant(t, e.db, "Other")
	e.setLimits(t, a, `{"questions_per_day":3}`)
	e.setLimits(t, b, `{"questions_per_day":3}`)
	q := `{"question":"How many tables are there?"}`
	for _, inst := range []int{0, 1} {
		r := e.call(t, inst, http.MethodPost, "/v1/ask", a.APIKey, "application/json", q)
		require.NotEqual(t, http.StatusForbidden, r.status, r.body) // answered or refused (422), but counted
	}
	r := e.call(t, 1, http.MethodPost, "/v1/conversations", a.APIKey, "application/json", `{"title":"t"}`)
	require.Equal(t, http.StatusCreated, r.status, r.body)
	var conv struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &conv))
	r = e.call(t, 0, http.MethodPost, "/v1/conversations/"+conv.ID+"/messages", a.APIKey, "application/json", q)
	require.NotEqual(t, http.StatusForbidden, r.status, r.body) // the third question
	requireQuota(t, e.call(t, 1, http.MethodPost, "/v1/conversations/"+conv.ID+"/messages", a.APIKey, "application/json", q),
		limits.QuestionsPerDay, 3, 3)
	requireQuota(t, e.call(t, 0, http.MethodPost, "/v1/ask", a.APIKey, "application/json", q), limits.QuestionsPerDay, 3, 3)
	// A bad question is a 400, not a counted one.
	r = e.call(t, 0, http.MethodPost, "/v1/ask", b.APIKey, "application/json", `{"question":""}`)
	requireErrorShape(t, r.status, r.body, http.StatusBadRequest, "invalid", "question")
	// The other tenant's day is its own.
	r = e.call(t, 1, http.MethodPost, "/v1/ask", b.APIKey, "application/json", q)
	require.NotEqual(t, http.StatusForbidden, r.status, r.body)

	// LLM tokens: what the generator reports (40 a question here, b has
	// asked once) counts on both instances; once the month's use reaches
	// the limit, the next question is refused.
	e.setLimits(t, b, `{"questions_per_day":null,"llm_tokens_per_month":100}`)
	for _, inst := range []int{0, 1} { // 80, then 120: each asked under 100
		r = e.call(t, inst, http.MethodPost, "/v1/ask", b.APIKey, "application/json", q)
		require.NotEqual(t, http.StatusForbidden, r.status, r.body)
	}
	requireQuota(t, e.call(t, 0, http.MethodPost, "/v1/ask", b.APIKey, "application/json", q), limits.LLMTokensPerMonth, 100, 120)
}

// tokenGenerator is the offline generator reporting LLM usage, as an LLM
// generator does.
type tokenGenerator struct{ generate.Generator }

func (g tokenGenerator) Generate(ctx context.Context, in generate.Input) (generate.Output, error) {
	out, err := g.Generator.Generate(ctx, in)
	out.Usage = generate.Usage{Calls: 1, TokensIn: 30, TokensOut: 10}
	return out, err
}

// Imports over rows_per_import or storage_bytes import nothing: the
// quota is checked in the import's transaction after the rows are in, and
// its error rolls them back.
func TestImportQuotas(t *testing.T) {
	t.Parallel()
	e := newLimitsEnv(t, 1, nil)
	a := dbtest.NewTenant(t, e.db, "Importer")
	r := e.call(t, 0, http.MethodPost, "/v1/tables", a.APIKey, "application/json",
		`{"name":"items","columns":[{"name":"id","type":"bigint","nullable":false},{"name":"note","type":"text"}]}`)
	require.Equal(t, http.StatusCreated, r.status, r.body)
	var tbl struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &tbl))
	count := func() (n int64) {
		require.NoError(t, e.d.AdminPool(t).QueryRow(t.Context(), `SELECT count(*) FROM `+tenant.Schema(a.ID)+`.items`).Scan(&n))
		return n
	}
	csv := func(from, to int) string {
		var b strings.Builder
		b.WriteString("id,note\n")
		for i := from; i <= to; i++ {
			b.WriteString(strconv.Itoa(i) + "," + strings.Repeat("x", 200) + "\n")
		}
		return b.String()
	}
	rows := "/v1/tables/" + tbl.ID + "/rows"
	e.setLimits(t, a, `{"rows_per_import":2}`)
	require.Equal(t, http.StatusOK, e.call(t, 0, http.MethodPost, rows, a.APIKey, "text/csv", csv(1, 2)).status)
	requireQuota(t, e.call(t, 0, http.MethodPost, rows, a.APIKey, "text/csv", csv(3, 5)), limits.RowsPerImport, 2, 3)
	require.Equal(t, int64(2), count())

	e.setLimits(t, a, `{"rows_per_import":null,"storage_bytes":1}`)
	requireQuota(t, e.call(t, 0, http.MethodPost, rows, a.APIKey, "text/csv", csv(3, 2000)), limits.StorageBytes, 1, -1)
	require.Equal(t, int64(2), count())

	e.setLimits(t, a, `{"storage_bytes":100000000}`)
	r = e.call(t, 0, http.MethodPost, rows, a.APIKey, "text/csv", csv(3, 2000))
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, int64(2000), count())
}

// training_rows caps a tenant's training data over every write path; the
// write that would pass it adds nothing.
func TestTrainingRowsQuota(t *testing.T) {
	t.Parallel()
	e := newLimitsEnv(t, 1, nil)
	a := dbtest.NewTenant(t, e.db, "Trainer")
	e.setLimits(t, a, `{"training_rows":1}`)
	add := func(doc string) answer {
		return e.call(t, 0, http.MethodPost, "/v1/models/default/training-data", a.APIKey, "application/json",
			`{"kind":"documentation","content":"`+doc+`"}`)
	}
	r := add("Amounts are in EUR.")
	require.Equal(t, http.StatusCreated, r.status, r.body)
	requireQuota(t, add("Dates are UTC."), limits.TrainingRows, 1, 2)
	r = e.call(t, 0, http.MethodGet, "/v1/models/default/training-data", a.APIKey, "", "")
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.NotContains(t, r.body, "Dates are UTC.")
	require.Contains(t, r.body, "Amounts are in EUR.")
}
