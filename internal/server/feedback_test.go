package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/server/apiclient"
	"github.com/dbchat/dbchat/internal/tenant"
)

// promptLog is the offline generator with a record of every input it was
// given: what a prompt built from retrieval would carry to an LLM.
type promptLog struct {
	generate.Generator
	mu     sync.Mutex
	inputs []generate.Input
}

func (p *promptLog) Generate(ctx context.Context, in generate.Input) (generate.Output, error) {
	p.mu.Lock()
	p.inputs = append(p.inputs, in)
	p.mu.Unlock()
	return p.Generator.Generate(ctx, in)
}

// mentions reports whether any recorded input carries s anywhere the
// generator reads: examples, DDL, documentation.
func (p *promptLog) mentions(s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, in := range p.inputs {
		for _, e := range in.Examples {
			if strings.Contains(e.SQL, s) || strings.Contains(e.Question, s) {
				return true
			}
		}
		for _, t := range append(append([]string{}, in.DDL...), in.Docs...) {
			if strings.Contains(t, s) {
				return true
			}
		}
	}
	return false
}

// newFeedbackEnv is newAskEnv with the operator token and a recording
// generator.
func newFeedbackEnv(t *testing.T) (*env, *promptLog) {
	t.Helper()
	d := dbtest.New(t)
	pool := d.AppPool(t, 8)
	db := tenant.New(pool)
	box, err := tenant.NewSandbox(context.Background(), d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	sql := sandbox.New(db, box)
	store := &nlsql.Store{DB: db, Embedder: embed.NewLocal()}
	gen := &promptLog{Generator: generate.NewOffline()}
	asker := ask.New(db, sql, store, gen)
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{AdminToken: operatorToken, SQL: sql, Ask: asker}))
	t.Cleanup(srv.Close)
	return &env{d: d, pool: pool, db: db, url: srv.URL}, gen
}

// feedbackJSON is a feedback entry as the generated client reads it.
type feedbackJSON = apiclient.Feedback

func (e *env) listFeedback(t *testing.T, key, query string) []feedbackJSON {
	t.Helper()
	var page struct {
		Items      []feedbackJSON `json:"items"`
		NextCursor *string        `json:"next_cursor"`
	}
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/feedback"+query, key, "", &page)
	require.NotNil(t, page.Items)
	return page.Items
}

// trainedSQL lists the SQL of the default model's pairs, with their sources.
func (e *env) trainedSQL(t *testing.T, key string) map[string]string {
	t.Helper()
	var page struct {
		Items []struct {
			Content string `json:"content"`
			Source  string `json:"source"`
		} `json:"items"`
	}
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/models/default/training-data?kind=sql", key, "", &page)
	out := map[string]string{}
	for _, it := range page.Items {
		out[it.Content] = it.Source
	}
	return out
}

func (e *env) askAs(t *testing.T, key, question string) askAnswer {
	t.Helper()
	status, body := e.send(t, http.MethodPost, "/v1/ask", key, map[string]any{"question": question})
	require.Equal(t, http.StatusOK, status, body)
	var a askAnswer
	require.NoError(t, json.Unmarshal([]byte(body), &a))
	return a
}

func requireNotRetrieved(t *testing.T, a askAnswer, sql string) {
	t.Helper()
	require.NotEqual(t, sql, a.SQL, "the offline generator did not reuse it")
	for _, s := range a.Context.Similar {
		require.NotEqual(t, sql, s.SQL, "retrieval did not find it")
	}
}

