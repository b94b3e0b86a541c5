package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/tenant"
)

// mdlDo sends method path with key and a body of contentType ("" for none)
// and returns status and body.
func (e *env) mdlDo(t *testing.T, method, path, key, contentType, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, r)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func (e *env) mdlJSON(t *testing.T, method, path, key, body string) (int, string) {
	t.Helper()
	return e.mdlDo(t, method, path, key, "application/json", body)
}

// mdlMember adds a member to tn and returns their key.
func mdlMember(t *testing.T, db *tenant.DB, tn dbtest.Tenant) string {
	t.Helper()
	var key string
	err := db.TxAs(context.Background(), tn.Identity, func(tx tenant.Conn) error {
		u, err := dbsqlc.New().CreateUser(context.Background(), tx, dbsqlc.CreateUserParams{Email: "member@" + tn.Slug + ".test", Role: "member"})
		if err != nil {
			return err
		}
		key, err = dbtest.CreateKey(context.Background(), tx, tn.ID, u.ID)
		return err
	})
	require.NoError(t, err)
	return key
}

type mdlItem struct {
	ID       uuid.UUID `json:"id"`
	ModelID  uuid.UUID `json:"model_id"`
	Kind     string    `json:"kind"`
	Question *string   `json:"question"`
	Content  string    `json:"content"`
	Source   string    `json:"source"`
	Embedder *string   `json:"embedder"`
}

type mdlPage struct {
	Items      []mdlItem `json:"items"`
	Limit      int       `json:"limit"`
	Offset     int       `json:"offset"`
	NextOffset *int      `json:"next_offset"`
}

type mdlModel struct {
	ID       uuid.UUID `json:"id"`
	Name     string    `json:"name"`
	LLMModel string    `json:"llm_model"`
	Training struct {
		SQL, DDL, Documentation, Total int
	} `json:"training"`
}

func mdlDecode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal([]byte(body), &v), body)
	return v
}

func mdlSeed(t *testing.T, db *tenant.DB, tn dbtest.Tenant) {
	t.Helper()
	require.NoError(t, db.TxAs(context.Background(), tn.Identity, func(tx tenant.Conn) error { return demo.Seed(context.Background(), tx) }))
}

func TestModelsAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "Models A")
	member := mdlMember(t, e.db, a)

	// The default model exists; members may read.
	status, body := e.mdlDo(t, "GET", "/v1/models", member, "", "")
	require.Equal(t, http.StatusOK, status, body)
	list := mdlDecode[struct{ Models []mdlModel }](t, body)
	require.Len(t, list.Models, 1)
	require.Equal(t, "default", list.Models[0].Name)

	// Members may not create or delete.
	status, body = e.mdlJSON(t, "POST", "/v1/models", member, `{"name":"sales"}`)
	require.Equal(t, http.StatusForbidden, status, body)

	status, body = e.mdlJSON(t, "POST", "/v1/models", a.APIKey, `{"name":"sales","llm_model":"gemini-2.5-flash","description":"Sales"}`)
	require.Equal(t, http.StatusCreated, status, body)
	created := mdlDecode[mdlModel](t, body)
	require.Equal(t, "sales", created.Name)
	require.Equal(t, "gemini-2.5-flash", created.LLMModel)
	status, body = e.mdlJSON(t, "POST", "/v1/models", a.APIKey, `{"name":"sales"}`)
	require.Equal(t, http.StatusConflict, status, body)
	require.Contains(t, body, `a model named \"sales\" already exists`)
	for _, bad := range []string{`{"name":"Sales!"}`, `{}`, `{"name":"x","extra":1}`} {
		status, body = e.mdlJSON(t, "POST", "/v1/models", a.APIKey, bad)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", bad, body)
	}

	// Training data: the three shapes, embedded on write.
	status, body = e.mdlJSON(t, "POST", "/v1/models/sales/training-data", a.APIKey, `{"kind":"sql","question":"How many customers do we have?","sql":"SELECT count(*) FROM customers"}`)
	require.Equal(t, http.StatusBadRequest, status, "no such table yet: %s", body)
	require.Contains(t, body, `"code":"sql_rejected"`)
	mdlSeed(t, e.db, a)
	status, body = e.mdlJSON(t, "POST", "/v1/models/sales/training-data", a.APIKey, `{"kind":"sql","question":"How many customers do we have?","sql":"SELECT count(*) FROM customers"}`)
	require.Equal(t, http.StatusCreated, status, body)
	pair := mdlDecode[mdlItem](t, body)
	require.Equal(t, "sql", pair.Kind)
	require.Equal(t, "SELECT count(*) FROM customers", pair.Content)
	require.Equal(t, "local/hash-v1", *pair.Embedder)
	require.Equal(t, created.ID, pair.ModelID)
	status, body = e.mdlJSON(t, "POST", "/v1/models/sales/training-data", a.APIKey, `{"kind":"ddl","content":"CREATE TABLE customers (id bigint)"}`)
	require.Equal(t, http.StatusCreated, status, body)
	ddl := mdlDecode[mdlItem](t, body)
	require.Nil(t, ddl.Question)
	status, body = e.mdlJSON(t, "POST", "/v1/models/sales/training-data", a.APIKey, `{"kind":"documentation","content":"Amounts are in EUR."}`)
	require.Equal(t, http.StatusCreated, status, body)

	for _, c := range []struct{ body, want string }{
		{`{"kind":"sql","sql":"SELECT count(*) FROM orders"}`, "question required"},
		{`{"kind":"sql","question":"q","sql":"DROP TABLE customers"}`, "sql_rejected"},
		{`{"kind":"sql","question":"q","sql":"SELECT * FROM dbchat.api_keys"}`, "sql_rejected"},
		{`{"kind":"ddl","sql":"x"}`, "only sql pairs have sql"},
		{`{"kind":"ddl"}`, "content: is required"},
		{`{"kind":"view","content":"x"}`, "kind: must be one of"},
	} {
		status, body = e.mdlJSON(t, "POST", "/v1/models/sales/training-data", a.APIKey, c.body)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", c.body, body)
		require.Contains(t, body, c.want, c.body)
	}
	status, body = e.mdlJSON(t, "POST", "/v1/models/sales/training-data", member, `{"kind":"ddl","content":"x"}`)
	require.Equal(t, http.StatusForbidden, status, body)
	status, body = e.mdlJSON(t, "POST", "/v1/models/nope/training-data", a.APIKey, `{"kind":"ddl","content":"x"}`)
	require.Equal(t, http.StatusNotFound, status, body)

	// Listing: members may read; kind filter; pages.
	status, body = e.mdlDo(t, "GET", "/v1/models/sales/training-data", member, "", "")
	require.Equal(t, http.StatusOK, status, body)
	page := mdlDecode[mdlPage](t, body)
	require.Len(t, page.Items, 3)
	require.Nil(t, page.NextOffset)
	status, body = e.mdlDo(t, "GET", "/v1/models/sales/training-data?kind=sql", member, "", "")
	require.Equal(t, http.StatusOK, status, body)
	page = mdlDecode[mdlPage](t, body)
	require.Len(t, page.Items, 1)
	require.Equal(t, pair.ID, page.Items[0].ID)
	status, body = e.mdlDo(t, "GET", "/v1/models/sales/training-data?limit=2", member, "", "")
	require.Equal(t, http.StatusOK, status, body)
	page = mdlDecode[mdlPage](t, body)
	require.Len(t, page.Items, 2)
	require.Equal(t, 2, *page.NextOffset)
	status, body = e.mdlDo(t, "GET", "/v1/models/sales/training-data?limit=2&offset=2", member, "", "")
	require.Equal(t, http.StatusOK, status, body)
	require.Len(t, mdlDecode[mdlPage](t, body).Items, 1)
	for _, q := range []string{"kind=table", "limit=0", "limit=501", "offset=-1", "source=robot"} {
		status, body = e.mdlDo(t, "GET", "/v1/models/sales/training-data?"+q, member, "", "")
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", q, body)
	}

	// The model shows its counts.
	status, body = e.mdlDo(t, "GET", "/v1/models/sales", member, "", "")
	require.Equal(t, http.StatusOK, status, body)
	m := mdlDecode[mdlModel](t, body)
	require.Equal(t, 1, m.Training.SQL)
	require.Equal(t, 3, m.Training.Total)

	// Deleting an item: admins only; then it is gone.
	status, body = e.mdlDo(t, "DELETE", "/v1/models/sales/training-data/"+ddl.ID.String(), member, "", "")
	require.Equal(t, http.StatusForbidden, status, body)
	status, body = e.mdlDo(t, "DELETE", "/v1/models/sales/training-data/"+ddl.ID.String(), a.APIKey, "", "")
	require.Equal(t, http.StatusNoContent, status, body)
	status, body = e.mdlDo(t, "DELETE", "/v1/models/sales/training-data/"+ddl.ID.String(), a.APIKey, "", "")
	require.Equal(t, http.StatusNotFound, status, body)
	status, body = e.mdlDo(t, "DELETE", "/v1/models/sales/training-data/not-a-uuid", a.APIKey, "", "")
	require.Equal(t, http.StatusNotFound, status, body)

	// Deleting the model: the seed's cleanup, with counts; never "default".
	status, body = e.mdlDo(t, "DELETE", "/v1/models/default", a.APIKey, "", "")
	require.Equal(t, http.StatusBadRequest, status, body)
	status, body = e.mdlDo(t, "DELETE", "/v1/models/sales", member, "", "")
	require.Equal(t, http.StatusForbidden, status, body)
	status, body = e.mdlDo(t, "DELETE", "/v1/models/sales", a.APIKey, "", "")
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"model":"sales","deleted":{"sql":1,"ddl":0,"documentation":1,"total":2}}`, body)
	status, body = e.mdlDo(t, "GET", "/v1/models/sales", a.APIKey, "", "")
	require.Equal(t, http.StatusNotFound, status, body)
}

// TestModelsCrossTenant: tenant B cannot see, use or delete tenant A's
// models or training data, and every refusal is the 404 an unknown name or
// id gets.
func TestModelsCrossTenant(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "Cross A")
	b := dbtest.NewTenant(t, e.db, "Cross B")
	mdlSeed(t, e.db, a)
	mdlSeed(t, e.db, b)

	status, body := e.mdlJSON(t, "POST", "/v1/models", a.APIKey, `{"name":"secret-model"}`)
	require.Equal(t, http.StatusCreated, status, body)
	status, body = e.mdlJSON(t, "POST", "/v1/models/secret-model/training-data", a.APIKey, `{"kind":"documentation","content":"A's secret documentation"}`)
	require.Equal(t, http.StatusCreated, status, body)
	aItem := mdlDecode[mdlItem](t, body)
	status, body = e.mdlJSON(t, "POST", "/v1/models/default/training-data", a.APIKey, `{"kind":"sql","question":"How many customers do we have?","sql":"SELECT count(*) FROM customers"}`)
	require.Equal(t, http.StatusCreated, status, body)
	aDefault := mdlDecode[mdlItem](t, body)

	// A name B does not have: the same 404 as a name nobody has.
	_, unknown := e.mdlDo(t, "GET", "/v1/models/no-such-model", b.APIKey, "", "")
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/models/secret-model", ""},
		{"DELETE", "/v1/models/secret-model", ""},
		{"GET", "/v1/models/secret-model/training-data", ""},
		{"POST", "/v1/models/secret-model/training-data", `{"kind":"ddl","content":"x"}`},
		{"POST", "/v1/models/secret-model/train-from-catalog", ""},
		{"DELETE", "/v1/models/secret-model/training-data/" + aItem.ID.String(), ""},
	} {
		status, body = e.mdlJSON(t, c.method, c.path, b.APIKey, c.body)
		require.Equal(t, http.StatusNotFound, status, "%s %s: %s", c.method, c.path, body)
		require.Equal(t, strings.ReplaceAll(unknown, "no-such-model", "secret-model"), body, "%s %s", c.method, c.path)
	}
	status, body = e.mdlDo(t, "POST", "/v1/models/secret-model/training-data/import", b.APIKey, "application/json", `[{"content":"x","training_data_type":"ddl"}]`)
	require.Equal(t, http.StatusNotFound, status, body)

	// B's default model has its own name; A's item ids are unknown there,
	// exactly like random ids.
	_, random := e.mdlDo(t, "DELETE", "/v1/models/default/training-data/"+uuid.NewString(), b.APIKey, "", "")
	status, body = e.mdlDo(t, "DELETE", "/v1/models/default/training-data/"+aDefault.ID.String(), b.APIKey, "", "")
	require.Equal(t, http.StatusNotFound, status, body)
	require.Equal(t, random, body)
	status, body = e.mdlDo(t, "GET", "/v1/models/default/training-data", b.APIKey, "", "")
	require.Equal(t, http.StatusOK, status, body)
	require.Empty(t, mdlDecode[mdlPage](t, body).Items)
	status, body = e.mdlDo(t, "GET", "/v1/models", b.APIKey, "", "")
	require.Equal(t, http.StatusOK, status, body)
	require.NotContains(t, body, "secret-model")

	// A's data is all still there.
	status, body = e.mdlDo(t, "GET", "/v1/models/secret-model/training-data", a.APIKey, "", "")
	require.Equal(t, http.StatusOK, status, body)
	require.Len(t, mdlDecode[mdlPage](t, body).Items, 1)
}

func TestTrainFromCatalogAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "Catalog A")
	mdlSeed(t, e.db, a)
	member := mdlMember(t, e.db, a)

	status, body := e.mdlDo(t, "POST", "/v1/models/default/train-from-catalog", member, "", "")
	require.Equal(t, http.StatusForbidden, status, body)
	status, body = e.mdlDo(t, "POST", "/v1/models/default/train-from-catalog", a.APIKey, "", "")
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"tables":2,"ddl":2,"documentation":2,"replaced":0}`, body)
	status, body = e.mdlJSON(t, "POST", "/v1/models/default/train-from-catalog", a.APIKey, `{}`)
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"tables":2,"ddl":2,"documentation":2,"replaced":4}`, body, "re-running replaces")

	status, body = e.mdlDo(t, "GET", "/v1/models/default/training-data?kind=ddl&source=catalog", a.APIKey, "", "")
	require.Equal(t, http.StatusOK, status, body)
	page := mdlDecode[mdlPage](t, body)
	require.Len(t, page.Items, 2)
	for _, it := range page.Items {
		require.True(t, strings.HasPrefix(it.Content, "-- "), it.Content)
		require.NotContains(t, it.Content, "tenant_id")
		require.Equal(t, "catalog", it.Source)
	}
}

func TestImportTrainingDataAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := dbtest.NewTenant(t, e.db, "Import A")
	mdlSeed(t, e.db, a)
	member := mdlMember(t, e.db, a)

	const csv = `,id,question,content,training_data_type
