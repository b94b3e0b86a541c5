package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/server/apiclient"
	"github.com/dbchat/dbchat/internal/tenant"
)

// histItem and histPage are GET /v1/history's types as the generated
// client reads them: the tests check the wire against the OpenAPI document.
type (
	histItem = apiclient.HistoryItem
	histPage = apiclient.HistoryPage
)

// histUser is a tenant user with a key of its own.
type histUser struct {
	id  tenant.Identity
	key string
}

// histNewMember creates a member of tn and mints it an API key.
func histNewMember(t *testing.T, db *tenant.DB, tn dbtest.Tenant, email string) histUser {
	t.Helper()
	ctx := context.Background()
	q := dbsqlc.New()
	var u histUser
	err := db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		row, err := q.CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: email, Name: email, Role: string(tenant.Member)})
		if err != nil {
			return err
		}
		k, err := auth.Generate(tn.ID)
		if err != nil {
			return err
		}
		if _, err := q.CreateAPIKey(ctx, tx, dbsqlc.CreateAPIKeyParams{UserID: row.ID, Name: "test", Prefix: k.Prefix, KeyHash: k.Hash}); err != nil {
			return err
		}
		u = histUser{id: tenant.Identity{TenantID: tn.ID, UserID: row.ID, Role: tenant.Member}, key: k.Plain}
		return nil
	})
	require.NoError(t, err)
	return u
}

// histInsert writes n history entries as id in one transaction, so they share
// one created_at (the transaction's now()); questions are prefix-0, prefix-1…
func histInsert(t *testing.T, db *tenant.DB, id tenant.Identity, n int, prefix string, p dbsqlc.CreateQueryHistoryParams) []dbsqlc.QueryHistory {
	t.Helper()
	ctx := context.Background()
	q := dbsqlc.New()
	var rows []dbsqlc.QueryHistory
	err := db.TxAs(ctx, id, func(tx tenant.Conn) error {
		for i := range n {
			p := p
			question := fmt.Sprintf("%s-%d", prefix, i)
			p.Question = &question
			row, err := q.CreateQueryHistory(ctx, tx, p)
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		return nil
	})
	require.NoError(t, err)
	return rows
}

// histModel returns the id of tn's model named name, creating it if need be.
func histModel(t *testing.T, db *tenant.DB, tn dbtest.Tenant, name string) uuid.UUID {
	t.Helper()
	ctx := context.Background()
	q := dbsqlc.New()
	var id uuid.UUID
	err := db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		m, err := q.GetModelByName(ctx, tx, name)
		if err == nil {
			id = m.ID
			return nil
		}
		m, err = q.CreateModel(ctx, tx, dbsqlc.CreateModelParams{Name: name})
		id = m.ID
		return err
	})
	require.NoError(t, err)
	return id
}

// histList performs GET /v1/history?query and decodes the page.
func (e *env) histList(t *testing.T, key string, query url.Values) histPage {
	t.Helper()
	status, body := e.get(t, "/v1/history?"+query.Encode(), key)
	require.Equal(t, http.StatusOK, status, body)
	var page histPage
	require.NoError(t, json.Unmarshal([]byte(body), &page), body)
	require.NotNil(t, page.Items, "items is an array, never null: %s", body)
	return page
}

// histWalk follows next_cursor from the first page to the last and returns
// every page's items.
func (e *env) histWalk(t *testing.T, key string, query url.Values) [][]histItem {
	t.Helper()
	var pages [][]histItem
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	for {
		page := e.histList(t, key, q)
		pages = append(pages, page.Items)
		if page.NextCursor == nil {
			return pages
		}
		require.NotEmpty(t, *page.NextCursor)
		require.Less(t, len(pages), 100, "runaway pagination")
		q.Set("cursor", *page.NextCursor)
	}
}

func histIDs[T any](items []T, id func(T) uuid.UUID) []uuid.UUID {
	ids := make([]uuid.UUID, len(items))
	for i, it := range items {
		ids[i] = id(it)
	}
	return ids
}

func histItemID(it histItem) uuid.UUID          { return it.Id }
func histRowID(r dbsqlc.QueryHistory) uuid.UUID { return r.ID }

// histNewestFirst sorts rows the way the API must return them.
func histNewestFirst(rows []dbsqlc.QueryHistory) []dbsqlc.QueryHistory {
	out := slices.Clone(rows)
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return bytes.Compare(out[i].ID[:], out[j].ID[:]) > 0
	})
	return out
}

