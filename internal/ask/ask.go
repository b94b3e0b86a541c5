// Package ask answers a question with SQL and rows: embed the question,
// retrieve the nearest training data of the tenant's model (under RLS, like
// everything else), generate SQL, run it through the SQL sandbox (one
// correction round on a database error), and record it in query history.
// No result rows are ever sent to a generator.
package ask

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/chart"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/interpret"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/sqlguard"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/usage"
)

// Service is the NL→SQL pipeline.
type Service struct {
	DB        *tenant.DB
	SQL       *sandbox.Service
	Embedder  embed.Embedder
	Generator generate.Generator
	Store     *nlsql.Store
	// Ks is how much context retrieval fetches (zero: nlsql.DefaultKs).
	Ks nlsql.Ks
	// Corrections is how many times a failed statement goes back to the
	// generator with the database's error (default 1; negative: none).
	Corrections int
	// Quota, if set, counts each valid question against the tenant's
	// quotas before any work and refuses one over them (issue 17 §2;
	// limits.Service).
	Quota interface {
		Question(ctx context.Context) error
		AddLLMTokens(ctx context.Context, n int64) error
	}
}

// New wires the pipeline: questions are embedded with store's embedder (the
// one its training data was embedded with), SQL comes from gen and runs in
// sql, and everything is read and recorded through db under the tenant's
// policies. Ks and Corrections keep their defaults; set them on the result.
func New(db *tenant.DB, sql *sandbox.Service, store *nlsql.Store, gen generate.Generator) *Service {
	return &Service{DB: db, SQL: sql, Embedder: store.Embedder, Generator: gen, Store: store}
}

// Request is one question.
type Request struct {
	Question string
	Model    string // default "default"
	// ModelID is Model's id when the caller has looked it up already (a
	// conversation's turn), to spare retrieval the lookup; it is read
	// under the tenant's policies like the name.
	ModelID uuid.UUID
	Execute bool
	Limit   int
	// ChartType asks for a chart type (chart.Types); empty lets the rules
	// of internal/chart choose.
	ChartType string
	// Turns are the conversation's previous turns (standalone questions and
	// SQL, oldest first) when the question is a conversation's next turn.
	Turns []generate.Turn
	// Progress, if set, hears each stage as it starts (for streaming); sql
	// is the statement from the validating or executing stage on.
	Progress func(stage Stage, sql string)
	// Kind is what usage analytics records the question as (default
	// usage.Ask; conversations say usage.Conversation).
	Kind usage.Kind
	use  *tally // filled as the stages run (usage.go)
	// Exclude are training rows retrieval must not return: an evaluation
	// asks a verified question without its own pair (leave-one-out).
	Exclude []uuid.UUID
	// Usage, if set, receives the question's LLM calls and tokens, also
	// when it fails (an evaluation adds them up).
	Usage *generate.Usage
}

// Stage is a step of the pipeline, as Request.Progress reports it.
type Stage string

// The stages, in order.
const (
	Retrieving Stage = "retrieving"
	Generating Stage = "generating"
	Validating Stage = "validating"
	Executing  Stage = "executing"
)

func (r Request) progress(stage Stage, sql string) {
	if r.Progress != nil {
		r.Progress(stage, sql)
	}
}

// Similar is a trained pair the question was close to.
type Similar struct {
	ID       uuid.UUID `json:"id"`
	Question string    `json:"question"`
	SQL      string    `json:"sql"`
	Distance float64   `json:"distance"`
	// Verified: a tenant admin verified the pair (its SQL is gold).
	Verified bool `json:"verified"`
}

// Timings are the pipeline's stages in milliseconds.
type Timings struct {
	EmbedMS    float64 `json:"embed_ms"`
	RetrieveMS float64 `json:"retrieve_ms"`
	GenerateMS float64 `json:"generate_ms"`
	ExecuteMS  float64 `json:"execute_ms"`
}