0,1-sql,How many customers do we have?,SELECT count(*) FROM customers,sql
1,2-ddl,,"CREATE TABLE customers (id bigint, name text)",ddl
2,3-doc,,Order amounts are in EUR.,documentation
`
	status, body := e.mdlDo(t, "POST", "/v1/models/default/training-data/import", member, "text/csv", csv)
	require.Equal(t, http.StatusForbidden, status, body)
	status, body = e.mdlDo(t, "POST", "/v1/models/default/training-data/import", a.APIKey, "text/csv", csv)
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"imported":{"sql":1,"ddl":1,"documentation":1,"total":3},"skipped":0}`, body)

	// JSON, and the format query parameter over a vague Content-Type.
	const records = `[{"id":"1-sql","question":"How many customers do we have?","content":"SELECT count(*) FROM customers","training_data_type":"sql"},
{"id":"4-sql","question":"Largest orders","content":"SELECT * FROM orders ORDER BY amount DESC LIMIT 5","training_data_type":"sql"}]`
	status, body = e.mdlDo(t, "POST", "/v1/models/default/training-data/import?format=json", a.APIKey, "application/octet-stream", records)
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"imported":{"sql":1,"ddl":0,"documentation":0,"total":1},"skipped":1}`, body)

	// A bad row: 400 naming it, nothing imported.
	const bad = `id,question,content,training_data_type
