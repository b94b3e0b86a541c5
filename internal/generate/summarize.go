package generate

import (
	"context"
	"fmt"
	"strings"
)

// Summarizer is a generator that can also write an answer's summary from a
// sample of its rows. It is used only for tenants that turned
// llm_data_access on; otherwise no result value reaches any prompt.
type Summarizer interface {
	Summarize(ctx context.Context, in Sample) (string, error)
}

// Sample is what a summary prompt may carry: the question, the SQL, the
// column names and at most MaxSampleRows rows of text, each value cut to
// MaxSampleValue bytes, MaxSampleBytes in all (SampleOf enforces it).
type Sample struct {
	Question, SQL string
	Columns       []string
	Rows          [][]string
	RowCount      int // rows in the whole answer
}

// Bounds of a Sample.
const (
	MaxSampleRows  = 20
	MaxSampleValue = 100
	MaxSampleBytes = 4 << 10
)

// SampleOf bounds rows into a Sample.
func SampleOf(question, sql string, columns []string, rows [][]string) Sample {
	s := Sample{Question: question, SQL: sql, Columns: columns, RowCount: len(rows)}
	size := 0
	for _, r := range rows[:min(len(rows), MaxSampleRows)] {
		out := make([]string, len(r))
		for i, v := range r {
			if len(v) > MaxSampleValue {
				v = v[:MaxSampleValue] + "…"
			}
			out[i] = v
			size += len(v)
		}
		if size > MaxSampleBytes {
			break
		}
		s.Rows = append(s.Rows, out)
	}
	return s
}

// SummarySystem is the instruction for a summary.
const SummarySystem = "You summarise the result of a database query for the person who asked the question, in one or two plain sentences, stating only what the rows show. Do not guess beyond them."

// SummaryPrompt renders a Sample.
func SummaryPrompt(s Sample) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Question: %s\n\nSQL:\n```sql\n%s\n```\n\nResult (%d rows; the first %d shown), columns: %s\n",
		s.Question, s.SQL, s.RowCount, len(s.Rows), strings.Join(s.Columns, " | "))
	for _, r := range s.Rows {
		b.WriteString(strings.Join(r, " | ") + "\n")
	}
	return b.String()
}

// Summarize implements Summarizer.
func (o *OpenAI) Summarize(ctx context.Context, s Sample) (string, error) {
	reply, _, err := o.chat(ctx, SummarySystem, SummaryPrompt(s))
	return strings.TrimSpace(reply), err
}

// Summarize implements Summarizer.
func (g *Gemini) Summarize(ctx context.Context, s Sample) (string, error) {
	reply, _, err := g.ask(ctx, SummarySystem, SummaryPrompt(s))
	return strings.TrimSpace(reply), err
}
