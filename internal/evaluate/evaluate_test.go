package evaluate_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/evaluate"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/tenantio"
)

type shop struct {
	*dbtest.Sandboxed
	ask     *ask.Service
	svc     *evaluate.Service
	tn      dbtest.Tenant
	ctx     context.Context
	modelID uuid.UUID
}

// newShop is the demo tenant with the offline generator and an evaluation
// service that may erase canary tenants.
func newShop(t *testing.T) *shop {
	t.Helper()
	s := &shop{Sandboxed: dbtest.NewSandboxed(t, 4)}
	s.tn, s.ctx = s.DemoTenant(t, "Shop")
	store := &nlsql.Store{DB: s.Tenants, Embedder: embed.NewLocal()}
	s.ask = ask.New(s.Tenants, s.SQL, store, generate.NewOffline())
	s.svc = &evaluate.Service{DB: s.Tenants, Ask: s.ask, Privileged: func(ctx context.Context) (*pgx.Conn, error) {
		return pgx.Connect(ctx, s.AdminURL)
	}}
	require.NoError(t, s.Tenants.Once(s.ctx, func(tx tenant.Conn) error {
		var err error
		s.modelID, err = nlsql.ModelID(s.ctx, tx, provision.DefaultModel)
		return err
	}))
	return s
}

// pair adds a training pair, verified or not, and returns its id.
func (s *shop) pair(t *testing.T, question, sql string, verified bool) uuid.UUID {
	t.Helper()
	items, err := s.ask.Store.AddWith(s.ctx, s.modelID, []nlsql.NewItem{{Kind: nlsql.KindSQL, Question: question, Content: sql}}, nlsql.SourceUser,
		func(ctx context.Context, tx tenant.Conn, added []nlsql.Item) error {
			if !verified {
				return nil
			}
			return nlsql.MarkVerified(ctx, tx, s.modelID, added)
		})
	require.NoError(t, err)
	require.Equal(t, verified, items[0].Verified)
	return items[0].ID
}

// TestEvaluateDemoTenant runs an evaluation of the demo tenant with the
// offline generator over four verified pairs: one it answers exactly, one
// whose gold SQL selects fewer columns than it answers (subset match), a
// planted wrong pair whose gold SQL answers something else, and one it
// refuses; an unverified pair is not evaluated. The planted pair is counted
// wrong only because it is left out of its own retrieval: asked with its
// pair retrievable, the offline generator reuses the pair's SQL verbatim.
func TestEvaluateDemoTenant(t *testing.T) {
	s := newShop(t)
	exact := s.pair(t, "how many customers are there", "SELECT count(*) FROM customers", true)
	sub := s.pair(t, "list the customers", "SELECT name, country FROM customers", true)
	planted := s.pair(t, "what is the total amount of orders", "SELECT count(*) FROM orders", true)
	refused := s.pair(t, "what is the meaning of life", "SELECT 42", true)
	s.pair(t, "how many orders are there", "SELECT count(*) FROM orders", false)

	// The control: with its pair retrievable, the planted question gets
	// the pair's own (wrong) SQL back.
	a, err := s.ask.Ask(s.ctx, ask.Request{Question: "what is the total amount of orders", Execute: true})
	require.NoError(t, err)
	require.Equal(t, "SELECT count(*) FROM orders", a.SQL)
	require.True(t, a.GroundedOnVerified)

	run, err := s.svc.Evaluate(s.ctx, provision.DefaultModel)
	require.NoError(t, err)
	require.Equal(t, 4, run.Pairs)
	byID := map[uuid.UUID]evaluate.Result{}
	for _, r := range run.Results {
		byID[r.TrainingID] = r
		require.NotContains(t, r.Retrieved, r.TrainingID, "leave-one-out: %q retrieved its own pair", r.Question)
	}
	require.Equal(t, evaluate.Correct, byID[exact].Outcome)
	require.True(t, byID[exact].ExactMatch)
	require.Equal(t, evaluate.Correct, byID[sub].Outcome, "%+v", byID[sub])
	require.False(t, byID[sub].ExactMatch)
	require.True(t, byID[sub].SubsetMatch)
	require.Equal(t, evaluate.Wrong, byID[planted].Outcome, "%+v", byID[planted])
	require.NotEqual(t, "SELECT count(*) FROM orders", *byID[planted].GeneratedSQL)
	require.Equal(t, evaluate.Refused, byID[refused].Outcome)
	require.NotEmpty(t, byID[refused].Error)
	require.Equal(t, []int{1, 2, 1, 1, 0}, []int{run.ExactCorrect, run.SubsetCorrect, run.Wrong, run.Refused, run.Errors})
	require.Equal(t, 0.25, *run.ExactAccuracy)
	require.Zero(t, *run.TokensIn, "the offline generator calls no LLM")
	require.Equal(t, 0.5, *run.SubsetAccuracy)
	require.Equal(t, "offline", run.Generator)

	// The canary: planted, not seen, erased without a trace.
	require.Equal(t, evaluate.NotSeen, run.Canary.Status, "%+v", run.Canary)
	require.True(t, run.Canary.Erased, "%+v", run.Canary)
	requireCanaryGone(t, s)

	// Stored: the run reads back with its results, newest first.
	var runs []evaluate.Run
	var got evaluate.Run
	require.NoError(t, s.Tenants.Tx(s.ctx, func(tx tenant.Conn) error {
		if runs, err = evaluate.List(s.ctx, tx, provision.DefaultModel); err != nil {
			return err
		}
		got, err = evaluate.Get(s.ctx, tx, provision.DefaultModel, run.ID)
		return err
	}))
	require.Len(t, runs, 1)
	require.Equal(t, run.ID, runs[0].ID)
	require.Empty(t, runs[0].Results)
	require.Len(t, got.Results, 4)
	require.Equal(t, run.Canary, got.Canary)
	require.Equal(t, *run.ExactAccuracy, *got.ExactAccuracy)
	for i, r := range got.Results {
		want := run.Results[i]
		want.Retrieved = nil
		require.Equal(t, want, r)
	}
}