5-doc,,New documentation,documentation
6-sql,Drop it,DROP TABLE customers,sql
`
	status, body = e.mdlDo(t, "POST", "/v1/models/default/training-data/import", a.APIKey, "text/csv", bad)
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, `row 2 (id \"6-sql\")`)
	const badType = `[{"id":"7","content":"x","training_data_type":"ddl"},{"id":"8","content":"y","training_data_type":"chart"}]`
	status, body = e.mdlDo(t, "POST", "/v1/models/default/training-data/import", a.APIKey, "application/json", badType)
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, `row 2 (id \"8\"): training_data_type`)
	require.Contains(t, body, `"row":2`)

	status, body = e.mdlDo(t, "POST", "/v1/models/default/training-data/import", a.APIKey, "text/plain", csv)
	require.Equal(t, http.StatusUnsupportedMediaType, status, body)
	status, body = e.mdlDo(t, "POST", "/v1/models/default/training-data/import", a.APIKey, "text/csv", "")
	require.Equal(t, http.StatusBadRequest, status, body)

	status, body = e.mdlDo(t, "GET", "/v1/models/default", a.APIKey, "", "")
	require.Equal(t, http.StatusOK, status, body)
	require.Equal(t, 4, mdlDecode[mdlModel](t, body).Training.Total, "only the two good imports")
}