// Answer is the response to a question.
type Answer struct {
	SQL       string              `json:"sql"`
	Columns   []sandbox.Column    `json:"columns"`
	Rows      [][]json.RawMessage `json:"rows"`
	RowCount  int                 `json:"row_count"`
	Truncated bool                `json:"truncated"`
	HistoryID uuid.UUID           `json:"history_id"`
	// Security is the receipt of the statement that ran (sandbox.Security);
	// for a statement only validated, the receipt it would run with.
	Security sandbox.Security `json:"security"`
	// Interpretation says in plain English what SQL computes, rendered
	// from its parse tree (internal/interpret), whichever generator wrote it.
	Interpretation string        `json:"interpretation"`
	Generator      string        `json:"generator"`
	Timings        Timings       `json:"timings"`
	Context        AnswerContext `json:"context"`
	// Chart is a Vega-Lite v5 spec chosen by internal/chart's rules (or
	// the requested ChartType) with the rows inline; nil for no chart.
	Chart chart.Spec `json:"chart"`
	// Summary describes the rows in English, computed in Go
	// (internal/summary), or by the LLM generator from a bounded sample of
	// the rows when the tenant turned llm_data_access on (SummaryBy says).
	Summary string `json:"summary"`
	// SummaryBy is "dbchat" for a computed summary, else the generator
	// that wrote it.
	SummaryBy string `json:"summary_by"`
	// Suggestions are next questions from the tenant's own training pairs
	// near the question and its catalog (Suggest).
	Suggestions []string `json:"suggestions"`
	// GroundedOnVerified says retrieval gave the generator at least one
	// verified pair (Context.Similar says which).
	GroundedOnVerified bool `json:"grounded_on_verified"`
	// ResolvedQuestion is the standalone question the SQL answers: the
	// question itself, or a follow-up merged with the turn it refines.
	// History records it; a conversation turn shows it.
	ResolvedQuestion string                `json:"-"`
	tree             *pg_query.ParseResult // the sandbox's parse of SQL (nil: none)
}

// AnswerContext is what retrieval contributed, for the caller to inspect.
type AnswerContext struct {
	Similar []Similar `json:"similar"`
}

const maxQuestion = 2000

// Ask runs the pipeline for the tenant in ctx.
func (s *Service) Ask(ctx context.Context, req Request) (Answer, error) {
	req.Question = strings.TrimSpace(req.Question)
	switch {
	case req.Question == "":
		return Answer{}, apperr.Field("question", "is required")
	case len(req.Question) > maxQuestion:
		return Answer{}, apperr.Field("question", "at most %d bytes", maxQuestion)
	}
	if req.Model == "" {
		req.Model = "default"
	}
	want, err := chartType(req)
	if err != nil {
		return Answer{}, err
	}
	if s.Quota != nil {
		if err := s.Quota.Question(ctx); err != nil {
			return Answer{}, err
		}
	}
	req.use = &tally{}
	a, err := s.answer(ctx, req, want)
	if req.Usage != nil {
		*req.Usage = generate.Usage{Calls: req.use.LLMCalls, TokensIn: req.use.TokensIn, TokensOut: req.use.TokensOut}
	}
	s.recordUsage(ctx, req, a, err)
	if s.Quota != nil {
		// The generator's tokens are spent whatever became of the
		// question; failing to count them does not fail the answer.
		_ = s.Quota.AddLLMTokens(ctx, req.use.TokensIn+req.use.TokensOut)
	}
	return a, err
}

// answer is Ask after its checks: the pipeline's stages.
func (s *Service) answer(ctx context.Context, req Request, want chart.Type) (Answer, error) {
	var a Answer
	a.Generator, a.SummaryBy = s.Generator.Name(), "dbchat"
	a.Context.Similar = []Similar{}

	req.progress(Retrieving, "")
	start := time.Now()
	vecs, err := s.Embedder.Embed(ctx, []string{req.Question})
	if err != nil {
		return Answer{}, err
	}
	a.Timings.EmbedMS = since(start)

	start = time.Now()
	in, found, err := s.context(ctx, req, vecs[0])
	if err != nil {
		return Answer{}, err
	}
	modelID, pairs := found.modelID, found.pairs
	a.Timings.RetrieveMS = since(start)
	req.use.RetrieveMS = ptr(a.Timings.EmbedMS + a.Timings.RetrieveMS)
	for _, m := range pairs {
		a.Context.Similar = append(a.Context.Similar, Similar{ID: m.ID, Question: m.Question, SQL: m.Content, Distance: m.Distance, Verified: m.Verified})
		a.GroundedOnVerified = a.GroundedOnVerified || m.Verified
	}

	req.progress(Generating, "")
	start = time.Now()
	out, err := s.Generator.Generate(ctx, in)
	a.Timings.GenerateMS = since(start)
	req.use.generated(out.Usage, a.Timings.GenerateMS)
	// History and training pairs keep the standalone question.
	if a.ResolvedQuestion = out.Resolved; a.ResolvedQuestion == "" {
		a.ResolvedQuestion = generate.Resolve(req.Turns, req.Question)
	}
	req.Question = a.ResolvedQuestion
	if err != nil {
		if apperr.CodeOf(err) == apperr.NoSQL {
			return Answer{}, s.refused(ctx, req, modelID, a.Timings.GenerateMS, err)
		}
		return Answer{}, err
	}
	a.SQL = out.SQL
	suggested := suggestMeanwhile(ctx, a.SQL, in)
	if !req.Execute {
		req.progress(Validating, a.SQL)
		a, err = s.validateOnly(ctx, a, req, modelID)
	} else {
		req.progress(Executing, a.SQL)
		a, err = s.execute(ctx, a, in, req, modelID, &found.policy)
	}
	if err != nil {
		return Answer{}, err
	}
	// The statement that ran (or was validated), from the sandbox's parse
	// when it has one.
	if a.tree != nil {
		a.Interpretation = interpret.DescribeTree(a.tree)
	} else {
		a.Interpretation = interpret.Describe(a.SQL)
	}
	a.Suggestions = suggested(a.SQL)
	a, err = present(a, req.Execute, want)
	if err != nil || !req.Execute {
		return a, err
	}
	return s.llmSummary(ctx, a, req.Question), nil
}

