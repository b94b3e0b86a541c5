package chart

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
)

// card shows the first number of a one-row result as large text, with
// the database's exact digits.
func (s shape) card(cols []Column, rows [][]json.RawMessage) (Spec, error) {
	if len(s.numbers) == 0 || len(rows) != 1 {
		return nil, cannot(Card, fmt.Sprintf("one row with a number column (it has %d rows)", len(rows)), cols)
	}
	col := cols[s.numbers[0]]
	text := Text(rows[0][s.numbers[0]])
	if text == "" {
		text = "no value"
	}
	spec := base(col.Name, fmt.Sprintf("%s: %s", col.Name, text), []map[string]any{{"value": text}})
	spec["mark"] = map[string]any{"type": "text", "fontSize": 40, "fontWeight": "bold"}
	spec["encoding"] = map[string]any{"text": field("value", "nominal", col.Name)}
	spec["view"] = map[string]any{"stroke": nil}
	return spec, nil
}

// line plots the first number over the first date or timestamp column.
func (s shape) line(cols []Column, rows [][]json.RawMessage) (Spec, error) {
	if len(s.times) == 0 || len(s.numbers) == 0 {
		return nil, cannot(Line, "a date or timestamp column and a number column", cols)
	}
	t, y := s.times[0], s.numbers[0]
	values, used := points(rows, func(r []json.RawMessage) (map[string]any, bool) {
		v, ok := Float(r[y])
		return map[string]any{"time": Text(r[t]), "value": v}, ok && !IsNull(r[t])
	})
	desc := fmt.Sprintf("%s over %s: %s", cols[y].Name, cols[t].Name, firstRows(used, len(rows)))
	spec := base(fmt.Sprintf("%s by %s", cols[y].Name, cols[t].Name), desc, values)
	spec["mark"] = map[string]any{"type": "line", "point": true, "tooltip": true}
	spec["encoding"] = map[string]any{
		"x": field("time", "temporal", cols[t].Name),
		"y": field("value", "quantitative", cols[y].Name),
	}
	return spec, nil
}

// scatter plots the first number column against the second.
func (s shape) scatter(cols []Column, rows [][]json.RawMessage) (Spec, error) {
	if len(s.numbers) < 2 {
		return nil, cannot(Scatter, "two number columns", cols)
	}
	x, y := s.numbers[0], s.numbers[1]
	values, used := points(rows, func(r []json.RawMessage) (map[string]any, bool) {
		xv, xok := Float(r[x])
		yv, yok := Float(r[y])
		return map[string]any{"x": xv, "y": yv}, xok && yok
	})
	desc := fmt.Sprintf("%s against %s: %s", cols[y].Name, cols[x].Name, firstRows(used, len(rows)))
	spec := base(fmt.Sprintf("%s and %s", cols[x].Name, cols[y].Name), desc, values)
	spec["mark"] = map[string]any{"type": "point", "tooltip": true}
	spec["encoding"] = map[string]any{
		"x": field("x", "quantitative", cols[x].Name),
		"y": field("y", "quantitative", cols[y].Name),
	}
	return spec, nil
}

// points turns rows into at most MaxPoints data values (rows without
// values are skipped) and says how many rows it looked at.
func points(rows [][]json.RawMessage, point func([]json.RawMessage) (map[string]any, bool)) ([]map[string]any, int) {
	var out []map[string]any
	used := 0
	for _, r := range rows {
		if len(out) == MaxPoints {
			break
		}
		used++
		if p, ok := point(r); ok {
			out = append(out, p)
		}
	}
	return out, used
}

// bar totals the first number per label (the first text label, else an
// identifier, else a date) and draws the TopN largest, largest first, with
// the rest summed as one "Other" bar.
func (s shape) bar(cols []Column, rows [][]json.RawMessage) (Spec, error) {
	labels := append(slices.Clone(s.labels), s.times...)
	if len(labels) == 0 || len(s.numbers) == 0 {
		return nil, cannot(Bar, "a label column (text, boolean, date or an id) and a number column", cols)
	}
	l, y := labels[0], s.numbers[0]
	bars := topN(totals(rows, l, y))
	values := make([]map[string]any, len(bars))
	for i, b := range bars {
		values[i] = map[string]any{"label": b.label, "value": b.value}
	}
	desc := fmt.Sprintf("%s per %s: %d bars from %d rows", cols[y].Name, cols[l].Name, len(bars), len(rows))
	spec := base(fmt.Sprintf("%s per %s", cols[y].Name, cols[l].Name), desc, values)
	spec["mark"] = map[string]any{"type": "bar", "tooltip": true}
	y0 := field("label", "nominal", cols[l].Name)
	y0["sort"] = nil // the data's order: largest first, "Other" last
	spec["encoding"] = map[string]any{"y": y0, "x": field("value", "quantitative", cols[y].Name)}
	return spec, nil
}

type total struct {
	label string
	value float64
}

// totals sums column y per distinct label of column l, in first-seen
// order; rows without a number are left out, a NULL label reads "(null)".
func totals(rows [][]json.RawMessage, l, y int) []total {
	var out []total
	at := map[string]int{}
	for _, r := range rows {
		v, ok := Float(r[y])
		if !ok {
			continue
		}
		label := Text(r[l])
		if IsNull(r[l]) {
			label = "(null)"
		}
		i, seen := at[label]
		if !seen {
			i = len(out)
			at[label] = i
			out = append(out, total{label: label})
		}
		out[i].value += v
	}
	return out
}

// topN orders totals largest first (ties keep their order) and folds all
// but the TopN largest into one "Other (k more)" total.
func topN(ts []total) []total {
	slices.SortStableFunc(ts, func(a, b total) int { return cmp.Compare(b.value, a.value) })
	if len(ts) <= TopN {
		return ts
	}
	other := total{label: fmt.Sprintf("Other (%d more)", len(ts)-TopN)}
	for _, t := range ts[TopN:] {
		other.value += t.value
	}
	return append(ts[:TopN:TopN], other)
}
