package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/server/apiclient"
	"github.com/dbchat/dbchat/internal/tenant"
)

type (
	convDetail = apiclient.ConversationDetail
	convPage   = apiclient.ConversationPage
)

// convTurn is a turn's answer as the tests read it.
type convTurn struct {
	ID               string              `json:"id"`
	Position         int                 `json:"position"`
	Question         string              `json:"question"`
	ResolvedQuestion string              `json:"resolved_question"`
	SQL              string              `json:"sql"`
	Rows             [][]json.RawMessage `json:"rows"`
	HistoryID        string              `json:"history_id"`
	Interpretation   string              `json:"interpretation"`
	Summary          string              `json:"summary"`
	Suggestions      []string            `json:"suggestions"`
}

func (e *env) newConversation(t *testing.T, key, title string) convDetail {
	t.Helper()
	var d convDetail
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/conversations", key, `{"title":"`+title+`"}`, &d)
	require.Equal(t, "default", d.Model)
	require.Empty(t, d.Messages)
	return d
}

func (e *env) turn(t *testing.T, key string, conv uuid.UUID, question string) convTurn {
	t.Helper()
	status, body := e.send(t, http.MethodPost, "/v1/conversations/"+conv.String()+"/messages", key, map[string]any{"question": question})
	require.Equal(t, http.StatusOK, status, "%s: %s", question, body)
	var tr convTurn
	require.NoError(t, json.Unmarshal([]byte(body), &tr))
	return tr
}

// A conversation's turns: the first question stands alone, the follow-up
// refines it (rows checked), both are recorded with their resolved
// question and history entry; a refusal is a 422 recorded as a turn; an
// archived conversation takes no turn; deleting it leaves a 404.
func TestConversationTurns(t *testing.T) {
	t.Parallel()
	e, _ := newFeedbackEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))

	conv := e.newConversation(t, a.APIKey, "orders")
	first := e.turn(t, a.APIKey, conv.Id, "How many orders per customer?")
	require.Equal(t, 1, first.Position)
	require.Equal(t, "How many orders per customer?", first.ResolvedQuestion)
	require.Len(t, first.Rows, 4)
	second := e.turn(t, a.APIKey, conv.Id, "and only orders over 100?")
	require.Equal(t, 2, second.Position)
	require.Equal(t, "and only orders over 100?", second.Question)
	require.Contains(t, second.ResolvedQuestion, "How many orders per customer")
	require.Len(t, second.Rows, 2, second.SQL) // orders 101 (120.50, customer 1) and 104 (410.00, customer 3)
	require.NotEmpty(t, second.Interpretation)
	require.NotEmpty(t, second.Summary)

	var h histItem
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/history/"+second.HistoryID, a.APIKey, "", &h)
	require.Equal(t, second.SQL, *h.GeneratedSql)
	require.Equal(t, second.ResolvedQuestion, *h.Question, "history keeps the standalone question")

	status, body := e.send(t, http.MethodPost, "/v1/conversations/"+conv.Id.String()+"/messages", a.APIKey, map[string]any{"question": "and what is the weather like?"})
	require.Equal(t, http.StatusUnprocessableEntity, status, body)
	require.Equal(t, "no_sql_generated", errorCode(t, body))

	var d convDetail
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/conversations/"+conv.Id.String(), a.APIKey, "", &d)
	require.Len(t, d.Messages, 3)
	require.Equal(t, second.SQL, *d.Messages[1].Sql)
	require.Nil(t, d.Messages[2].Sql)
	require.Contains(t, *d.Messages[2].Error, "I could not use")
	require.NotNil(t, d.Messages[2].HistoryId, "the refusal is in history too")

	// Bad input: 400 naming the field; unknown model 404; archived 409.
	for _, bad := range []string{`{"question":""}`, `{"question":"` + strings.Repeat("x", 2001) + `"}`} {
		status, body := e.callJSON(t, http.MethodPost, "/v1/conversations/"+conv.Id.String()+"/messages", a.APIKey, bad)
		require.Equal(t, http.StatusBadRequest, status, body)
		require.Contains(t, body, `"field":"question"`)
	}
	status, body = e.callJSON(t, http.MethodPost, "/v1/conversations", a.APIKey, `{"model":"nosuch"}`)
	require.Equal(t, http.StatusNotFound, status, body)
	status, body = e.callJSON(t, http.MethodPost, "/v1/conversations", a.APIKey, `{"title":"`+strings.Repeat("t", 201)+`"}`)
	require.Equal(t, http.StatusBadRequest, status, body)
	e.expectJSON(t, http.StatusOK, http.MethodPatch, "/v1/conversations/"+conv.Id.String(), a.APIKey, `{"archived":true,"title":"old"}`, &d)
	require.True(t, d.Archived)
	require.Equal(t, "old", d.Title)
	status, body = e.send(t, http.MethodPost, "/v1/conversations/"+conv.Id.String()+"/messages", a.APIKey, map[string]any{"question": "top 1"})
	require.Equal(t, http.StatusConflict, status, body)
	e.expectJSON(t, http.StatusOK, http.MethodPatch, "/v1/conversations/"+conv.Id.String(), a.APIKey, `{"archived":false}`, &d)
	third := e.turn(t, a.APIKey, conv.Id, "top 1")
	require.Equal(t, 4, third.Position)
	require.Len(t, third.Rows, 1)

	var page convPage
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/conversations?archived=false", a.APIKey, "", &page)
	require.Len(t, page.Items, 1)
	require.EqualValues(t, 4, page.Items[0].Messages)
	e.expectJSON(t, http.StatusNoContent, http.MethodDelete, "/v1/conversations/"+conv.Id.String(), a.APIKey, "", nil)
	status, _ = e.send(t, http.MethodGet, "/v1/conversations/"+conv.Id.String(), a.APIKey, nil)
	require.Equal(t, http.StatusNotFound, status)
}