// A member's correction is recorded but trains nothing: retrieval, the
// generator's input and the offline generator's answer stay as they were
// until an admin approves it; then it trains exactly as an admin's own
// feedback does.
func TestMemberFeedbackWaitsForAnAdmin(t *testing.T) {
	t.Parallel()
	e, gen := newFeedbackEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	member := e.addUser(t, a.APIKey, "member@shop.test", "member")
	other := e.addUser(t, a.APIKey, "other@shop.test", "member")

	const question = "How many customers are in US?"
	// The member's chosen SQL: distinctive, valid, and not what the
	// generator writes for the question.
	corrected := "SELECT count(*) AS member_choice FROM customers WHERE country <> 'US'"
	first := e.askAs(t, member.Key, question)
	require.NotEqual(t, corrected, first.SQL)

	status, body := e.send(t, http.MethodPost, "/v1/history/"+first.HistoryID+"/feedback", member.Key,
		map[string]any{"correct": false, "sql": corrected})
	require.Equal(t, http.StatusAccepted, status, body)
	require.JSONEq(t, `{"trained":false,"review":"pending"}`, body)

	// Not trained: not in the training data, not retrieved, not in what the
	// generator was given, not the offline generator's answer, for the admin
	// and the member alike.
	require.NotContains(t, e.trainedSQL(t, a.APIKey), corrected)
	for _, key := range []string{a.APIKey, member.Key} {
		requireNotRetrieved(t, e.askAs(t, key, question), corrected)
		requireNotRetrieved(t, e.askAs(t, key, "how many customers are in US"), corrected)
	}
	require.False(t, gen.mentions("member_choice"), "no generator input carried the member's SQL")

	// The admin's queue shows it; the member sees their own; another member
	// sees nothing; so does another tenant.
	queue := e.listFeedback(t, a.APIKey, "")
	require.Len(t, queue, 1)
	fb := queue[0]
	require.Equal(t, first.HistoryID, fb.HistoryId.String())
	require.Equal(t, corrected, *fb.Sql)
	require.False(t, fb.Correct)
	require.Equal(t, member.ID, *fb.GivenBy)
	require.Equal(t, member.ID, *fb.AskedBy)
	require.Equal(t, question, *fb.Question)
	require.Equal(t, "pending", *fb.Status)
	require.Nil(t, fb.TrainingDataId)
	require.Nil(t, fb.ReviewedBy)
	require.Equal(t, queue, e.listFeedback(t, member.Key, "?status=pending"))
	require.Empty(t, e.listFeedback(t, other.Key, ""))
	b := dbtest.NewTenant(t, e.db, "Other")
	require.Empty(t, e.listFeedback(t, b.APIKey, ""))
	status, body = e.send(t, http.MethodPost, "/v1/history/"+first.HistoryID+"/feedback/review", b.APIKey, map[string]any{"decision": "approve"})
	require.Equal(t, http.StatusNotFound, status, body)

	// Only admins review.
	status, body = e.send(t, http.MethodPost, "/v1/history/"+first.HistoryID+"/feedback/review", member.Key, map[string]any{"decision": "approve"})
	require.Equal(t, http.StatusForbidden, status, body)
	status, body = e.send(t, http.MethodPost, "/v1/history/"+first.HistoryID+"/feedback/review", a.APIKey, map[string]any{"decision": "maybe"})
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, `"field":"decision"`)
	require.NotContains(t, e.trainedSQL(t, a.APIKey), corrected)

	// Approval trains it: the next question retrieves it and the offline
	// generator reuses it, as with an admin's feedback.
	var approved feedbackJSON
	e.expectJSON(t, http.StatusOK, http.MethodPost, "/v1/history/"+first.HistoryID+"/feedback/review", a.APIKey,
		`{"decision":"approve"}`, &approved)
	require.Equal(t, "approved", *approved.Status)
	require.Equal(t, a.AdminID, *approved.ReviewedBy)
	require.NotNil(t, approved.ReviewedAt)
	require.NotNil(t, approved.TrainingDataId)
	require.Equal(t, map[string]string{corrected: "feedback"}, e.trainedSQL(t, a.APIKey))
	again := e.askAs(t, a.APIKey, "how many customers are in US")
	require.NotEmpty(t, again.Context.Similar)
	require.Equal(t, corrected, again.Context.Similar[0].SQL)
	require.Equal(t, corrected, again.SQL)
	require.True(t, gen.mentions("member_choice"))

	// Reviewed once: a second review is a conflict and trains nothing more.
	for _, decision := range []string{"approve", "reject"} {
		status, body = e.send(t, http.MethodPost, "/v1/history/"+first.HistoryID+"/feedback/review", a.APIKey, map[string]any{"decision": decision})
		require.Equal(t, http.StatusConflict, status, body)
		require.Contains(t, body, "already approved")
	}
	require.Empty(t, e.listFeedback(t, a.APIKey, ""))
	require.Len(t, e.listFeedback(t, a.APIKey, "?status=approved"), 1)
	require.Len(t, e.trainedSQL(t, a.APIKey), 1)

	// Rejection trains nothing. A member's confirmation ("correct") is
	// queued too: the question is theirs.
	second := e.askAs(t, member.Key, "How many orders are there?")
	status, body = e.send(t, http.MethodPost, "/v1/history/"+second.HistoryID+"/feedback", member.Key, map[string]any{"correct": true})
	require.Equal(t, http.StatusAccepted, status, body)
	var rejected feedbackJSON
	e.expectJSON(t, http.StatusOK, http.MethodPost, "/v1/history/"+second.HistoryID+"/feedback/review", a.APIKey,
		`{"decision":"reject"}`, &rejected)
	require.Equal(t, "rejected", *rejected.Status)
	require.True(t, rejected.Correct)
	require.Nil(t, rejected.TrainingDataId)
	require.Len(t, e.trainedSQL(t, a.APIKey), 1, "nothing trained")
	require.Len(t, e.listFeedback(t, member.Key, "?status=rejected"), 1)

	// A member's SQL is validated when given: nothing unusable is queued.
	third := e.askAs(t, member.Key, question)
	status, body = e.send(t, http.MethodPost, "/v1/history/"+third.HistoryID+"/feedback", member.Key,
		map[string]any{"correct": false, "sql": "SELECT * FROM pg_authid"})
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, `"code":"sql_rejected"`)
	// Another member's entry is out of reach (404, as for any unknown id).
	status, body = e.send(t, http.MethodPost, "/v1/history/"+third.HistoryID+"/feedback", other.Key, map[string]any{"correct": true})
	require.Equal(t, http.StatusNotFound, status, body)
	// Newer feedback replaces the pending one; approval trains the newer.
	status, _ = e.send(t, http.MethodPost, "/v1/history/"+third.HistoryID+"/feedback", member.Key,
		map[string]any{"correct": false, "sql": "SELECT count(*) AS first_try FROM customers"})
	require.Equal(t, http.StatusAccepted, status)
	status, _ = e.send(t, http.MethodPost, "/v1/history/"+third.HistoryID+"/feedback", member.Key,
		map[string]any{"correct": false, "sql": "SELECT count(*) AS second_try FROM customers"})
	require.Equal(t, http.StatusAccepted, status)
	queue = e.listFeedback(t, a.APIKey, "")
	require.Len(t, queue, 1)
	require.Equal(t, "SELECT count(*) AS second_try FROM customers", *queue[0].Sql)
	e.expectJSON(t, http.StatusOK, http.MethodPost, "/v1/history/"+third.HistoryID+"/feedback/review", a.APIKey, `{"decision":"approve"}`, nil)
	trained := e.trainedSQL(t, a.APIKey)
	require.Contains(t, trained, "SELECT count(*) AS second_try FROM customers")
	require.NotContains(t, trained, "SELECT count(*) AS first_try FROM customers")

	// An entry with no feedback to review is 404.
	fourth := e.askAs(t, member.Key, question)
	status, body = e.send(t, http.MethodPost, "/v1/history/"+fourth.HistoryID+"/feedback/review", a.APIKey, map[string]any{"decision": "approve"})
	require.Equal(t, http.StatusNotFound, status, body)
}