// llmSummary replaces a's computed summary with one the generator writes
// from a bounded sample of the rows (generate.SampleOf), only when the
// tenant turned llm_data_access on and the generator can; on any failure
// the computed summary stays. Otherwise no result value reaches a prompt.
func (s *Service) llmSummary(ctx context.Context, a Answer, question string) Answer {
	sum, ok := s.Generator.(generate.Summarizer)
	if !ok || len(a.Rows) == 0 {
		return a
	}
	var allowed bool
	err := s.DB.Once(ctx, func(tx tenant.Conn) error {
		var err error
		allowed, err = dbsqlc.New().LLMDataAccess(ctx, tx)
		return err
	})
	if err != nil || !allowed {
		return a
	}
	cols := make([]string, len(a.Columns))
	for i, c := range a.Columns {
		cols[i] = c.Name
	}
	text, err := sum.Summarize(ctx, generate.SampleOf(question, a.SQL, cols, textRows(a.Rows)))
	if err == nil && strings.TrimSpace(text) != "" {
		a.Summary, a.SummaryBy = strings.TrimSpace(text), s.Generator.Name()
	}
	return a
}

// textRows renders JSON values as text: strings unquoted, the rest as is.
func textRows(rows [][]json.RawMessage) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			var s string
			if json.Unmarshal(v, &s) != nil {
				s = string(v)
			}
			out[i][j] = s
		}
	}
	return out
}

// execute runs the SQL in the sandbox, giving the generator one (or
// Corrections) chance to fix a statement the database refused.
func (s *Service) execute(ctx context.Context, a Answer, in generate.Input, req Request, modelID uuid.UUID, policy *sqlguard.Policy) (Answer, error) {
	rounds := s.Corrections
	if rounds == 0 {
		rounds = 1
	}
	for attempt := 0; ; attempt++ {
		start := time.Now()
		gen := a.Timings.GenerateMS
		res, err := s.SQL.Run(ctx, sandbox.Request{SQL: a.SQL, MaxRows: req.Limit, Question: &req.Question, ModelID: &modelID, GenTimeMS: &gen, Policy: policy})
		a.Timings.ExecuteMS = since(start)
		req.use.ran(a.Timings.ExecuteMS, res.ElapsedMS, err, attempt)
		if err == nil {
			a.Columns, a.Rows, a.RowCount, a.Truncated, a.HistoryID, a.Security = res.Columns, res.Rows, res.RowCount, res.Truncated, res.HistoryID, res.Security
			a.tree = res.Tree
			return a, nil
		}
		code := apperr.CodeOf(err)
		if attempt >= rounds || (code != apperr.SQLFailed && code != apperr.SQLRejected) {
			return Answer{}, err
		}
		in.PriorSQL, in.PriorError = a.SQL, apperr.As(err).Message
		start = time.Now()
		out, gerr := s.Generator.Generate(ctx, in)
		a.Timings.GenerateMS += since(start)
		req.use.generated(out.Usage, a.Timings.GenerateMS)
		if gerr != nil {
			return Answer{}, err // the original failure is the useful one
		}
		a.SQL = out.SQL
	}
}

