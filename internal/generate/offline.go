package generate

import (
	"context"
	"slices"
	"time"
)

// Offline answers without a network. It reuses a trained pair when the
// question is a near-duplicate, and otherwise builds one SELECT over one
// catalog table from the question's words: counts, sums, averages, minimum
// and maximum, top N, newest and oldest, groupings ("per country"),
// superlatives over groups ("which department has the most employees"),
// comparisons, date bounds, empty and boolean columns, negation, and values
// named in the question that the data holds. Every word of the question
// must be accounted for by the statement (or be a stop word); otherwise it
// refuses with ErrNoSQL and says which word it could not use, rather than
// answer a different question. docs/NLSQL.md lists what it handles.
type Offline struct {
	// ReuseDistance is how close (cosine distance) a trained question must
	// be for its SQL to be reused as is.
	ReuseDistance float64
	// Probes is the question's budget for looking up the values it names:
	// at most MaxProbes sandbox statements (one per text column, each
	// checking all candidate values at once) taking at most ProbeTime in
	// all, for at most MaxValues candidate values. A value still unplaced
	// when the budget is spent is a word the statement cannot use, so the
	// question is refused.
	MaxProbes, MaxValues int
	ProbeTime            time.Duration
}

// Probe budget defaults.
const (
	DefaultMaxProbes = 50
	DefaultMaxValues = 32
	DefaultProbeTime = 5 * time.Second
)

// NewOffline returns the offline generator with its defaults.
func NewOffline() *Offline {
	return &Offline{ReuseDistance: 0.12, MaxProbes: DefaultMaxProbes, MaxValues: DefaultMaxValues, ProbeTime: DefaultProbeTime}
}

// Name implements Generator.
func (o *Offline) Name() string { return "offline" }

// Generate implements Generator.
func (o *Offline) Generate(ctx context.Context, in Input) (Output, error) {
	named := len(in.Turns) == 0 || namesTable(in.Question, in.Tables)
	if len(in.Examples) > 0 && in.Examples[0].Distance <= o.ReuseDistance && in.PriorSQL == "" && named {
		return Output{SQL: in.Examples[0].SQL, Resolved: in.Question}, nil
	}
	if len(in.Turns) == 0 {
		return o.standalone(ctx, in)
	}
	// In a conversation, a question that stands on its own naming a table
	// is answered as such; otherwise it refines the last turn ("and only
	// for 2024?", "per customer").
	var aloneErr error
	if named {
		out, err := o.standalone(ctx, in)
		if err == nil {
			return out, nil
		}
		aloneErr = err
	}
	out, err := o.followUp(ctx, in)
	if err != nil && aloneErr != nil {
		return Output{}, aloneErr
	}
	return out, err
}

// namesTable reports whether question names one of tables (so it is not a
// bare follow-up of the last turn).
func namesTable(question string, tables []Table) bool {
	q := parseQuestion(question)
	for _, t := range tables {
		for i := range q.toks {
			if _, ok := q.nameAt(i, t.Name); ok {
				return true
			}
		}
	}
	return false
}

// standalone answers the question on its own.
func (o *Offline) standalone(ctx context.Context, in Input) (Output, error) {
	b, err := newBuilder(parseQuestion(in.Question), in.Tables)
	if err != nil {
		return Output{}, err
	}
	if err := b.structure(); err != nil {
		return Output{}, err
	}
	spans := b.valueSpans()
	b.applyValues(spans, o.placeValues(ctx, b.t, candidates(spans), in.FindValues))
	if err := b.finish(); err != nil {
		return Output{}, err
	}
	return Output{SQL: b.sql(), Resolved: in.Question}, nil
}

// Question implements Generator: the offline generator cannot describe SQL
// in words, so training pairs need a question.
func (o *Offline) Question(context.Context, string, Input) (string, error) {
	return "", ErrNoSQL("the offline generator cannot write a question for SQL; provide one")
}

// placeValues finds, within the probe budget, the text column of t that
// holds each candidate value (the first one in catalog order), with one
// statement per column for all values still unplaced.
func (o *Offline) placeValues(ctx context.Context, t Table, values []string, find func(context.Context, string, string, []string) ([]string, error)) map[string]string {
	placed := map[string]string{}
	if find == nil || len(values) == 0 {
		return placed
	}
	open := values[:min(len(values), o.MaxValues)]
	ctx, cancel := context.WithTimeout(ctx, o.ProbeTime)
	defer cancel()
	probes := 0
	for _, c := range t.Columns {
		if len(open) == 0 || probes >= o.MaxProbes || ctx.Err() != nil {
			break
		}
		if kind(c.Type) != "text" {
			continue
		}
		probes++
		found, err := find(ctx, t.Name, c.Name, open)
		if err != nil {
			continue // a failed probe places nothing
		}
		open = slices.DeleteFunc(slices.Clone(open), func(v string) bool {
			if slices.Contains(found, v) {
				placed[v] = c.Name
				return true
			}
			return false
		})
	}
	return placed
}