// Another tenant's conversation, or another member's, is 404 on every
// route exactly like an unknown id, and nothing of it reaches the
// generator; an admin sees every conversation of its tenant. The database
// enforces it: a transaction as the other member counts none of them.
func TestConversationsAreIsolated(t *testing.T) {
	t.Parallel()
	e, gen := newFeedbackEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Shop A")
	b := dbtest.NewTenant(t, e.db, "Shop B")
	for _, tn := range []dbtest.Tenant{a, b} {
		require.NoError(t, e.db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	}
	m1 := e.addUser(t, a.APIKey, "m1@a.test", "member")
	m2 := e.addUser(t, a.APIKey, "m2@a.test", "member")
	conv := e.newConversation(t, m1.Key, "m1's")
	e.turn(t, m1.Key, conv.Id, "How many customers are in GB?")
	mine := e.newConversation(t, m2.Key, "m2's")

	path := "/v1/conversations/" + conv.Id.String()
	unknown := "/v1/conversations/" + uuid.NewString()
	for _, key := range []string{b.APIKey, m2.Key} {
		inputs := len(gen.inputs)
		for _, p := range []string{path, unknown} {
			for _, call := range []struct{ method, path, body string }{
				{http.MethodGet, p, ""}, {http.MethodPatch, p, `{"title":"mine now"}`}, {http.MethodDelete, p, ""},
				{http.MethodPost, p + "/messages", `{"question":"and only in US?"}`},
			} {
				status, body := e.callJSON(t, call.method, call.path, key, call.body)
				require.Equal(t, http.StatusNotFound, status, "%s %s: %s", call.method, call.path, body)
				require.JSONEq(t, `{"error":{"code":"not_found","message":"no such conversation"}}`, body)
			}
		}
		require.Equal(t, inputs, len(gen.inputs), "nothing reached the generator")
		var page convPage
		e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/conversations", key, "", &page)
		for _, it := range page.Items {
			require.NotEqual(t, conv.Id, it.Id)
		}
	}

	// The admin sees both members' conversations.
	var page convPage
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/conversations", a.APIKey, "", &page)
	ids := []uuid.UUID{}
	for _, it := range page.Items {
		ids = append(ids, it.Id)
	}
	require.ElementsMatch(t, []uuid.UUID{conv.Id, mine.Id}, ids)
	var d convDetail
	e.expectJSON(t, http.StatusOK, http.MethodGet, path, a.APIKey, "", &d)
	require.Len(t, d.Messages, 1)

	// The database layer on its own: m2's transaction sees none of m1's rows.
	m2ID := tenant.Identity{TenantID: a.ID, UserID: m2.ID}
	require.NoError(t, e.db.TxAs(ctx, m2ID, func(tx tenant.Conn) error {
		var convs, msgs int
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM dbchat.conversations WHERE id = $1),
			(SELECT count(*) FROM dbchat.messages WHERE conversation_id = $1)`, conv.Id).Scan(&convs, &msgs); err != nil {
			return err
		}
		require.Zero(t, convs)
		require.Zero(t, msgs)
		_, err := tx.Exec(ctx, `UPDATE dbchat.conversations SET title = 'taken' WHERE id = $1`, conv.Id)
		return err
	}))
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
		var title string
		err := tx.QueryRow(ctx, `SELECT title FROM dbchat.conversations WHERE id = $1`, conv.Id).Scan(&title)
		require.Equal(t, "m1's", title)
		return err
	}))
	err := e.db.TxAs(ctx, m2ID, func(tx tenant.Conn) error {
		_, err := tx.Exec(ctx, `INSERT INTO dbchat.conversations (user_id, model_id) SELECT $1, id FROM dbchat.models LIMIT 1`, m1.ID)
		return err
	})
	requirePgCode(t, err, "42501", "m2 creates a conversation owned by m1")
}

func requirePgCode(t *testing.T, err error, code, what string) {
	t.Helper()
	var pg *pgconn.PgError
	require.Truef(t, errors.As(err, &pg), "%s: want SQLSTATE %s, got %v", what, code, err)
	require.Equalf(t, code, pg.Code, "%s: %s", what, pg.Message)
}