// An admin's feedback trains at once and is on record as approved by them.
func TestAdminFeedbackTrainsAtOnce(t *testing.T) {
	t.Parallel()
	e, gen := newFeedbackEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))

	corrected := "SELECT count(*) AS admin_choice FROM customers WHERE country <> 'US'"
	first := e.askAs(t, a.APIKey, "How many customers are in US?")
	var res struct {
		Trained        bool      `json:"trained"`
		TrainingDataID uuid.UUID `json:"training_data_id"`
	}
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/history/"+first.HistoryID+"/feedback", a.APIKey,
		fmt.Sprintf(`{"correct":false,"sql":%q}`, corrected), &res)
	require.True(t, res.Trained)
	require.Equal(t, map[string]string{corrected: "feedback"}, e.trainedSQL(t, a.APIKey))
	again := e.askAs(t, a.APIKey, "how many customers are in US")
	require.Equal(t, corrected, again.SQL)
	require.True(t, gen.mentions("admin_choice"))

	require.Empty(t, e.listFeedback(t, a.APIKey, ""), "nothing waits for review")
	done := e.listFeedback(t, a.APIKey, "?status=approved")
	require.Len(t, done, 1)
	require.Equal(t, a.AdminID, *done[0].GivenBy)
	require.Equal(t, a.AdminID, *done[0].ReviewedBy)
	require.Equal(t, res.TrainingDataID, *done[0].TrainingDataId)

	// A plain "incorrect" trains nothing and queues nothing.
	status, body := e.send(t, http.MethodPost, "/v1/history/"+again.HistoryID+"/feedback", a.APIKey, map[string]any{"correct": false})
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"trained":false}`, body)
	require.Len(t, e.trainedSQL(t, a.APIKey), 1)
}

// Approval marks the feedback approved in the transaction that inserts the
// training row, on the condition that it is still pending: of many
// concurrent approvals exactly one trains, the others are conflicts whose
// inserts roll back.
func TestConcurrentApprovalsTrainOnce(t *testing.T) {
	t.Parallel()
	e, _ := newFeedbackEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	member := e.addUser(t, a.APIKey, "member@shop.test", "member")

	for round := range 3 {
		h := e.askAs(t, member.Key, "How many customers are in US?")
		sql := fmt.Sprintf("SELECT count(*) AS round_%d FROM customers", round)
		status, body := e.send(t, http.MethodPost, "/v1/history/"+h.HistoryID+"/feedback", member.Key, map[string]any{"correct": false, "sql": sql})
		require.Equal(t, http.StatusAccepted, status, body)

		const n = 6
		type reply struct {
			status int
			body   string
		}
		replies := make(chan reply, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				status, body := e.callJSON(t, http.MethodPost, "/v1/history/"+h.HistoryID+"/feedback/review", a.APIKey, `{"decision":"approve"}`)
				replies <- reply{status, body}
			})
		}
		wg.Wait()
		close(replies)
		ok := 0
		for r := range replies {
			if r.status == http.StatusOK {
				ok++
				continue
			}
			require.Equal(t, http.StatusConflict, r.status, r.body)
		}
		require.Equal(t, 1, ok, "round %d: exactly one approval wins", round)
		require.Len(t, e.trainedSQL(t, a.APIKey), round+1, "round %d: one training row per approved feedback", round)
	}
}

// A question the generator refuses is recorded with its reason, and the
// refusal names that history entry; an admin answers it with SQL through
// the entry's feedback, which trains the pair, and the same question is
// then answered with that SQL.
func TestRefusedQuestionIsTeachable(t *testing.T) {
	t.Parallel()
	e, _ := newFeedbackEnv(t)
	ctx := context.Background()
	a := dbtest.NewTenant(t, e.db, "Shop")
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))

	const question = "Which customers ordered more than once?"
	status, body := e.send(t, http.MethodPost, "/v1/ask", a.APIKey, map[string]any{"question": question})
	require.Equal(t, http.StatusUnprocessableEntity, status, body)
	var refusal struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details struct {
				HistoryID string `json:"history_id"`
			} `json:"details"`
		} `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &refusal))
	require.Equal(t, "no_sql_generated", refusal.Error.Code)
	require.Contains(t, refusal.Error.Message, "I could not use")
	id := refusal.Error.Details.HistoryID
	require.NotEmpty(t, id, body)

	var entry histItem
	e.expectJSON(t, http.StatusOK, http.MethodGet, "/v1/history/"+id, a.APIKey, "", &entry)
	require.Equal(t, apiclient.HistoryStatusRejected, entry.Status)
	require.Equal(t, question, *entry.Question)
	require.Equal(t, refusal.Error.Message, *entry.Error)
	require.Nil(t, entry.GeneratedSql)

	const taught = "SELECT customer_id, count(*) AS orders FROM orders GROUP BY customer_id HAVING count(*) > 1 ORDER BY customer_id"
	var res struct {
		Trained bool `json:"trained"`
	}
	e.expectJSON(t, http.StatusCreated, http.MethodPost, "/v1/history/"+id+"/feedback", a.APIKey,
		fmt.Sprintf(`{"correct":false,"sql":%q}`, taught), &res)
	require.True(t, res.Trained)

	again := e.askAs(t, a.APIKey, question)
	require.Equal(t, taught, again.SQL)
	require.Len(t, again.Rows, 1) // customer 1 ordered twice
}
