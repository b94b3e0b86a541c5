package usage

import (
	"cmp"
	"context"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// MaxDays bounds a report's range: a year of rollup rows stays a small read.
const MaxDays = 366

// DefaultDays is the range when from is not given: the last 30 days.
const DefaultDays = 30

const dateLayout = "2006-01-02"

// Range is a report's UTC days, from and to included, and its periods.
type Range struct {
	From, To    time.Time
	Granularity string // "day" or "week" (ISO weeks, Monday first)
}

// ParseRange reads from and to (YYYY-MM-DD, UTC; to defaults to today,
// from to DefaultDays days up to to) and the granularity (default day).
// Every mistake is a 400 naming its field.
func ParseRange(from, to, granularity string, now time.Time) (Range, error) {
	r := Range{To: now.UTC().Truncate(24 * time.Hour), Granularity: granularity}
	var err error
	if to != "" {
		if r.To, err = time.Parse(dateLayout, to); err != nil {
			return Range{}, apperr.Field("to", "must be a date as YYYY-MM-DD")
		}
	}
	r.From = r.To.AddDate(0, 0, 1-DefaultDays)
	if from != "" {
		if r.From, err = time.Parse(dateLayout, from); err != nil {
			return Range{}, apperr.Field("from", "must be a date as YYYY-MM-DD")
		}
	}
	switch {
	case r.From.After(r.To):
		return Range{}, apperr.Field("from", "must not be after to")
	case r.To.Sub(r.From) >= MaxDays*24*time.Hour:
		return Range{}, apperr.Field("to", "the range spans at most %d days", MaxDays)
	case r.Granularity == "":
		r.Granularity = "day"
	case r.Granularity != "day" && r.Granularity != "week":
		return Range{}, apperr.Field("granularity", "must be day or week")
	}
	return r, nil
}

// periodStart is the first day of the period holding day.
func (r Range) periodStart(day time.Time) time.Time {
	if r.Granularity == "week" {
		day = day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	}
	return day
}

// periods lists the range's periods, each clipped to the range.
func (r Range) periods() []Period {
	var out []Period
	for start := r.periodStart(r.From); !start.After(r.To); {
		next := start.AddDate(0, 0, 1)
		if r.Granularity == "week" {
			next = start.AddDate(0, 0, 7)
		}
		from, to := maxTime(start, r.From), minTime(next.AddDate(0, 0, -1), r.To)
		out = append(out, Period{From: from.Format(dateLayout), To: to.Format(dateLayout)})
		start = next
	}
	return out
}

// Stage is one pipeline stage's latency over a period: how many requests
// ran it and the 50th and 95th percentiles in ms, read from the rollups'
// histograms (the upper bound of the bucket holding that rank: never below
// the true value, at most 19% above it); nil when none ran it.
type Stage struct {
	Count int64    `json:"count"`
	P50MS *float64 `json:"p50_ms"`
	P95MS *float64 `json:"p95_ms"`
}

// Stages are the pipeline's stages.
type Stages struct {
	Retrieve Stage `json:"retrieve"`
	Generate Stage `json:"generate"`
	Validate Stage `json:"validate"`
	Execute  Stage `json:"execute"`
}

// ModelUsage is one LLM model's calls and tokens, with the estimated cost
// from DBCHAT_LLM_PRICES (nil for a model the table does not price).
type ModelUsage struct {
	Model         string   `json:"model"`
	Calls         int64    `json:"calls"`
	TokensIn      int64    `json:"tokens_in"`
	TokensOut     int64    `json:"tokens_out"`
	EstimatedCost *float64 `json:"estimated_cost"`
}

// Figures are a period's (or a whole range's) numbers. Questions are
// /v1/ask and conversation turns; SQLFirstTry counts questions whose
// generated SQL ran without a correction round; empty results and rows
// returned count questions and /v1/sql statements.
type Figures struct {
	QuestionsAsked    int64 `json:"questions_asked"`
	QuestionsAnswered int64 `json:"questions_answered"`
	QuestionsRefused  int64 `json:"questions_refused"`
	QuestionsFailed   int64 `json:"questions_failed"`
	SQLFirstTry       int64 `json:"sql_first_try"`
	EmptyResults      int64 `json:"empty_results"`
	SQLStatements     int64 `json:"sql_statements"`
	SQLFailed         int64 `json:"sql_failed"`
	Imports           int64 `json:"imports"`
	ImportsFailed     int64 `json:"imports_failed"`
	TrainingWrites    int64 `json:"training_writes"`
	RowsReturned      int64 `json:"rows_returned"`
	RowsImported      int64 `json:"rows_imported"`
	Corrections       int64 `json:"corrections"`
	FeedbackUp        int64 `json:"feedback_up"`
	FeedbackDown      int64 `json:"feedback_down"`
	LLMCalls          int64 `json:"llm_calls"`
	TokensIn          int64 `json:"tokens_in"`
	TokensOut         int64 `json:"tokens_out"`
	// EstimatedCost sums the models' costs; nil when a model with calls
	// has no price (the total is unknown then).
	EstimatedCost *float64     `json:"estimated_cost"`
	Stages        Stages       `json:"stages"`
	Models        []ModelUsage `json:"models"`
}

// Period is one day or week of a report (clipped to the range).
type Period struct {
	From string `json:"from"`
	To   string `json:"to"`
	Figures
}

// TableSize is a data table's current size with indexes and TOAST.
type TableSize struct {
	Table string `json:"table"`
	Bytes int64  `json:"bytes"`
}

// ModelRows is a model's training rows now.
type ModelRows struct {
	Model string `json:"model"`
	Rows  int64  `json:"rows"`
}

// Report is a tenant's analytics over a range.
type Report struct {
	From         string      `json:"from"`
	To           string      `json:"to"`
	Granularity  string      `json:"granularity"`
	Periods      []Period    `json:"periods"`
	Total        Figures     `json:"total"`
	Storage      []TableSize `json:"storage"`
	StorageBytes int64       `json:"storage_bytes"`
	TrainingRows []ModelRows `json:"training_rows"`
}

// Read builds the report of the tenant of tx (a tenant transaction: the
// policy scopes every read) over r, pricing tokens with prices.
func Read(ctx context.Context, tx tenant.Conn, r Range, prices Prices) (Report, error) {
	q := dbsqlc.New()
	days := dbsqlc.UsageDaysParams{FromDay: date(r.From), ToDay: date(r.To)}
	rows, err := q.UsageDays(ctx, tx, days)
	if err != nil {
		return Report{}, err
	}
	fb, err := q.FeedbackDays(ctx, tx, dbsqlc.FeedbackDaysParams(days))
	if err != nil {
		return Report{}, err
	}
	rep := Report{From: r.From.Format(dateLayout), To: r.To.Format(dateLayout), Granularity: r.Granularity}
	rep.Periods, rep.Total = r.aggregate(rows, fb, prices)
	if err := rep.readNow(ctx, tx, q); err != nil {
		return Report{}, err
	}
	return rep, nil
}

// readNow adds what holds now rather than per period: storage and
// training rows.
func (rep *Report) readNow(ctx context.Context, tx tenant.Conn, q *dbsqlc.Queries) error {
	sizes, err := q.TableStorage(ctx, tx)
	if err != nil {
		return err
	}
	rep.Storage = make([]TableSize, 0, len(sizes))
	for _, s := range sizes {
		rep.Storage = append(rep.Storage, TableSize{Table: s.Name, Bytes: s.Bytes})
		rep.StorageBytes += s.Bytes
	}
	models, err := q.TrainingRowsPerModel(ctx, tx)
	rep.TrainingRows = make([]ModelRows, 0, len(models))
	for _, m := range models {
		rep.TrainingRows = append(rep.TrainingRows, ModelRows{Model: m.Name, Rows: m.Rows})
	}
	return err
}

// aggregate sums rollup rows and feedback into the range's periods and its
// total.
func (r Range) aggregate(rows []dbsqlc.UsageDaysRow, fb []dbsqlc.FeedbackDaysRow, prices Prices) ([]Period, Figures) {
	periods := r.periods()
	accs, total := make([]acc, len(periods)), acc{}
	index := map[string]int{}
	for i, p := range periods {
		index[p.From] = i
	}
	at := func(d pgtype.Date) *acc {
		return &accs[index[maxTime(r.periodStart(d.Time), r.From).Format(dateLayout)]]
	}
	for _, row := range rows {
		at(row.Day).add(row)
		total.add(row)
	}
	for _, f := range fb {
		at(f.Day).feedback(f)
		total.feedback(f)
	}
	for i := range periods {
		periods[i].Figures = accs[i].figures(prices)
	}
	return periods, total.figures(prices)
}

// acc accumulates rollup rows.
type acc struct {
	f      Figures
	hists  [4][]int64
	models map[string]*ModelUsage
}

func (a *acc) add(row dbsqlc.UsageDaysRow) {
	switch Kind(row.Kind) {
	case Ask, Conversation:
		a.f.QuestionsAsked += row.Requests
		a.f.QuestionsAnswered += row.Answered
		a.f.QuestionsRefused += row.Refused
		a.f.QuestionsFailed += row.Failed
		a.f.SQLFirstTry += row.FirstTry
	case SQL:
		a.f.SQLStatements += row.Requests
		a.f.SQLFailed += row.Failed
	case Import:
		a.f.Imports += row.Requests
		a.f.ImportsFailed += row.Failed
	case Training:
		a.f.TrainingWrites += row.Requests
	}
	a.f.EmptyResults += row.EmptyResults
	a.f.RowsReturned += row.RowsReturned
	a.f.RowsImported += row.RowsImported
	for i, h := range [][]int32{row.RetrieveHist, row.GenerateHist, row.ValidateHist, row.ExecuteHist} {
		a.hists[i] = addHist(a.hists[i], h)
	}
	a.llm(row)
}

// llm adds a row's LLM calls and tokens, per model.
func (a *acc) llm(row dbsqlc.UsageDaysRow) {
	if row.LlmCalls == 0 && row.TokensIn == 0 && row.TokensOut == 0 {
		return
	}
	if a.models == nil {
		a.models = map[string]*ModelUsage{}
	}
	m := a.models[row.LlmModel]
	if m == nil {
		m = &ModelUsage{Model: row.LlmModel}
		a.models[row.LlmModel] = m
	}
	m.Calls += row.LlmCalls
	m.TokensIn += row.TokensIn
	m.TokensOut += row.TokensOut
}

func (a *acc) feedback(f dbsqlc.FeedbackDaysRow) {
	a.f.FeedbackUp += f.Up
	a.f.FeedbackDown += f.Down
	a.f.Corrections += f.Corrections
}

// figures finishes the sums: percentiles, models sorted by name with
// their costs, totals.
func (a *acc) figures(prices Prices) Figures {
	f := a.f
	st := []*Stage{&f.Stages.Retrieve, &f.Stages.Generate, &f.Stages.Validate, &f.Stages.Execute}
	for i, h := range a.hists {
		*st[i] = stageOf(h)
	}
	f.Models = []ModelUsage{}
	known := 0.0
	for _, m := range a.models {
		m.EstimatedCost = prices.Cost(m.Model, m.TokensIn, m.TokensOut)
		f.Models = append(f.Models, *m)
		f.LLMCalls += m.Calls
		f.TokensIn += m.TokensIn
		f.TokensOut += m.TokensOut
		if m.EstimatedCost != nil {
			known += *m.EstimatedCost
		}
	}
	slices.SortFunc(f.Models, func(x, y ModelUsage) int { return cmp.Compare(x.Model, y.Model) })
	if !slices.ContainsFunc(f.Models, func(m ModelUsage) bool { return m.EstimatedCost == nil }) {
		f.EstimatedCost = &known
	}
	return f
}

// stageOf reads a stage's count and percentiles from its histogram.
func stageOf(h []int64) Stage {
	var s Stage
	for _, n := range h {
		s.Count += n
	}
	if s.Count > 0 {
		s.P50MS, s.P95MS = percentile(h, s.Count, 0.50), percentile(h, s.Count, 0.95)
	}
	return s
}

// percentile is the upper bound of the bucket holding the p-th rank; for
// the open last bucket, its lower bound (JSON has no infinity).
func percentile(h []int64, n int64, p float64) *float64 {
	rank := int64(math.Ceil(p * float64(n)))
	var seen int64
	for i, c := range h {
		if seen += c; seen >= rank {
			v := UpperBound(i + 1)
			if math.IsInf(v, 1) {
				v = UpperBound(Buckets - 1)
			}
			return &v
		}
	}
	return nil
}

func addHist(a []int64, b []int32) []int64 {
	for len(a) < len(b) {
		a = append(a, 0)
	}
	for i, n := range b {
		a[i] += int64(n)
	}
	return a
}

func date(t time.Time) pgtype.Date { return pgtype.Date{Time: t, Valid: true} }

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
