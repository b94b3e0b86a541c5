package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/evaluate"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// newEvalEnv is newAskEnv with the privileged connection the canary
// erases its throwaway tenant on.
func newEvalEnv(t *testing.T) *env {
	t.Helper()
	d := dbtest.New(t)
	pool := d.AppPool(t, 4)
	db := tenant.New(pool)
	box, err := tenant.NewSandbox(context.Background(), d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	sql := sandbox.New(db, box)
	asker := ask.New(db, sql, &nlsql.Store{DB: db, Embedder: embed.NewLocal()}, generate.NewOffline())
	privileged := func(ctx context.Context) (*pgx.Conn, error) { return pgx.Connect(ctx, d.AdminURL) }
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{SQL: sql, Ask: asker, Privileged: privileged}))
	t.Cleanup(srv.Close)
	return &env{d: d, pool: pool, db: db, url: srv.URL}
}

type evalItem struct {
	ID         uuid.UUID  `json:"id"`
	Verified   bool       `json:"verified"`
	VerifiedBy *uuid.UUID `json:"verified_by"`
	VerifiedAt *string    `json:"verified_at"`
}

// TestVerifiedPairs: an admin verifies a pair on create or with PATCH
// (and unverifies it), an answer grounded on one says so, members and
// wrong items are refused.
func TestVerifiedPairs(t *testing.T) {
	e := newEvalEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	member := mdlMember(t, e.db, a)
	const base = "/v1/models/default/training-data"

	st, body := e.mdlJSON(t, "POST", base, a.APIKey, `{"kind":"sql","question":"how many customers are there","sql":"SELECT count(*) FROM customers","verified":true}`)
	require.Equal(t, http.StatusCreated, st, body)
	var made evalItem
	require.NoError(t, json.Unmarshal([]byte(body), &made))
	require.True(t, made.Verified)
	require.Equal(t, a.AdminID, *made.VerifiedBy)
	// Unverified again, so that only the pair below grounds answers.
	st, body = e.mdlJSON(t, "PATCH", base+"/"+made.ID.String(), a.APIKey, `{"verified":false}`)
	require.Equal(t, http.StatusOK, st, body)

	st, body = e.mdlJSON(t, "POST", base, a.APIKey, `{"kind":"documentation","content":"x","verified":true}`)
	require.Equal(t, http.StatusBadRequest, st, body)
	require.Contains(t, body, `"field":"verified"`)
	st, body = e.mdlJSON(t, "POST", base, a.APIKey, `{"kind":"ddl","content":"CREATE TABLE x (a int)"}`)
	require.Equal(t, http.StatusCreated, st, body)
	var ddl evalItem
	require.NoError(t, json.Unmarshal([]byte(body), &ddl))
	require.False(t, ddl.Verified)

	st, body = e.mdlJSON(t, "POST", base, a.APIKey, `{"kind":"sql","question":"what is the total amount of orders","sql":"SELECT count(*) FROM orders"}`)
	require.Equal(t, http.StatusCreated, st, body)
	var pair evalItem
	require.NoError(t, json.Unmarshal([]byte(body), &pair))
	require.False(t, pair.Verified)
	require.Nil(t, pair.VerifiedAt)

	st, _ = e.mdlJSON(t, "PATCH", base+"/"+pair.ID.String(), member, `{"verified":true}`)
	require.Equal(t, http.StatusForbidden, st)
	st, body = e.mdlJSON(t, "PATCH", base+"/"+pair.ID.String(), a.APIKey, `{}`)
	require.Equal(t, http.StatusBadRequest, st, body)
	require.Contains(t, body, `"field":"verified"`)
	st, _ = e.mdlJSON(t, "PATCH", base+"/"+ddl.ID.String(), a.APIKey, `{"verified":true}`)
	require.Equal(t, http.StatusNotFound, st)
	st, _ = e.mdlJSON(t, "PATCH", "/v1/models/nope/training-data/"+pair.ID.String(), a.APIKey, `{"verified":true}`)
	require.Equal(t, http.StatusNotFound, st)

	// Unverified, the pair grounds no answer; verified, it does.
	requireGrounded(t, e, a.APIKey, false)
	st, body = e.mdlJSON(t, "PATCH", base+"/"+pair.ID.String(), a.APIKey, `{"verified":true}`)
	require.Equal(t, http.StatusOK, st, body)
	require.NoError(t, json.Unmarshal([]byte(body), &pair))
	require.True(t, pair.Verified)
	require.Equal(t, a.AdminID, *pair.VerifiedBy)
	requireGrounded(t, e, a.APIKey, true)
	// A conversation turn says so too.
	st, body = e.mdlJSON(t, "POST", "/v1/conversations", a.APIKey, `{"title":"orders"}`)
	require.Equal(t, http.StatusCreated, st, body)
	var conv struct{ ID string }
	require.NoError(t, json.Unmarshal([]byte(body), &conv))
	st, body = e.mdlJSON(t, "POST", "/v1/conversations/"+conv.ID+"/messages", a.APIKey, `{"question":"what is the total amount of orders"}`)
	require.Equal(t, http.StatusOK, st, body)
	require.Contains(t, body, `"grounded_on_verified":true`)

	st, body = e.mdlJSON(t, "GET", base+"?kind=sql", member, "")
	require.Equal(t, http.StatusOK, st, body)
	var page struct{ Items []evalItem }
	require.NoError(t, json.Unmarshal([]byte(body), &page))
	require.Len(t, page.Items, 2)
	require.Equal(t, pair.ID, page.Items[0].ID) // newest first
	require.True(t, page.Items[0].Verified)
	require.False(t, page.Items[1].Verified)

	st, body = e.mdlJSON(t, "PATCH", base+"/"+pair.ID.String(), a.APIKey, `{"verified":false}`)
	require.Equal(t, http.StatusOK, st, body)
	require.NoError(t, json.Unmarshal([]byte(body), &pair))
	require.False(t, pair.Verified)
	require.Nil(t, pair.VerifiedBy)
	requireGrounded(t, e, a.APIKey, false)
}

