package ask_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/conversation"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// fakeOpenAI records every prompt and answers with reply (set per test), in
// the OpenAI chat-completions shape, or Gemini's generateContent shape when
// gemini is set.
type fakeOpenAI struct {
	mu      sync.Mutex
	prompts []string
	reply   func(prompt string) string
	gemini  bool
}

func (f *fakeOpenAI) start(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.prompts = append(f.prompts, string(b))
		reply := f.reply(string(b))
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if f.gemini {
			_ = json.NewEncoder(w).Encode(map[string]any{"candidates": []map[string]any{
				{"content": map[string]any{"role": "model", "parts": []map[string]any{{"text": reply}}}}}})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"id": "x", "object": "chat.completion", "created": 1, "model": "m",
			"choices": []map[string]any{{"index": 0, "finish_reason": "stop", "message": map[string]any{"role": "assistant", "content": reply}}}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

type world struct {
	db    *tenant.DB
	svc   *ask.Service
	store *nlsql.Store
	a, b  dbtest.Tenant
}

// newWorld is two demo shops; B's training data carries bMarker in every
// kind, and A has a second model "y" whose data carries yMarker.
func newWorld(t *testing.T, gen generate.Generator) *world {
	t.Helper()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	box, err := tenant.NewSandbox(ctx, d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	sql := sandbox.New(db, box)
	store := &nlsql.Store{DB: db, Embedder: embed.NewLocal()}
	w := &world{db: db, store: store, svc: ask.New(db, sql, store, gen)}
	w.a = dbtest.NewTenant(t, db, "A")
	w.b = dbtest.NewTenant(t, db, "B")
	for _, tn := range []dbtest.Tenant{w.a, w.b} {
		require.NoError(t, db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	}
	w.train(t, w.b, "default",
		nlsql.NewItem{Kind: nlsql.KindSQL, Question: "How many customers do we have bmarker?", Content: "SELECT count(*) AS bmarker FROM customers"},
		nlsql.NewItem{Kind: nlsql.KindDDL, Content: "CREATE TABLE customers (bmarker_col text)"},
		nlsql.NewItem{Kind: nlsql.KindDocumentation, Content: "customers bmarker documentation"})
	w.train(t, w.a, "default",
		nlsql.NewItem{Kind: nlsql.KindSQL, Question: "How many customers do we have?", Content: "SELECT count(*) FROM customers"},
		nlsql.NewItem{Kind: nlsql.KindDocumentation, Content: "customers are people who bought something"})
	require.NoError(t, db.TxAs(ctx, w.a.Identity, func(tx tenant.Conn) error {
		_, err := nlsql.CreateModel(ctx, tx, nlsql.NewModel{Name: "y"})
		return err
	}))
	w.train(t, w.a, "y", nlsql.NewItem{Kind: nlsql.KindDocumentation, Content: "customers ymarker documentation"})
	return w
}

func (w *world) train(t *testing.T, tn dbtest.Tenant, model string, items ...nlsql.NewItem) {
	t.Helper()
	ctx := tenant.NewContext(context.Background(), tn.Identity)
	var id uuid.UUID
	require.NoError(t, w.db.Tx(ctx, func(tx tenant.Conn) error {
		var err error
		id, err = nlsql.ModelID(ctx, tx, model)
		return err
	}))
	_, err := w.store.Add(ctx, id, items, "user")
	require.NoError(t, err)
}

func (w *world) ask(tn dbtest.Tenant, q ask.Request) (ask.Answer, error) {
	return w.svc.Ask(tenant.NewContext(context.Background(), tn.Identity), q)
}

func TestPromptsNeverCarryAnotherTenantsOrModelsData(t *testing.T) {
	t.Parallel()
	for _, provider := range []string{"openai", "gemini"} {
		t.Run(provider, func(t *testing.T) {
			t.Parallel()
			f := &fakeOpenAI{gemini: provider == "gemini", reply: func(string) string { return "```sql\nSELECT count(*) FROM customers\n```" }}
			var gen generate.Generator = generate.NewOpenAI(f.start(t)+"/v1", "k", "m")
			if f.gemini {
				g, err := generate.NewGemini(context.Background(), "gemini-test-key", "", f.start(t))
				require.NoError(t, err)
				t.Cleanup(func() { _ = g.Close() })
				gen = g
			}
			promptsStayInTheirTenantAndModel(t, f, gen)
		})
	}
}

func promptsStayInTheirTenantAndModel(t *testing.T, f *fakeOpenAI, gen generate.Generator) {
	w := newWorld(t, gen)
	for _, q := range []string{"How many customers do we have?", "count the customers please", "documentation about customers"} {
		a, err := w.ask(w.a, ask.Request{Question: q, Execute: true})
		require.NoError(t, err, q)
		require.Equal(t, []string{`"4"`}, []string{string(a.Rows[0][0])})
		require.Equal(t, "Count of customers", a.Interpretation, "computed from the SQL, whichever generator wrote it")
		b, _ := json.Marshal(a)
		require.NotContains(t, string(b), "bmarker")
	}
	_, err := w.ask(w.a, ask.Request{Question: "customers documentation", Model: "y", Execute: true})
	require.NoError(t, err)
	require.Len(t, f.prompts, 4)
	for i, p := range f.prompts {
		require.NotContains(t, p, "bmarker", "prompt %d carried tenant B's training data", i)
		if i < 3 {
			require.NotContains(t, p, "ymarker", "a prompt for model default carried model y's data")
		}
	}
	require.Contains(t, f.prompts[0], "SELECT count(*) FROM customers", "A's own pair is in A's prompt")
	require.Contains(t, f.prompts[3], "ymarker", "model y's prompt has model y's data")
}

func TestOfflineAnswersTheDemoQuestion(t *testing.T) {
	t.Parallel()
	w := newWorld(t, generate.NewOffline())
	a, err := w.ask(w.a, ask.Request{Question: "How many customers do we have?", Execute: true})
	require.NoError(t, err)
	require.Equal(t, `"4"`, string(a.Rows[0][0]))
	require.Equal(t, "offline", a.Generator)
	require.Equal(t, "Count of customers", a.Interpretation)
	require.NotZero(t, a.HistoryID)
	require.NotEmpty(t, a.Context.Similar)

	_, err = w.ask(w.a, ask.Request{Question: "What is the meaning of life?", Execute: true})
	require.Equal(t, apperr.NoSQL, apperr.CodeOf(err))

	// execute=false validates and records, without rows.
	a, err = w.ask(w.a, ask.Request{Question: "List all orders", Execute: false})
	require.NoError(t, err)
	require.Empty(t, a.Rows)
	require.Contains(t, a.SQL, "orders")
	require.Contains(t, a.Interpretation, "orders", "the validated statement is described too")
}

// A generator that returns an attack is contained exactly like /v1/sql.
func TestHostileGeneratedSQLIsContained(t *testing.T) {
	t.Parallel()
	var attack string
	f := &fakeOpenAI{reply: func(string) string { return "```sql\n" + attack + "\n```" }}
	w := newWorld(t, generate.NewOpenAI(f.start(t)+"/v1", "k", "m"))
	w.svc.Corrections = -1
	bSchema := tenant.Schema(w.b.ID)
	for _, attack = range []string{
		"DELETE FROM customers",
		"SELECT * FROM " + bSchema + ".customers",
		"SELECT set_config('app.tenant_id', '" + w.b.ID.String() + "', true), * FROM customers",
		"SELECT * FROM dbchat.api_keys",
		"SELECT 1; DROP TABLE customers",
		"SELECT pg_sleep(30)",
	} {
		a, err := w.ask(w.a, ask.Request{Question: "anything", Execute: true})
		if err == nil {
			b, _ := json.Marshal(a)
			require.NotContains(t, string(b), "Grace Hopper B", attack)
			continue
		}
		require.Contains(t, []apperr.Code{apperr.SQLRejected, apperr.SQLFailed, apperr.NoSQL}, apperr.CodeOf(err), "%s: %v", attack, err)
	}
	// Still healthy, and A's data is intact.
	attack = "SELECT count(*) FROM customers"
	a, err := w.ask(w.a, ask.Request{Question: "x", Execute: true})
	require.NoError(t, err)
	require.Equal(t, `"4"`, string(a.Rows[0][0]))
}

// One correction round: the generator sees the database's error and fixes it.
func TestCorrectionRound(t *testing.T) {
	t.Parallel()
	f := &fakeOpenAI{reply: func(p string) string {
		if strings.Contains(p, "failed with") {
			return "```sql\nSELECT count(*) FROM customers\n```"
		}
		return "```sql\nSELECT count(*) FROM customers WHERE nosuchcolumn = 1\n```"
	}}
	w := newWorld(t, generate.NewOpenAI(f.start(t)+"/v1", "k", "m"))
	a, err := w.ask(w.a, ask.Request{Question: "How many customers?", Execute: true})
	require.NoError(t, err)
	require.Equal(t, "SELECT count(*) FROM customers", a.SQL)
	require.Equal(t, "Count of customers", a.Interpretation, "the statement that ran, not the one that failed")
	require.Len(t, f.prompts, 2)
	require.Contains(t, f.prompts[1], "nosuchcolumn", "the second prompt shows the failed SQL and its error")
}

// No result value reaches a prompt: an answer's rows (customer names) are
// not in the next question's prompt, which does carry the earlier turn's
// question and SQL (a conversation's follow-up), nor in any other prompt.
func TestPromptsNeverCarryResultRows(t *testing.T) {
	t.Parallel()
	const sql = "SELECT name, country FROM customers ORDER BY id"
	f := &fakeOpenAI{reply: func(string) string { return "```sql\n" + sql + "\n```" }}
	w := newWorld(t, generate.NewOpenAI(f.start(t)+"/v1", "k", "m"))
	first, err := w.ask(w.a, ask.Request{Question: "Who are our customers?", Execute: true})
	require.NoError(t, err)
	require.Len(t, first.Rows, 4)
	var values []string
	for _, row := range first.Rows {
		for _, v := range row {
			var s string
			require.NoError(t, json.Unmarshal(v, &s))
			values = append(values, s)
		}
	}
	require.Contains(t, values, "Grace Hopper")
	turns := []generate.Turn{{Question: first.ResolvedQuestion, SQL: first.SQL}}
	_, err = w.ask(w.a, ask.Request{Question: "and only those in US?", Execute: true, Turns: turns})
	require.NoError(t, err)

	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.prompts, 2)
	require.Contains(t, f.prompts[1], "Who are our customers?", "the follow-up's prompt carries the earlier turn")
	require.Contains(t, f.prompts[1], "SELECT name, country FROM customers")
	for _, p := range f.prompts {
		for _, v := range values {
			if len(v) > 2 { // country codes are also words of the question ("US")
				require.NotContains(t, p, v, "a result value in a prompt")
			}
		}
	}
}

// llm_data_access: off (the default), the LLM is asked for SQL only and the
// summary is computed (summary_by "dbchat"); on, it also gets one summary
// prompt with a bounded sample of the rows and its text is the summary.
func TestLLMDataAccessGatesSummaries(t *testing.T) {
	t.Parallel()
	f := &fakeOpenAI{reply: func(prompt string) string {
		if strings.Contains(prompt, "You summarise") {
			return "Four customers, two of them in the US."
		}
		return "```sql\nSELECT name, country FROM customers ORDER BY id\n```"
	}}
	w := newWorld(t, generate.NewOpenAI(f.start(t)+"/v1", "k", "m"))
	a, err := w.ask(w.a, ask.Request{Question: "Who are our customers?", Execute: true})
	require.NoError(t, err)
	require.Equal(t, "dbchat", a.SummaryBy)
	f.mu.Lock()
	require.Len(t, f.prompts, 1)
	require.NotContains(t, f.prompts[0], "Grace Hopper")
	f.mu.Unlock()

	require.NoError(t, w.db.TxAs(context.Background(), w.a.Identity, func(tx tenant.Conn) error {
		_, err := dbsqlc.New().SetLLMDataAccess(context.Background(), tx, true)
		return err
	}))
	a, err = w.ask(w.a, ask.Request{Question: "Who are our customers?", Execute: true})
	require.NoError(t, err)
	require.Equal(t, "Four customers, two of them in the US.", a.Summary)
	require.Equal(t, "openai:m", a.SummaryBy)
	f.mu.Lock()
	require.Len(t, f.prompts, 3)
	require.Contains(t, f.prompts[2], "Grace Hopper", "the summary prompt carries the sample")
	f.mu.Unlock()

	// B never turned it on: its answers send no rows.
	_, err = w.ask(w.b, ask.Request{Question: "Who are our customers?", Execute: true})
	require.NoError(t, err)
	f.mu.Lock()
	defer f.mu.Unlock()
	require.Len(t, f.prompts, 4)
	require.NotContains(t, f.prompts[3], "Grace Hopper")
}

// SampleOf bounds what a summary prompt may carry.
func TestSampleIsBounded(t *testing.T) {
	rows := make([][]string, 100)
	for i := range rows {
		rows[i] = []string{strings.Repeat("v", 300), "x"}
	}
	s := generate.SampleOf("q", "SELECT 1", []string{"a", "b"}, rows)
	require.Equal(t, 100, s.RowCount)
	require.LessOrEqual(t, len(s.Rows), generate.MaxSampleRows)
	size := 0
	for _, r := range s.Rows {
		require.LessOrEqual(t, len(r[0]), generate.MaxSampleValue+len("…"))
		size += len(r[0]) + len(r[1])
	}
	require.LessOrEqual(t, size, generate.MaxSampleBytes)
	require.NotContains(t, generate.SummaryPrompt(s), strings.Repeat("v", generate.MaxSampleValue+1))
}

// An executed question costs six round trips on the runtime pool: the
// model, the set sizes (with the sandbox's policy), the search, the
// catalog (with COMMIT), the receipt with the history write, and the usage
// rollup. Each fold (tenant.Conn.Defer) is pinned here.
func TestAskRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db, writes := d.CountingTenants(t)
	box, err := tenant.NewSandbox(ctx, d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	store := &nlsql.Store{DB: db, Embedder: embed.NewLocal()}
	w := &world{db: db, store: store, svc: ask.New(db, sandbox.New(db, box), store, generate.NewOffline())}
	a := dbtest.NewTenant(t, db, "A")
	require.NoError(t, db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }))
	w.train(t, a, "default", nlsql.NewItem{Kind: nlsql.KindSQL, Question: "How many customers do we have?", Content: "SELECT count(*) FROM customers"})
	actx := tenant.NewContext(ctx, a.Identity)
	svc := w.svc
	for i := range 2 { // the first pass prepares the statements
		writes.Store(0)
		ans, err := svc.Ask(actx, ask.Request{Question: "How many customers do we have?", Execute: true})
		require.NoError(t, err)
		require.Equal(t, `"4"`, string(ans.Rows[0][0]))
		require.Len(t, ans.Security.Tables, 1, "the receipt was read")
		if i == 1 {
			require.Equal(t, int64(6), writes.Load(), "round trips of one question")
		}
	}

	// A conversation's turn adds reading the conversation and recording
	// the turn, and saves the model's lookup (the conversation names it).
	conv := conversation.New(db, svc)
	c, err := conv.Create(actx, "", "counted")
	require.NoError(t, err)
	for i := range 2 {
		writes.Store(0)
		turn, err := conv.Ask(actx, c.ID, ask.Request{Question: "How many customers do we have?"})
		require.NoError(t, err)
		require.Equal(t, `"4"`, string(turn.Answer.Rows[0][0]))
		if i == 1 {
			require.Equal(t, int64(7), writes.Load(), "round trips of one turn")
		}
	}
}
