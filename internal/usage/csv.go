package usage

import (
	"bytes"
	"encoding/csv"
	"strconv"
)

// CSV flattens a report into one row per period: the counts, the estimated
// cost, count/p50/p95 per stage, then calls, tokens in and out and cost of
// every LLM model that appears in the range (a column group per model,
// named after it). Unknown values (a percentile with no samples, an
// unpriced cost) are empty cells. Storage and training rows hold now, not
// per period, so they are left to the JSON report.
func (rep Report) CSV() []byte {
	models := []string{}
	for _, m := range rep.Total.Models {
		models = append(models, m.Model)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	_ = w.Write(csvHeader(models))
	for _, p := range rep.Periods {
		_ = w.Write(csvRow(p, models))
	}
	w.Flush()
	return b.Bytes()
}

var csvCounts = []string{"questions_asked", "questions_answered", "questions_refused", "questions_failed",
	"sql_first_try", "empty_results", "sql_statements", "sql_failed", "imports", "imports_failed",
	"training_writes", "rows_returned", "rows_imported", "corrections", "feedback_up", "feedback_down",
	"llm_calls", "tokens_in", "tokens_out", "estimated_cost"}

var csvStages = []string{"retrieve", "generate", "validate", "execute"}

func csvHeader(models []string) []string {
	h := append([]string{"from", "to"}, csvCounts...)
	for _, s := range csvStages {
		h = append(h, s+"_count", s+"_p50_ms", s+"_p95_ms")
	}
	for _, m := range models {
		h = append(h, m+"_calls", m+"_tokens_in", m+"_tokens_out", m+"_cost")
	}
	return h
}

func csvRow(p Period, models []string) []string {
	f := p.Figures
	row := []string{p.From, p.To}
	for _, n := range []int64{f.QuestionsAsked, f.QuestionsAnswered, f.QuestionsRefused, f.QuestionsFailed,
		f.SQLFirstTry, f.EmptyResults, f.SQLStatements, f.SQLFailed, f.Imports, f.ImportsFailed,
		f.TrainingWrites, f.RowsReturned, f.RowsImported, f.Corrections, f.FeedbackUp, f.FeedbackDown,
		f.LLMCalls, f.TokensIn, f.TokensOut} {
		row = append(row, strconv.FormatInt(n, 10))
	}
	row = append(row, num(f.EstimatedCost))
	for _, s := range []Stage{f.Stages.Retrieve, f.Stages.Generate, f.Stages.Validate, f.Stages.Execute} {
		row = append(row, strconv.FormatInt(s.Count, 10), num(s.P50MS), num(s.P95MS))
	}
	for _, name := range models {
		m := ModelUsage{Model: name}
		for _, have := range f.Models {
			if have.Model == name {
				m = have
			}
		}
		row = append(row, strconv.FormatInt(m.Calls, 10), strconv.FormatInt(m.TokensIn, 10),
			strconv.FormatInt(m.TokensOut, 10), num(m.EstimatedCost))
	}
	return row
}

func num(v *float64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}
