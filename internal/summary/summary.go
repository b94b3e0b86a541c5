// Package summary writes a short English summary of a query result,
// computed in Go from the rows and nothing else: never by a generator, so
// the same rows always give the same words, and no row goes anywhere to be
// summarised.
//
// The summary is one to three sentences: how many rows; then, by the
// result's shape (column kinds as internal/chart classifies them), the
// value of a one-row result, the trend and extremes of a time series (a
// date or timestamp column and a number), the largest values per label (a
// label and a number), the range of a number, or a label's most common
// value. Values are written as the database returned them (exact digits).
package summary

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/dbchat/dbchat/internal/chart"
)

// MaxValues is how many columns a one-row summary names and how many
// labels a "top" sentence lists.
const MaxValues = 3

// Summarize describes a result: its columns as the sandbox reports them
// and its rows of JSON values; truncated says the sandbox left rows out.
func Summarize(cols []chart.Column, rows [][]json.RawMessage, truncated bool) string {
	out := []string{count(len(rows), truncated)}
	if len(rows) == 0 {
		return out[0]
	}
	if s := detail(pick(cols), cols, rows); s != "" {
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// count is the first sentence (for one row, the lead-in to its values).
func count(n int, truncated bool) string {
	switch {
	case truncated && n == 1:
		return "The first row (more rows matched; the limit left them out):"
	case truncated:
		return fmt.Sprintf("The first %d rows (more rows matched; the limit left them out).", n)
	case n == 0:
		return "No rows."
	case n == 1:
		return "1 row:"
	}
	return fmt.Sprintf("%d rows.", n)
}

// detail is what the result's shape has to say after the count.
func detail(p picked, cols []chart.Column, rows [][]json.RawMessage) string {
	switch {
	case len(rows) == 1:
		return oneRow(cols, rows[0])
	case p.time >= 0 && p.number >= 0:
		return series(cols[p.time].Name, cols[p.number].Name, points(rows, p.time, p.number))
	case p.label >= 0 && p.number >= 0:
		return ranking(cols[p.number].Name, points(rows, p.label, p.number))
	case p.number >= 0:
		return spread(cols[p.number].Name, points(rows, p.number, p.number))
	case p.label >= 0:
		return common(cols, rows, p.labels)
	}
	return ""
}

// picked is the first column of each kind a summary uses (-1: none), and
// every label column; text labels come before identifiers.
type picked struct {
	label, time, number int
	labels              []int
}

func pick(cols []chart.Column) picked {
	p := picked{label: -1, time: -1, number: -1}
	var ids []int
	for i, c := range cols {
		switch k := chart.KindOf(c); {
		case k == chart.Label && isID(c.Name):
			ids = append(ids, i)
		case k == chart.Label:
			p.labels = append(p.labels, i)
		case k == chart.Time:
			p.time = first(p.time, i)
		case k == chart.Number:
			p.number = first(p.number, i)
		}
	}
	p.labels = append(p.labels, ids...)
	if len(p.labels) > 0 {
		p.label = p.labels[0]
	}
	return p
}

func first(have, i int) int {
	if have >= 0 {
		return have
	}
	return i
}

func isID(name string) bool {
	n := strings.ToLower(name)
	return n == "id" || strings.HasSuffix(n, "_id")
}