// requireGrounded asks a question whose nearest pair is "what is the
// total amount of orders" and checks grounded_on_verified.
func requireGrounded(t *testing.T, e *env, key string, want bool) {
	t.Helper()
	st, body := e.mdlJSON(t, "POST", "/v1/ask", key, `{"question":"what is the total amount of orders"}`)
	require.Equal(t, http.StatusOK, st, body)
	var ans struct {
		Grounded bool `json:"grounded_on_verified"`
		Context  struct {
			Similar []struct {
				Question string `json:"question"`
				Verified bool   `json:"verified"`
			} `json:"similar"`
		} `json:"context"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &ans))
	require.Equal(t, want, ans.Grounded, body)
	require.Equal(t, "what is the total amount of orders", ans.Context.Similar[0].Question)
	require.Equal(t, want, ans.Context.Similar[0].Verified)
}

// TestEvaluationsAPI: an admin runs an evaluation of the demo tenant (a
// planted wrong pair counted wrong, the canary not seen and erased), lists
// it and reads it back; members may read but not run; unknown models and
// runs are 404.
func TestEvaluationsAPI(t *testing.T) {
	e := newEvalEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	member := mdlMember(t, e.db, a)
	const base = "/v1/models/default"
	for _, p := range []string{
		`{"kind":"sql","question":"how many customers are there","sql":"SELECT count(*) FROM customers","verified":true}`,
		`{"kind":"sql","question":"what is the total amount of orders","sql":"SELECT count(*) FROM orders","verified":true}`,
	} {
		st, body := e.mdlJSON(t, "POST", base+"/training-data", a.APIKey, p)
		require.Equal(t, http.StatusCreated, st, body)
	}

	st, _ := e.mdlJSON(t, "POST", base+"/evaluations", member, "")
	require.Equal(t, http.StatusForbidden, st)
	st, _ = e.mdlJSON(t, "POST", "/v1/models/nope/evaluations", a.APIKey, "")
	require.Equal(t, http.StatusNotFound, st)

	st, body := e.mdlJSON(t, "POST", base+"/evaluations", a.APIKey, "")
	require.Equal(t, http.StatusCreated, st, body)
	var run evaluate.Run
	require.NoError(t, json.Unmarshal([]byte(body), &run))
	require.Equal(t, 2, run.Pairs)
	require.Equal(t, 0.5, *run.ExactAccuracy)
	require.Equal(t, []string{evaluate.Correct, evaluate.Wrong}, []string{run.Results[0].Outcome, run.Results[1].Outcome}, body)
	require.Equal(t, "SELECT count(*) FROM orders", run.Results[1].GoldSQL)
	require.Equal(t, evaluate.NotSeen, run.Canary.Status, body)
	require.True(t, run.Canary.Erased)

	st, body = e.mdlJSON(t, "GET", base+"/evaluations", member, "")
	require.Equal(t, http.StatusOK, st, body)
	var list struct{ Evaluations []evaluate.Run }
	require.NoError(t, json.Unmarshal([]byte(body), &list))
	require.Len(t, list.Evaluations, 1)
	require.Equal(t, run.ID, list.Evaluations[0].ID)
	require.Equal(t, "offline", list.Evaluations[0].Generator)
	require.Nil(t, list.Evaluations[0].Results)

	st, body = e.mdlJSON(t, "GET", base+"/evaluations/"+run.ID.String(), member, "")
	require.Equal(t, http.StatusOK, st, body)
	var got evaluate.Run
	require.NoError(t, json.Unmarshal([]byte(body), &got))
	require.Equal(t, run.Results, got.Results)
	st, _ = e.mdlJSON(t, "GET", base+"/evaluations/"+uuid.NewString(), a.APIKey, "")
	require.Equal(t, http.StatusNotFound, st)
	st, _ = e.mdlJSON(t, "GET", "/v1/models/nope/evaluations", a.APIKey, "")
	require.Equal(t, http.StatusNotFound, st)
}