func histFilter(rows []dbsqlc.QueryHistory, keep func(dbsqlc.QueryHistory) bool) []dbsqlc.QueryHistory {
	var out []dbsqlc.QueryHistory
	for _, r := range rows {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func TestHistoryPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "History Pages")
	b := dbtest.NewTenant(t, e.db, "History Other")

	// 120 entries in four transactions: four distinct created_at values with
	// 30 ties each, so the keyset's id tie-breaker is exercised across pages.
	var rows []dbsqlc.QueryHistory
	for batch := range 4 {
		rows = append(rows, histInsert(t, e.db, a.Identity, 30, fmt.Sprintf("a%d", batch), dbsqlc.CreateQueryHistoryParams{Status: "success"})...)
	}
	histInsert(t, e.db, b.Identity, 5, "b", dbsqlc.CreateQueryHistoryParams{Status: "success"})
	want := histIDs(histNewestFirst(rows), histRowID)

	for _, tc := range []struct {
		limit string
		sizes []int
	}{
		{"50", []int{50, 50, 20}},
		{"60", []int{60, 60}}, // an exact multiple: the last full page says there is no more
		{"7", []int{7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 1}},
		{"200", []int{120}},
		{"", []int{50, 50, 20}}, // default 50
	} {
		t.Run("limit="+tc.limit, func(t *testing.T) {
			q := url.Values{}
			if tc.limit != "" {
				q.Set("limit", tc.limit)
			}
			pages := e.histWalk(t, a.APIKey, q)
			var got []uuid.UUID
			var sizes []int
			for _, p := range pages {
				sizes = append(sizes, len(p))
				got = append(got, histIDs(p, histItemID)...)
			}
			require.Equal(t, tc.sizes, sizes)
			// Same order as (created_at DESC, id DESC): no duplicates, no gaps,
			// nothing of tenant B.
			require.Equal(t, want, got)
		})
	}

	// A cursor is positional only: it carries no tenant, so B replaying A's
	// cursor pages through B's own entries.
	first := e.histList(t, a.APIKey, url.Values{"limit": {"1"}})
	require.NotNil(t, first.NextCursor)
	bPage := e.histList(t, b.APIKey, url.Values{"cursor": {*first.NextCursor}})
	for _, it := range bPage.Items {
		require.NotContains(t, want, it.Id)
	}

	// A tenant without history gets an empty array, not null.
	c := dbtest.NewTenant(t, e.db, "History Empty")
	status, body := e.get(t, "/v1/history", c.APIKey)
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"items":[],"next_cursor":null}`, body)
}

func TestHistoryFiltersAndVisibility(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "History Filters")
	m1 := histNewMember(t, e.db, a, "m1@example.com")
	m2 := histNewMember(t, e.db, a, "m2@example.com")
	def := histModel(t, e.db, a, "default")
	other := histModel(t, e.db, a, "other")

	sql, errText := "SELECT 1", "boom"
	rowCount, gen, exec := int64(1), 12.5, 3.25
	full := dbsqlc.CreateQueryHistoryParams{ModelID: &def, GeneratedSql: &sql, Status: "success",
		RowCount: &rowCount, GenerationMs: &gen, ExecutionMs: &exec}

	// Separate transactions, so batches have increasing created_at.
	var all []dbsqlc.QueryHistory
	adminRows := histInsert(t, e.db, a.Identity, 3, "admin", full)
	all = append(all, adminRows...)
	all = append(all, histInsert(t, e.db, m1.id, 2, "m1-error", dbsqlc.CreateQueryHistoryParams{ModelID: &other, Status: "error", Error: &errText})...)
	m1Pending := histInsert(t, e.db, m1.id, 1, "m1-pending", dbsqlc.CreateQueryHistoryParams{Status: "pending"})
	all = append(all, m1Pending...)
	m2Rows := histInsert(t, e.db, m2.id, 2, "m2", dbsqlc.CreateQueryHistoryParams{ModelID: &def, Status: "rejected"})
	all = append(all, m2Rows...)
	require.True(t, m2Rows[0].CreatedAt.After(m1Pending[0].CreatedAt), "batches must have distinct created_at")

	byUser := func(u uuid.UUID) func(dbsqlc.QueryHistory) bool {
		return func(r dbsqlc.QueryHistory) bool { return r.UserID != nil && *r.UserID == u }
	}
	wantIDs := func(keep func(dbsqlc.QueryHistory) bool) []uuid.UUID {
		return histIDs(histNewestFirst(histFilter(all, keep)), histRowID)
	}
	everything := func(dbsqlc.QueryHistory) bool { return true }
	walk := func(key string, q url.Values) []uuid.UUID {
		ids := []uuid.UUID{}
		for _, p := range e.histWalk(t, key, q) {
			ids = append(ids, histIDs(p, histItemID)...)
		}
		return ids
	}
	since := m2Rows[0].CreatedAt

	t.Run("admin", func(t *testing.T) {
		cases := []struct {
			name  string
			query url.Values
			keep  func(dbsqlc.QueryHistory) bool
		}{
			{"all", url.Values{}, everything},
			{"status", url.Values{"status": {"error"}}, func(r dbsqlc.QueryHistory) bool { return r.Status == "error" }},
			{"model", url.Values{"model": {"other"}}, func(r dbsqlc.QueryHistory) bool { return r.ModelID != nil && *r.ModelID == other }},
			{"model default", url.Values{"model": {"default"}}, func(r dbsqlc.QueryHistory) bool { return r.ModelID != nil && *r.ModelID == def }},
			{"unknown model", url.Values{"model": {"nope"}}, func(dbsqlc.QueryHistory) bool { return false }},
			{"user", url.Values{"user_id": {m1.id.UserID.String()}}, byUser(m1.id.UserID)},
			{"self", url.Values{"user_id": {a.AdminID.String()}}, byUser(a.AdminID)},
			{"user and status", url.Values{"user_id": {m1.id.UserID.String()}, "status": {"pending"}},
				func(r dbsqlc.QueryHistory) bool { return byUser(m1.id.UserID)(r) && r.Status == "pending" }},
			{"since", url.Values{"since": {since.UTC().Format(time.RFC3339Nano)}}, byUser(m2.id.UserID)},
			{"since with offset", url.Values{"since": {since.In(time.FixedZone("", 2*3600)).Format(time.RFC3339Nano)}}, byUser(m2.id.UserID)},
			{"since before all", url.Values{"since": {"2000-01-01T00:00:00Z"}}, everything},
			{"since after all", url.Values{"since": {"2999-01-01T00:00:00Z"}}, func(dbsqlc.QueryHistory) bool { return false }},
			{"paged filter", url.Values{"user_id": {m1.id.UserID.String()}, "limit": {"2"}}, byUser(m1.id.UserID)},
		}
		for _, tc := range cases {
			require.Equal(t, wantIDs(tc.keep), walk(a.APIKey, tc.query), tc.name)
		}
	})

	t.Run("member sees only its own", func(t *testing.T) {
		require.Equal(t, wantIDs(byUser(m1.id.UserID)), walk(m1.key, url.Values{}))
		require.Equal(t, wantIDs(byUser(m1.id.UserID)), walk(m1.key, url.Values{"user_id": {m1.id.UserID.String()}}))
		require.Equal(t, wantIDs(byUser(m1.id.UserID)), walk(m1.key, url.Values{"limit": {"1"}}))
		require.Equal(t, wantIDs(func(r dbsqlc.QueryHistory) bool { return byUser(m1.id.UserID)(r) && r.Status == "error" }),
			walk(m1.key, url.Values{"status": {"error"}}))
		require.Empty(t, walk(m1.key, url.Values{"status": {"rejected"}}), "m2's rejected entries stay hidden")
		require.Equal(t, wantIDs(byUser(m2.id.UserID)), walk(m2.key, url.Values{}))

		// Naming another user is refused outright (403), whoever it is.
		forbidden := `{"error":{"code":"forbidden","message":"members may only list their own history"}}`
		for _, u := range []uuid.UUID{m2.id.UserID, a.AdminID, uuid.New()} {
			status, body := e.get(t, "/v1/history?user_id="+u.String(), m1.key)
			require.Equal(t, http.StatusForbidden, status, body)
			require.Equal(t, forbidden, body)
		}
	})

	t.Run("item fields", func(t *testing.T) {
		status, body := e.get(t, "/v1/history/"+adminRows[0].ID.String(), a.APIKey)
		require.Equal(t, http.StatusOK, status, body)
		var raw map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &raw))
		keys := make([]string, 0, len(raw))
		for k := range raw {
			keys = append(keys, k)
		}
		require.ElementsMatch(t, []string{"id", "user_id", "model", "question", "generated_sql", "status", "error",
			"row_count", "generation_ms", "execution_ms", "created_at"}, keys)

		var it histItem
		require.NoError(t, json.Unmarshal([]byte(body), &it))
		r := adminRows[0]
		require.Equal(t, r.ID, it.Id)
		require.Equal(t, a.AdminID, *it.UserId)
		require.Equal(t, "default", *it.Model)
		require.Equal(t, *r.Question, *it.Question)
		require.Equal(t, sql, *it.GeneratedSql)
		require.Equal(t, apiclient.HistoryStatusSuccess, it.Status)
		require.Nil(t, it.Error)
		require.Equal(t, rowCount, *it.RowCount)
		require.InDelta(t, gen, *it.GenerationMs, 1e-9)
		require.InDelta(t, exec, *it.ExecutionMs, 1e-9)
		require.True(t, r.CreatedAt.Equal(it.CreatedAt), "%v != %v", r.CreatedAt, it.CreatedAt)

		// Nulls stay null: no model, SQL or timings on a pending entry.
		status, body = e.get(t, "/v1/history/"+m1Pending[0].ID.String(), m1.key)
		require.Equal(t, http.StatusOK, status, body)
		require.NoError(t, json.Unmarshal([]byte(body), &raw))
		for _, k := range []string{"model", "generated_sql", "error", "row_count", "generation_ms", "execution_ms"} {
			require.Contains(t, raw, k)
			require.Nil(t, raw[k], k)
		}
		require.Equal(t, "pending", raw["status"])

		// The list shows the same item as the single-entry endpoint.
		page := e.histList(t, a.APIKey, url.Values{"user_id": {a.AdminID.String()}, "limit": {"200"}})
		require.Contains(t, page.Items, it)
	})

	t.Run("get by id", func(t *testing.T) {
		notFound := func(key, id string) string {
			status, body := e.get(t, "/v1/history/"+id, key)
			require.Equal(t, http.StatusNotFound, status, body)
			return body
		}
		random := notFound(m1.key, uuid.NewString())
		require.JSONEq(t, `{"error":{"code":"not_found","message":"not found"}}`, random)
		// Someone else's entry is indistinguishable from an unknown id.
		require.Equal(t, random, notFound(m1.key, adminRows[0].ID.String()))
		require.Equal(t, random, notFound(m1.key, m2Rows[0].ID.String()))
		require.Equal(t, random, notFound(m1.key, "not-a-uuid"))
		require.Equal(t, random, notFound(a.APIKey, uuid.NewString()))

		// Members reach their own; admins everyone's in the tenant.
		for _, tc := range []struct {
			key string
			id  uuid.UUID
		}{{m1.key, m1Pending[0].ID}, {a.APIKey, m1Pending[0].ID}, {a.APIKey, m2Rows[1].ID}, {m2.key, m2Rows[1].ID}} {
			status, body := e.get(t, "/v1/history/"+tc.id.String(), tc.key)
			require.Equal(t, http.StatusOK, status, body)
		}
	})

	// Last, as it changes the data: a deleted model leaves its entries with
	// model null (ON DELETE SET NULL), and they no longer match its name.
	t.Run("deleted model", func(t *testing.T) {
		ctx := context.Background()
		err := e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
			_, err := tx.Exec(ctx, "DELETE FROM dbchat.models WHERE id = $1", other)
			return err
		})
		require.NoError(t, err)
		page := e.histList(t, a.APIKey, url.Values{"status": {"error"}})
		require.Len(t, page.Items, 2)
		for _, it := range page.Items {
			require.Nil(t, it.Model)
		}
		require.Empty(t, e.histList(t, a.APIKey, url.Values{"model": {"other"}}).Items)
	})
}

func TestHistoryAcrossTenantsIs404(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "History A")
	b := dbtest.NewTenant(t, e.db, "History B")
	aRows := histInsert(t, e.db, a.Identity, 2, "a", dbsqlc.CreateQueryHistoryParams{Status: "success"})
	bRows := histInsert(t, e.db, b.Identity, 2, "b", dbsqlc.CreateQueryHistoryParams{Status: "success"})

	get := func(key string, id string) (int, string) { return e.get(t, "/v1/history/"+id, key) }

	status, random := get(a.APIKey, uuid.NewString())
	require.Equal(t, http.StatusNotFound, status, random)
	for _, id := range histIDs(bRows, histRowID) {
		status, body := get(a.APIKey, id.String())
		require.Equal(t, http.StatusNotFound, status, body)
		require.Equal(t, random, body, "another tenant's id answers exactly like a random one")
	}
	for _, id := range histIDs(aRows, histRowID) {
		status, body := get(b.APIKey, id.String())
		require.Equal(t, http.StatusNotFound, status, body)
		require.Equal(t, random, body)
		status, body = get(a.APIKey, id.String())
		require.Equal(t, http.StatusOK, status, body)
	}

	// Lists never mix tenants, whatever the filter.
	require.ElementsMatch(t, histIDs(aRows, histRowID), histIDs(e.histList(t, a.APIKey, url.Values{}).Items, histItemID))
	require.ElementsMatch(t, histIDs(bRows, histRowID), histIDs(e.histList(t, b.APIKey, url.Values{}).Items, histItemID))
	require.Empty(t, e.histList(t, a.APIKey, url.Values{"user_id": {b.AdminID.String()}}).Items)
}

func TestHistoryBadParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "History Params")

	badCursor := base64.RawURLEncoding.EncodeToString([]byte("short"))
	// The right length, but a time no timestamptz can hold.
	farCursor := base64.RawURLEncoding.EncodeToString(append(bytes.Repeat([]byte{0x7f}, 8), make([]byte, 16)...))
	cases := []struct {
		query string
		field string
	}{
		{"status=bogus", "status"},
		{"status=SUCCESS", "status"},
		{"limit=0", "limit"},
		{"limit=201", "limit"},
		{"limit=ten", "limit"},
		{"limit=-1", "limit"},
		{"cursor=%21%21%21", "cursor"},
		{"cursor=" + badCursor, "cursor"},
		{"cursor=" + farCursor, "cursor"},
		{"cursor=" + base64.StdEncoding.EncodeToString(make([]byte, 24)) + "%3D%3D", "cursor"},
		{"since=yesterday", "since"},
		{"since=2024-01-02", "since"},
		{"since=2024-01-02T15:04:05", "since"},
		{"user_id=me", "user_id"},
	}
	for _, tc := range cases {
		status, body := e.get(t, "/v1/history?"+tc.query, a.APIKey)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", tc.query, body)
		var resp struct {
			Error struct {
				Code    string         `json:"code"`
				Message string         `json:"message"`
				Details map[string]any `json:"details"`
			} `json:"error"`
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(body)))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&resp), "%s: the one error shape: %s", tc.query, body)
		require.Equal(t, "invalid", resp.Error.Code, tc.query)
		require.Equal(t, map[string]any{"field": tc.field}, resp.Error.Details, tc.query)
		require.Contains(t, resp.Error.Message, tc.field, tc.query)
	}

	// Unauthenticated requests never reach the parameters.
	e.requireUnauthorized(t, "/v1/history?status=bogus", "")
	e.requireUnauthorized(t, "/v1/history/"+uuid.NewString(), "")
}

// TestHistoryRoundTrips pins the history endpoints at the key lookup plus one
// statement: the list, its filters and the model join are one query.
func TestHistoryRoundTrips(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	db, writes := d.CountingTenants(t)
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{}))
	t.Cleanup(srv.Close)
	a := dbtest.NewTenant(t, db, "History Round Trips")
	rows := histInsert(t, db, a.Identity, 30, "rt", dbsqlc.CreateQueryHistoryParams{Status: "success"})

	const requests = 30
	perRequest := func(path string) float64 {
		for range 3 {
			status, body := getAuth(t, srv.URL+path, bearer(a.APIKey))
			require.Equal(t, http.StatusOK, status, body)
		}
		before := writes.Load()
		for range requests {
			status, body := getAuth(t, srv.URL+path, bearer(a.APIKey))
			require.Equal(t, http.StatusOK, status, body)
		}
		avg := float64(writes.Load()-before) / requests
		t.Logf("GET %s: %.2f round trips per request", path, avg)
		return avg
	}
	require.LessOrEqual(t, perRequest("/v1/history?limit=10&status=success&model=default&user_id="+a.AdminID.String()), 2.0)
	require.LessOrEqual(t, perRequest("/v1/history/"+rows[0].ID.String()), 2.0)
}
