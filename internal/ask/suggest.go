package ask

import (
	"context"
	"fmt"
	"strings"
	"unicode"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/chart"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/summary"
)

// MaxSuggestions is how many next questions an answer suggests.
const MaxSuggestions = 3

// notRun is the summary of an answer that was validated but not run.
const notRun = "Validated, not run (execute: false): no rows to summarise."

// chartType reads the chart type a request asks for; one other than none
// needs rows, so it needs the statement to run.
func chartType(req Request) (chart.Type, error) {
	t, err := chart.ParseType(req.ChartType)
	if err == nil && !req.Execute && t != chart.Auto && t != chart.None {
		err = apperr.Field("chart_type", "%s needs rows: ask with execute true", t)
	}
	return t, err
}

// present adds what is computed from the rows in hand: the chart and the
// summary (in Go).
func present(a Answer, executed bool, want chart.Type) (Answer, error) {
	if !executed {
		a.Summary = notRun
		return a, nil
	}
	cols := make([]chart.Column, len(a.Columns))
	for i, c := range a.Columns {
		cols[i] = chart.Column(c)
	}
	a.Summary = summary.Summarize(cols, a.Rows, a.Truncated)
	var err error
	a.Chart, err = chart.Choose(cols, a.Rows, want)
	return a, err
}

// suggestMeanwhile works out Suggest for sql while the caller validates or
// runs it (the database's round trips leave the CPU idle). The function it
// returns waits for the result, or suggests afresh when the statement that
// ran is another one (a correction round); a panic reaches its caller.
func suggestMeanwhile(ctx context.Context, sql string, in generate.Input) func(ran string) []string {
	type result struct {
		out   []string
		panic any
	}
	done := make(chan result, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- result{panic: p}
			}
		}()
		done <- result{out: Suggest(ctx, sql, in)}
	}()
	return func(ran string) []string {
		r := <-done
		if r.panic != nil {
			panic(r.panic)
		}
		if ran != sql {
			return Suggest(ctx, ran, in)
		}
		return r.out
	}
}

// Suggest returns up to MaxSuggestions next questions for in.Question,
// answered with sql: first (at most MaxSuggestions-1) the questions of the
// tenant's retrieved training pairs, nearest first, then questions about
// its catalog tables (the ones sql reads first) that the offline generator
// answers as they stand, then any further pairs. Everything comes from in,
// which holds only the asking tenant's pairs and catalog; the question
// itself and repeats are left out.
func Suggest(ctx context.Context, sql string, in generate.Input) []string {
	s := suggestions{seen: map[string]bool{key(in.Question): true}, out: []string{}}
	for _, e := range in.Examples {
		if len(s.out) < MaxSuggestions-1 {
			s.add(e.Question)
		}
	}
	catalogQuestions(ctx, sql, in.Tables, &s)
	for _, e := range in.Examples {
		s.add(e.Question)
	}
	return s.out
}

// suggestions gathers distinct questions up to MaxSuggestions.
type suggestions struct {
	seen map[string]bool
	out  []string
}

// wants reports whether q would be added: not empty, not seen, and room.
func (s *suggestions) wants(q string) bool {
	return q != "" && !s.seen[key(q)] && len(s.out) < MaxSuggestions
}

func (s *suggestions) add(q string) {
	if s.wants(q) {
		s.seen[key(q)] = true
		s.out = append(s.out, q)
	}
}

// key compares questions without case, spacing or final punctuation.
func key(q string) string {
	return strings.Join(strings.Fields(strings.ToLower(strings.TrimRight(q, "?.! "))), " ")
}

// catalogQuestions adds to s the catalog questions the offline generator
// answers, tables read by sql first, until s is full. Generating is most
// of a suggestion's cost, so a question s would not take is not generated.
func catalogQuestions(ctx context.Context, sql string, tables []generate.Table, s *suggestions) {
	offline := generate.NewOffline()
	for _, t := range byUse(sql, tables) {
		for _, q := range templates(t) {
			if len(s.out) == MaxSuggestions {
				return
			}
			if !s.wants(q) {
				continue
			}
			if _, err := offline.Generate(ctx, generate.Input{Question: q, Tables: tables}); err == nil {
				s.add(q)
			}
		}
	}
}

// byUse orders tables: those sql names first, the rest in catalog order.
func byUse(sql string, tables []generate.Table) []generate.Table {
	words := map[string]bool{}
	for _, w := range strings.FieldsFunc(strings.ToLower(sql), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_'
	}) {
		words[w] = true
	}
	var used, rest []generate.Table
	for _, t := range tables {
		if words[strings.ToLower(t.Name)] {
			used = append(used, t)
		} else {
			rest = append(rest, t)
		}
	}
	return append(used, rest...)
}

// templates are the questions a table's columns suggest, one of each kind
// before the second of any: a count per text column, a total of a number
// per text column, an average of a number, the most recent rows (with a
// date column), and the row count.
func templates(t generate.Table) []string {
	var texts, numbers []string
	dated := false
	for _, c := range t.Columns {
		switch name := words(c.Name); {
		case c.Type == "text" && c.Name != "name":
			texts = append(texts, name)
		case isMeasure(c):
			numbers = append(numbers, name)
		case c.Type == "date" || c.Type == "timestamptz":
			dated = true
		}
	}
	table := words(t.Name)
	kinds := make([][]string, 5)
	for _, x := range texts {
		kinds[0] = append(kinds[0], fmt.Sprintf("How many %s per %s?", table, x))
	}
	for _, n := range numbers {
		for _, x := range texts {
			kinds[1] = append(kinds[1], fmt.Sprintf("What is the total %s per %s?", n, x))
		}
		kinds[2] = append(kinds[2], fmt.Sprintf("What is the average %s of %s?", n, table))
	}
	if dated {
		kinds[3] = []string{fmt.Sprintf("Show the 5 most recent %s", table)}
	}
	kinds[4] = []string{fmt.Sprintf("How many %s do we have?", table)}
	return interleave(kinds)
}

// interleave takes the first of each list, then the second of each, ….
func interleave(lists [][]string) []string {
	var out []string
	for i := 0; ; i++ {
		n := len(out)
		for _, l := range lists {
			if i < len(l) {
				out = append(out, l[i])
			}
		}
		if len(out) == n {
			return out
		}
	}
}

func isMeasure(c generate.Column) bool {
	switch c.Type {
	case "integer", "bigint", "numeric", "double precision":
		return c.Name != "id" && !strings.HasSuffix(c.Name, "_id")
	}
	return false
}

// words writes a catalog name as words ("signed_up" → "signed up").
func words(name string) string { return strings.ReplaceAll(name, "_", " ") }