// requireCanaryGone finds the canary tenants in the erasure log and scans
// the whole database for their ids, as erase's evidence does.
func requireCanaryGone(t *testing.T, s *shop) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.AdminURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	require.NoError(t, pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT tenant_id FROM `+tenantio.ErasureLog+` WHERE operator = $1`, evaluate.CanaryOperator)
		require.NoError(t, err)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		require.NoError(t, err)
		require.NotEmpty(t, ids)
		for _, id := range ids {
			scan, err := tenantio.ScanFor(ctx, tx, id)
			require.NoError(t, err)
			require.True(t, scan.Clean(), "canary tenant %s left %+v", id, scan)
		}
		var n int
		require.NoError(t, tx.QueryRow(ctx, `SELECT count(*) FROM dbchat.tenants WHERE slug LIKE 'canary-%'`).Scan(&n))
		require.Zero(t, n)
		return nil
	}))
}

// leaky asks as the canary tenant whenever one exists: the bug a leakage
// canary is for (a request served under another tenant's context).
type leaky struct {
	svc   *ask.Service
	admin string
}

func (l leaky) Ask(ctx context.Context, req ask.Request) (ask.Answer, error) {
	conn, err := pgx.Connect(ctx, l.admin)
	if err != nil {
		return ask.Answer{}, err
	}
	defer conn.Close(ctx)
	var id tenant.Identity
	err = conn.QueryRow(ctx, `SELECT t.id, u.id FROM dbchat.tenants t JOIN dbchat.users u ON u.tenant_id = t.id
		WHERE t.slug LIKE 'canary-%'`).Scan(&id.TenantID, &id.UserID)
	if err == nil {
		id.Role, req.Model = tenant.Admin, provision.DefaultModel
		ctx = tenant.NewContext(ctx, id)
	}
	return l.svc.Ask(ctx, req)
}

// TestCanarySeesALeak proves the canary can fail: with a pipeline that
// answers under the canary tenant's context, the run reports the marker
// seen (the canary's own pair is retrieved and its SQL reused), and the
// canary tenant is still erased.
func TestCanarySeesALeak(t *testing.T) {
	s := newShop(t)
	s.pair(t, "how many customers are there", "SELECT count(*) FROM customers", true)
	s.svc.SetAsker(leaky{svc: s.ask, admin: s.AdminURL})
	run, err := s.svc.Evaluate(s.ctx, provision.DefaultModel)
	require.NoError(t, err)
	require.Equal(t, evaluate.Seen, run.Canary.Status, "%+v", run.Canary)
	require.Equal(t, `the rows of the answer to "show the canary markers"`, run.Canary.Where)
	require.True(t, run.Canary.Erased)
	requireCanaryGone(t, s)
}

// TestCheck: the checker finds a planted marker in every part of an
// answer, in any case, and in an error; clean answers are not_seen.
func TestCheck(t *testing.T) {
	const marker = "cnry0123abcd"
	clean := evaluate.Probe{Question: "q0", Answer: ask.Answer{SQL: "SELECT 1", Summary: "one row"}}
	for where, p := range map[string]evaluate.Probe{
		"the SQL":                        {Answer: ask.Answer{SQL: "SELECT 'cnry0123abcd'"}},
		"the summary":                    {Answer: ask.Answer{Summary: "The marker is CNRY0123ABCD."}},
		"the retrieved training context": {Answer: ask.Answer{Context: ask.AnswerContext{Similar: []ask.Similar{{SQL: "x cnry0123abcd"}}}}},
		"the suggestions":                {Answer: ask.Answer{Suggestions: []string{"what is cnry0123abcd?"}}},
		"the error":                      {Err: apperr.Errorf(apperr.SQLFailed, "column cnry0123abcd does not exist")},
	} {
		p.Question = "q1"
		c := evaluate.Check(marker, []evaluate.Probe{clean, p})
		require.Equal(t, evaluate.Seen, c.Status, where)
		require.Equal(t, where+` of the answer to "q1"`, c.Where)
		require.Equal(t, []string{"q0", "q1"}, c.Questions)
	}
	require.Equal(t, evaluate.NotSeen, evaluate.Check(marker, []evaluate.Probe{clean, {Err: apperr.Errorf(apperr.NoSQL, "no")}}).Status)
}

// cancelling cancels the request's context once it has answered one
// question, as a client that goes away does.
type cancelling struct {
	svc    *ask.Service
	cancel context.CancelFunc
}

func (c cancelling) Ask(ctx context.Context, req ask.Request) (ask.Answer, error) {
	defer c.cancel()
	return c.svc.Ask(ctx, req)
}

// TestEvaluateCancelled: a request cancelled mid-run stops it, and nothing
// is recorded.
func TestEvaluateCancelled(t *testing.T) {
	s := newShop(t)
	s.pair(t, "how many customers are there", "SELECT count(*) FROM customers", true)
	s.pair(t, "how many orders are there", "SELECT count(*) FROM orders", true)
	ctx, cancel := context.WithCancel(s.ctx)
	s.svc.SetAsker(cancelling{svc: s.ask, cancel: cancel})
	_, err := s.svc.Evaluate(ctx, provision.DefaultModel)
	require.Error(t, err)
	var runs []evaluate.Run
	require.NoError(t, s.Tenants.Tx(s.ctx, func(tx tenant.Conn) error {
		runs, err = evaluate.List(s.ctx, tx, provision.DefaultModel)
		return err
	}))
	require.Empty(t, runs)
}

// tokens is a generator that reports 30 tokens in and 10 out a call.
type tokens struct{ generate.Generator }

func (g tokens) Generate(ctx context.Context, in generate.Input) (generate.Output, error) {
	out, err := g.Generator.Generate(ctx, in)
	out.Usage = generate.Usage{Calls: 1, TokensIn: 30, TokensOut: 10}
	return out, err
}

// TestEvaluateRefusals: an unknown model is 404, a model without verified
// pairs 400, and without a privileged connection the canary is skipped
// with its reason (and no tenant is created).
func TestEvaluateRefusals(t *testing.T) {
	s := newShop(t)
	_, err := s.svc.Evaluate(s.ctx, "nope")
	require.Equal(t, apperr.NotFound, apperr.CodeOf(err))
	_, err = s.svc.Evaluate(s.ctx, provision.DefaultModel)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	require.Contains(t, err.Error(), "no verified pairs")

	s.pair(t, "how many customers are there", "SELECT count(*) FROM customers", true)
	s.svc.Privileged = nil
	s.ask.Generator = tokens{s.ask.Generator}
	run, err := s.svc.Evaluate(s.ctx, provision.DefaultModel)
	require.NoError(t, err)
	require.Equal(t, []int64{30, 10}, []int64{*run.TokensIn, *run.TokensOut}, "the generator's reported tokens, summed")
	require.Equal(t, evaluate.Skipped, run.Canary.Status)
	require.Contains(t, run.Canary.Reason, "DBCHAT_CANARY_DATABASE_URL")
	require.Equal(t, 1, run.ExactCorrect)

	s.svc.MaxPairs = 1
	s.pair(t, "how many orders are there", "SELECT count(*) FROM orders", true)
	_, err = s.svc.Evaluate(s.ctx, provision.DefaultModel)
	require.Equal(t, apperr.Invalid, apperr.CodeOf(err))
	require.Contains(t, err.Error(), "more than 1 verified pairs")
}
