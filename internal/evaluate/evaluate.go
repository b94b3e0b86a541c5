// Package evaluate measures a tenant's NL->SQL model on its own verified
// pairs (issue 17 §3). Each verified question is asked through the real
// pipeline (internal/ask) with its own pair left out of retrieval
// (leave-one-out: otherwise a generator that reuses a near-duplicate pair
// would score itself on its own answer), the gold and the generated SQL run
// in the SQL sandbox as the tenant, and their rows are compared (exact and
// subset match, as Defog's sql-eval does). Each run also plants a leakage
// canary in a throwaway second tenant and checks that none of it reaches
// the evaluated tenant's answers (canary.go). Runs are stored under RLS like
// every tenant row.
package evaluate

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// DefaultMaxPairs caps the verified pairs one synchronous run evaluates; a
// model with more is refused (400) rather than held for minutes.
const DefaultMaxPairs = 200

// Outcomes of one question.
const (
	Correct = "correct" // exact or subset match
	Wrong   = "wrong"   // ran, other rows
	Refused = "refused" // the generator would not answer
	Error   = "error"   // the generated (or the gold) SQL failed
)

// Asker answers a question as the tenant in ctx: *ask.Service.
type Asker interface {
	Ask(ctx context.Context, req ask.Request) (ask.Answer, error)
}

// Service runs evaluations.
type Service struct {
	DB  *tenant.DB
	Ask *ask.Service
	// Privileged opens the privileged connection (DBCHAT_CANARY_DATABASE_URL)
	// that erasing the canary's throwaway tenant needs; nil skips the
	// canary, with the reason in the run.
	Privileged func(ctx context.Context) (*pgx.Conn, error)
	// MaxPairs caps a run (zero: DefaultMaxPairs).
	MaxPairs int

	testAsker Asker // the pipeline; tests substitute a leaky one
}

// Run is one evaluation run.
type Run struct {
	ID        uuid.UUID  `json:"id"`
	Model     string     `json:"model"`
	ModelID   uuid.UUID  `json:"model_id"`
	UserID    *uuid.UUID `json:"user_id"`
	Generator string     `json:"generator"`
	LLMModel  string     `json:"llm_model"`
	Embedder  string     `json:"embedder"`
	Pairs     int        `json:"pairs"`
	// Accuracy is correct answers over pairs, exact and subset (nil for a
	// run of no pairs).
	ExactAccuracy  *float64 `json:"exact_accuracy"`
	SubsetAccuracy *float64 `json:"subset_accuracy"`
	ExactCorrect   int      `json:"exact_correct"`
	SubsetCorrect  int      `json:"subset_correct"`
	Wrong          int      `json:"wrong"`
	Refused        int      `json:"refused"`
	Errors         int      `json:"errors"`
	// TokensIn and TokensOut are the LLM tokens the generator reported for
	// the run's questions (0 for the offline generator, which calls none;
	// the canary's questions are not counted).
	TokensIn   *int64    `json:"tokens_in"`
	TokensOut  *int64    `json:"tokens_out"`
	DurationMS float64   `json:"duration_ms"`
	Canary     Canary    `json:"canary"`
	CreatedAt  time.Time `json:"created_at"`
	// Results are the per-question outcomes (a single run's view only).
	Results []Result `json:"results,omitempty"`
}

// Result is one verified question's outcome.
type Result struct {
	Position     int       `json:"position"`
	TrainingID   uuid.UUID `json:"training_id"`
	Question     string    `json:"question"`
	GoldSQL      string    `json:"gold_sql"`
	GeneratedSQL *string   `json:"generated_sql"`
	Outcome      string    `json:"outcome"`
	ExactMatch   bool      `json:"exact_match"`
	SubsetMatch  bool      `json:"subset_match"`
	Error        *string   `json:"error"`
	LatencyMS    float64   `json:"latency_ms"`
	// Retrieved are the pairs retrieval gave the generator (not stored):
	// tests prove the question's own pair is never among them.
	Retrieved []uuid.UUID `json:"-"`

	tokens generate.Usage
}

var q = dbsqlc.New()

