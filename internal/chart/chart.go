// Package chart chooses a Vega-Lite v5 chart for a query result by fixed
// rules over its column types and cardinality, and builds the spec with the
// result's data inline and bounded:
//
//   - one row holding one number → a single-value card (a text mark);
//   - a date or timestamp column with more than one distinct value and a
//     number column → a line (the first of each);
//   - a label column (text, boolean, uuid, or a number named id or *_id)
//     and a number column → a horizontal bar per label, the TopN largest and
//     the rest summed as one "Other" bar;
//   - two number columns → a scatter plot;
//   - anything else → no chart (nil).
//
// A caller may ask for one of the types instead (ParseType); the spec is
// then built if the result has the columns that type needs, or an
// apperr.Invalid error on the field chart_type says what is missing.
//
// Nothing in a spec is code: the data sit under fixed field names (label,
// value, time, x, y), column names appear only as axis and chart titles,
// and every mark, encoding and format is a constant of this package. A
// generator (an LLM) may at most choose a Type from the fixed list.
// internal/chart/testdata holds the official Vega-Lite v5 JSON schema
// (vendored from the vega-lite npm package by vendor-schema.sh), against
// which the tests validate every spec the package produces.
package chart

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dbchat/dbchat/internal/apperr"
)

// Schema is the Vega-Lite version every spec declares in its $schema.
const Schema = "https://vega.github.io/schema/vega-lite/v5.json"

// Bounds on the data a spec carries inline.
const (
	// MaxPoints is the most points a line or scatter spec holds: the
	// result's first MaxPoints rows with values (its description says so
	// when rows were left out).
	MaxPoints = 500
	// TopN is the most labelled bars: the TopN largest totals, and the
	// remaining labels summed into one "Other (k more)" bar, so a bar spec
	// holds at most TopN+1 data points.
	TopN = 10
)

// Spec is a Vega-Lite v5 top-level spec, ready to be encoded as JSON.
type Spec map[string]any

// Type is a kind of chart.
type Type string

// The chart types. Auto (the empty string) lets the rules choose.
const (
	Auto    Type = ""
	None    Type = "none"
	Line    Type = "line"
	Bar     Type = "bar"
	Card    Type = "card"
	Scatter Type = "scatter"
)

// Types lists the types a caller may ask for.
var Types = []Type{Line, Bar, Card, Scatter, None}

// ParseType reads a requested chart type: empty is Auto; anything not in
// Types is an apperr.Invalid error on the field chart_type.
func ParseType(s string) (Type, error) {
	t := Type(strings.TrimSpace(strings.ToLower(s)))
	if t == Auto {
		return Auto, nil
	}
	for _, known := range Types {
		if t == known {
			return t, nil
		}
	}
	return Auto, apperr.Field("chart_type", "must be one of %s (or absent, to let the rules choose)", typeList())
}

func typeList() string {
	names := make([]string, len(Types))
	for i, t := range Types {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// Choose returns the spec for a result: columns as the sandbox reports
// them and rows of JSON values. want is the caller's Type, or Auto for the
// rules; a nil Spec means no chart. A wanted type the result cannot show is
// an apperr.Invalid error on the field chart_type.
func Choose(cols []Column, rows [][]json.RawMessage, want Type) (Spec, error) {
	s := shapeOf(cols)
	if want == Auto {
		want = s.auto(rows)
	}
	switch want {
	case None:
		return nil, nil
	case Card:
		return s.card(cols, rows)
	case Line:
		return s.line(cols, rows)
	case Bar:
		return s.bar(cols, rows)
	case Scatter:
		return s.scatter(cols, rows)
	}
	return nil, apperr.Field("chart_type", "must be one of %s", typeList())
}

// auto applies the rules, in order.
func (s shape) auto(rows [][]json.RawMessage) Type {
	switch {
	case len(rows) == 0:
		return None
	case len(rows) == 1 && s.width == 1 && len(s.numbers) == 1:
		return Card
	case len(s.times) > 0 && len(s.numbers) > 0 && distinct(rows, s.times[0]) > 1:
		return Line
	case len(s.numbers) > 0 && len(s.labels)+len(s.times) > 0:
		return Bar
	case len(s.numbers) >= 2:
		return Scatter
	}
	return None
}

// distinct counts the distinct values of column i.
func distinct(rows [][]json.RawMessage, i int) int {
	seen := map[string]bool{}
	for _, r := range rows {
		seen[string(r[i])] = true
	}
	return len(seen)
}

// cannot is the chart_type error for a type the result cannot show.
func cannot(t Type, needs string, cols []Column) error {
	have := make([]string, len(cols))
	for i, c := range cols {
		have[i] = fmt.Sprintf("%s (%s)", c.Name, c.Type)
	}
	if len(have) == 0 {
		have = []string{"no columns"}
	}
	return apperr.Field("chart_type", "%s needs %s; the result has %s", t, needs, strings.Join(have, ", "))
}

// base is what every spec shares.
func base(title, description string, values []map[string]any) Spec {
	if values == nil {
		values = []map[string]any{}
	}
	return Spec{
		"$schema":     Schema,
		"title":       title,
		"description": description,
		"data":        map[string]any{"values": values},
	}
}

// field is one encoding channel over a fixed data field.
func field(name, typ, title string) map[string]any {
	return map[string]any{"field": name, "type": typ, "title": title}
}

// firstRows describes how many rows a capped spec shows.
func firstRows(shown, total int) string {
	if shown == total {
		return fmt.Sprintf("%d rows", total)
	}
	return fmt.Sprintf("the first %d of %d rows", shown, total)
}