// validateOnly checks the SQL without running it and records it as pending.
func (s *Service) validateOnly(ctx context.Context, a Answer, req Request, modelID uuid.UUID) (Answer, error) {
	r := sandbox.Request{SQL: a.SQL, Question: &req.Question, ModelID: &modelID, GenTimeMS: &a.Timings.GenerateMS}
	defer req.use.validated(time.Now())
	if err := s.SQL.Validate(ctx, a.SQL); err != nil {
		id, herr := s.SQL.Record(ctx, r, "rejected", apperr.As(err).Message)
		if herr != nil {
			return Answer{}, errors.Join(err, herr)
		}
		e := apperr.As(err)
		e.Details = map[string]any{"history_id": id, "sql": a.SQL}
		return Answer{}, e
	}
	sec, err := s.SQL.Receipt(ctx, a.SQL)
	if err != nil {
		return Answer{}, err
	}
	id, err := s.SQL.Record(ctx, r, "pending", "")
	a.HistoryID, a.Security = id, sec
	a.Columns, a.Rows = []sandbox.Column{}, [][]json.RawMessage{}
	return a, err
}

// retrieved is what context found besides the generator's input.
type retrieved struct {
	modelID uuid.UUID
	pairs   []nlsql.Match
	policy  sqlguard.Policy // layer 1's, for the sandbox (sandbox.PolicyBatch)
}

// context resolves the model and gathers what the generator may see: the
// retrieved pairs (also returned as retrieved, with their ids and
// verification), DDL and documentation, and the catalog. Rows in
// req.Exclude are left out; pairs trained with the question itself come
// first (nlsql.Retriever.Question). The sandbox's policy is read in the same
// transaction, so that running the answer costs no round trip for it.
func (s *Service) context(ctx context.Context, req Request, vec []float32) (generate.Input, retrieved, error) {
	in := generate.Input{Question: req.Question, FindValues: s.SQL.FindValues, Turns: req.Turns}
	var r retrieved
	var rows []dbsqlc.ListActiveCatalogRow
	catalog := activeCatalog(&rows)
	err := s.DB.Tx(ctx, func(tx tenant.Conn) error {
		var err error
		if r.modelID = req.ModelID; r.modelID == uuid.Nil {
			if r.modelID, err = nlsql.ModelID(ctx, tx, req.Model); err != nil {
				return err
			}
		}
		id, _ := tenant.FromContext(ctx)
		tx.Defer(sandbox.PolicyBatch(id.TenantID, &r.policy)) // read with the set sizes
		found, err := nlsql.Retriever{Exclude: req.Exclude, Question: req.Question}.Retrieve(ctx, tx, r.modelID, s.Embedder.Name(), vec, s.Ks)
		if err != nil {
			return err
		}
		r.pairs = found.SQL
		for _, m := range found.SQL {
			in.Examples = append(in.Examples, generate.Example{Question: m.Question, SQL: m.Content, Distance: m.Distance})
		}
		for _, m := range found.DDL {
			in.DDL = append(in.DDL, m.Content)
		}
		for _, m := range found.Documentation {
			in.Docs = append(in.Docs, m.Content)
		}
		tx.Defer(catalog) // read with the COMMIT
		return nil
	})
	in.Tables = tables(rows)
	return in, r, err
}

// activeCatalog is a batch that reads the tenant's active catalog
// (dbsqlc's ListActiveCatalog) into rows.
func activeCatalog(rows *[]dbsqlc.ListActiveCatalogRow) *pgx.Batch {
	b := &pgx.Batch{}
	b.Queue(dbsqlc.ListActiveCatalog).Query(func(r pgx.Rows) error {
		var err error
		*rows, err = pgx.CollectRows(r, pgx.RowToStructByPos[dbsqlc.ListActiveCatalogRow])
		return err
	})
	return b
}

// tables groups catalog rows (ordered by table) into generator tables.
func tables(rows []dbsqlc.ListActiveCatalogRow) []generate.Table {
	var out []generate.Table
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].Name != r.TableName {
			out = append(out, generate.Table{Name: r.TableName, Description: r.TableDescription})
		}
		t := &out[len(out)-1]
		t.Columns = append(t.Columns, generate.Column{Name: r.ColumnName, Type: r.DataType, Description: r.ColumnDescription})
	}
	return out
}

func since(t time.Time) float64 {
	return math.Round(float64(time.Since(t).Microseconds())) / 1000
}

// refused records a question the generator would not answer, with its
// reason, and returns the refusal with the history entry's id: an admin
// answers it with SQL through that entry's feedback, which trains the pair
// so the same question is answered next time.
func (s *Service) refused(ctx context.Context, req Request, modelID uuid.UUID, genMS float64, refusal error) error {
	e := apperr.As(refusal)
	id, err := s.SQL.Record(ctx, sandbox.Request{Question: &req.Question, ModelID: &modelID, GenTimeMS: &genMS}, "rejected", e.Message)
	if err != nil {
		return errors.Join(refusal, err)
	}
	out := *e
	out.Details = map[string]any{"history_id": id}
	return &out
}