// Evaluate runs the named model of the tenant in ctx over its verified
// pairs, runs the leakage canary and records the run. The request's ctx
// bounds it: cancelled, nothing is recorded (the canary's tenant is still
// erased).
func (s *Service) Evaluate(ctx context.Context, model string) (Run, error) {
	start := time.Now()
	run, pairs, err := s.load(ctx, model)
	if err != nil {
		return run, err
	}
	var in, out int64
	run.TokensIn, run.TokensOut = &in, &out
	for i, p := range pairs {
		r, err := s.one(ctx, run, p)
		if err != nil {
			return run, err
		}
		r.Position = i + 1
		run.Results = append(run.Results, r)
		run.tally(r)
		in, out = in+r.tokens.TokensIn, out+r.tokens.TokensOut
	}
	run.Canary = s.canary(ctx, model)
	if err := ctx.Err(); err != nil {
		return run, tenant.Translate(err)
	}
	run.DurationMS = since(start)
	run.accuracy()
	return run, s.save(ctx, &run)
}

// load resolves the model and reads its verified pairs, refusing a run of
// none or of more than MaxPairs.
func (s *Service) load(ctx context.Context, model string) (Run, []dbsqlc.ListVerifiedPairsRow, error) {
	run := Run{Model: model, Generator: s.Ask.Generator.Name(), Embedder: s.Ask.Embedder.Name()}
	max := s.MaxPairs
	if max <= 0 {
		max = DefaultMaxPairs
	}
	var pairs []dbsqlc.ListVerifiedPairsRow
	err := s.DB.Tx(ctx, func(tx tenant.Conn) error {
		m, err := nlsql.GetModel(ctx, tx, model)
		if err != nil {
			return err
		}
		run.ModelID, run.LLMModel = m.ID, m.LLMModel
		pairs, err = q.ListVerifiedPairs(ctx, tx, dbsqlc.ListVerifiedPairsParams{ModelID: m.ID, MaxRows: int32(max + 1)})
		return err
	})
	switch {
	case err != nil:
		return run, nil, err
	case len(pairs) == 0:
		return run, nil, apperr.Errorf(apperr.Invalid, "model %q has no verified pairs: verify some with PATCH /v1/models/%s/training-data/{id} {\"verified\":true}", model, model)
	case len(pairs) > max:
		return run, nil, apperr.Errorf(apperr.Invalid, "model %q has more than %d verified pairs, the most one run evaluates", model, max)
	}
	return run, pairs, nil
}

// one asks a verified question without its own pair, runs the gold SQL and
// compares. Only a cancelled request or an internal failure is an error;
// everything else is the question's outcome.
func (s *Service) one(ctx context.Context, run Run, p dbsqlc.ListVerifiedPairsRow) (Result, error) {
	r := Result{TrainingID: p.ID, GoldSQL: p.Content}
	if p.Question != nil {
		r.Question = *p.Question
	}
	start := time.Now()
	a, err := s.asker().Ask(ctx, ask.Request{Question: r.Question, Model: run.Model, Execute: true,
		Limit: sandbox.MaxMaxRows, Exclude: []uuid.UUID{p.ID}, Usage: &r.tokens})
	r.LatencyMS = since(start)
	for _, m := range a.Context.Similar {
		r.Retrieved = append(r.Retrieved, m.ID)
	}
	if err != nil {
		return r, r.failed(ctx, err)
	}
	r.GeneratedSQL = &a.SQL
	gold, err := s.Ask.SQL.Run(ctx, sandbox.Request{SQL: p.Content, MaxRows: sandbox.MaxMaxRows, Question: &r.Question, ModelID: &run.ModelID})
	if err != nil {
		return r, r.failed(ctx, fmtGold{err})
	}
	m := Compare(gold.Rows, a.Rows, Ordered(p.Content))
	r.ExactMatch, r.SubsetMatch, r.Outcome = m.Exact, m.Subset, Wrong
	if m.Exact || m.Subset {
		r.Outcome = Correct
	}
	return r, nil
}

