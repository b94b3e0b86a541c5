package ask

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/usage"
)

// tally is a question's usage record as the stages fill it in.
type tally struct{ usage.Record }

// generated adds a generator call's LLM usage and the generate stage's
// time so far.
func (t *tally) generated(use generate.Usage, ms float64) {
	t.LLMCalls += use.Calls
	t.TokensIn += use.TokensIn
	t.TokensOut += use.TokensOut
	t.GenerateMS = ptr(ms)
}

// ran notes a sandbox run: the statement's own time is the execute stage,
// the rest of the run (parse, allowlist, receipt, history) the validate
// stage; a rejected statement only validated. The first attempt that runs
// decides first_try.
func (t *tally) ran(wallMS, stmtMS float64, err error, attempt int) {
	switch {
	case err == nil:
		t.ExecMS, t.ValidateMS = ptr(stmtMS), ptr(max(0, wallMS-stmtMS))
		t.FirstTry = ptr(attempt == 0)
	case apperr.CodeOf(err) == apperr.SQLRejected:
		t.ValidateMS = ptr(wallMS)
	default:
		t.ExecMS = ptr(wallMS)
	}
}

// validated notes the validate stage of a question asked with execute
// false (checked, not run).
func (t *tally) validated(start time.Time) { t.ValidateMS = ptr(since(start)) }

func ptr[T any](v T) *T { return &v }

// recordUsage saves the question's usage record in a transaction of its
// own (the pipeline's work ran in several: retrieval, the sandbox's, the
// history's). A request refused before anything was asked (a bad model
// name) is not a question; a failure to save is not the caller's failure,
// so it is dropped: the answer stands.
func (s *Service) recordUsage(ctx context.Context, req Request, a Answer, err error) {
	if c := apperr.CodeOf(err); err != nil && (c == apperr.Invalid || c == apperr.NotFound) {
		return
	}
	u := req.use.Record
	u.Kind, u.Outcome = req.Kind, usage.OutcomeOf(err)
	if u.Kind == "" {
		u.Kind = usage.Ask
	}
	u.Generator = s.Generator.Name()
	u.LLMModel = usage.ModelOf(u.Generator)
	if err == nil {
		u.HistoryID, u.RowsReturned, u.Empty = &a.HistoryID, int64(a.RowCount), req.Execute && a.RowCount == 0
	} else if h, ok := apperr.As(err).Details["history_id"].(uuid.UUID); ok {
		u.HistoryID = &h
	}
	if u.FirstTry == nil && req.Execute {
		u.FirstTry = ptr(false)
	}
	_ = usage.Save(ctx, s.DB, u, err)
}