// fmtGold marks a failure of the gold SQL (a verified pair whose SQL no
// longer runs, e.g. after a table was dropped).
type fmtGold struct{ err error }

func (f fmtGold) Error() string { return f.err.Error() }
func (f fmtGold) Unwrap() error { return f.err }

// failed sets the outcome of a question whose answer (or gold SQL) failed,
// and returns the error only when the run must stop: a cancelled request,
// or a failure that is the service's own.
func (r *Result) failed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return tenant.Translate(ctx.Err())
	}
	e := apperr.As(err)
	msg := e.Message
	switch e.Code {
	case apperr.NoSQL:
		r.Outcome = Refused
	case apperr.SQLFailed, apperr.SQLRejected, apperr.Unavailable, apperr.Overloaded:
		r.Outcome = Error
	default:
		return err
	}
	var gold fmtGold
	if errors.As(err, &gold) {
		msg = "the gold SQL failed: " + msg
	}
	r.Error = &msg
	return nil
}

func (s *Service) asker() Asker {
	if s.testAsker != nil {
		return s.testAsker
	}
	return s.Ask
}

func (run *Run) tally(r Result) {
	run.Pairs++
	switch {
	case r.ExactMatch:
		run.ExactCorrect++
		run.SubsetCorrect++
	case r.SubsetMatch:
		run.SubsetCorrect++
	case r.Outcome == Wrong:
		run.Wrong++
	case r.Outcome == Refused:
		run.Refused++
	case r.Outcome == Error:
		run.Errors++
	}
}

func (run *Run) accuracy() {
	if run.Pairs == 0 {
		return
	}
	exact := round(float64(run.ExactCorrect) / float64(run.Pairs))
	subset := round(float64(run.SubsetCorrect) / float64(run.Pairs))
	run.ExactAccuracy, run.SubsetAccuracy = &exact, &subset
}

func round(f float64) float64 { return math.Round(f*10000) / 10000 }

func since(t time.Time) float64 {
	return math.Round(float64(time.Since(t).Microseconds())) / 1000
}

// save records the run and its results in one transaction.
func (s *Service) save(ctx context.Context, run *Run) error {
	canary, err := json.Marshal(run.Canary)
	if err != nil {
		return err
	}
	return s.DB.Tx(ctx, func(tx tenant.Conn) error {
		row, err := q.CreateEvaluation(ctx, tx, dbsqlc.CreateEvaluationParams{ModelID: run.ModelID, Generator: run.Generator,
			LlmModel: run.LLMModel, Embedder: run.Embedder, Pairs: int32(run.Pairs), ExactCorrect: int32(run.ExactCorrect),
			SubsetCorrect: int32(run.SubsetCorrect), Wrong: int32(run.Wrong), Refused: int32(run.Refused), Errors: int32(run.Errors),
			TokensIn: run.TokensIn, TokensOut: run.TokensOut, DurationMs: run.DurationMS, Canary: canary})
		if err != nil {
			return err
		}
		run.ID, run.UserID, run.CreatedAt = row.ID, row.UserID, row.CreatedAt
		return q.InsertEvaluationResults(ctx, tx, resultsParams(run.ID, run.Results))
	})
}

func resultsParams(id uuid.UUID, rs []Result) dbsqlc.InsertEvaluationResultsParams {
	p := dbsqlc.InsertEvaluationResultsParams{EvaluationID: id}
	for _, r := range rs {
		p.Positions = append(p.Positions, int32(r.Position))
		p.TrainingIds = append(p.TrainingIds, r.TrainingID)
		p.Questions = append(p.Questions, r.Question)
		p.GoldSqls = append(p.GoldSqls, r.GoldSQL)
		p.GeneratedSqls = append(p.GeneratedSqls, deref(r.GeneratedSQL))
		p.Outcomes = append(p.Outcomes, r.Outcome)
		p.ExactMatches = append(p.ExactMatches, r.ExactMatch)
		p.SubsetMatches = append(p.SubsetMatches, r.SubsetMatch)
		p.Errors = append(p.Errors, deref(r.Error))
		p.LatenciesMs = append(p.LatenciesMs, r.LatencyMS)
	}
	return p
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
