package summary

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/dbchat/dbchat/internal/chart"
)

// maxText is the most characters of one value a summary quotes.
const maxText = 60

// point is a number (as the database wrote it, and as a float) under a key:
// a label or an instant.
type point struct {
	key, text string
	value     float64
}

// points reads the rows with a number in column v, keyed by column k.
func points(rows [][]json.RawMessage, k, v int) []point {
	var out []point
	for _, r := range rows {
		if f, ok := chart.Float(r[v]); ok {
			out = append(out, point{key: show(r[k]), text: chart.Text(r[v]), value: f})
		}
	}
	return out
}

// show renders a value for a sentence: NULL as "(null)", midnight
// timestamps as their date, long text cut.
func show(v json.RawMessage) string {
	if chart.IsNull(v) {
		return "(null)"
	}
	s := chart.Text(v)
	for _, midnight := range []string{"T00:00:00Z", "T00:00:00"} {
		s = strings.TrimSuffix(s, midnight)
	}
	if r := []rune(s); len(r) > maxText {
		s = string(r[:maxText-1]) + "…"
	}
	return s
}

// oneRow names the values of a one-row result.
func oneRow(cols []chart.Column, row []json.RawMessage) string {
	var parts []string
	for i, c := range cols[:min(len(cols), MaxValues)] {
		v := show(row[i])
		if chart.IsNull(row[i]) {
			v = "empty"
		}
		parts = append(parts, fmt.Sprintf("%s is %s", c.Name, v))
	}
	if len(parts) == 0 {
		return "it has no columns."
	}
	s := list(parts)
	if more := len(cols) - MaxValues; more > 0 {
		s += fmt.Sprintf(" (and %d more %s)", more, plural(more, "column"))
	}
	return s + "."
}

// series gives a time series' first and last values, its trend and its
// extremes, in time order (ISO dates and RFC 3339 timestamps sort as text).
func series(timeName, name string, pts []point) string {
	slices.SortStableFunc(pts, func(a, b point) int { return strings.Compare(a.key, b.key) })
	switch len(pts) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf("One point: %s is %s on %s.", name, pts[0].text, pts[0].key)
	}
	a, z := pts[0], pts[len(pts)-1]
	hi, lo := extremes(pts)
	return fmt.Sprintf("From %s to %s, %s went from %s to %s (%s); highest %s on %s, lowest %s on %s.",
		a.key, z.key, name, a.text, z.text, trend(a.value, z.value), hi.text, hi.key, lo.text, lo.key)
}

// trend words the change from a to z.
func trend(a, z float64) string {
	switch {
	case a == z:
		return "unchanged"
	case a == 0 && z > 0:
		return "up"
	case a == 0:
		return "down"
	}
	pct := math.Round((z - a) / math.Abs(a) * 100)
	if pct >= 0 {
		return fmt.Sprintf("up %.0f%%", pct)
	}
	return fmt.Sprintf("down %.0f%%", -pct)
}

// extremes are the first highest and the first lowest points.
func extremes(pts []point) (hi, lo point) {
	hi, lo = pts[0], pts[0]
	for _, p := range pts[1:] {
		if p.value > hi.value {
			hi = p
		}
		if p.value < lo.value {
			lo = p
		}
	}
	return hi, lo
}

// ranking lists the largest values by label (ties in the result's order)
// and, when there are more than MaxValues, the lowest.
func ranking(name string, pts []point) string {
	if len(pts) == 0 {
		return ""
	}
	slices.SortStableFunc(pts, func(a, b point) int { return cmp.Compare(b.value, a.value) })
	var top []string
	for _, p := range pts[:min(len(pts), MaxValues)] {
		top = append(top, fmt.Sprintf("%s (%s)", p.key, p.text))
	}
	if len(pts) <= MaxValues {
		return fmt.Sprintf("By %s: %s.", name, strings.Join(top, ", "))
	}
	lo := pts[len(pts)-1]
	return fmt.Sprintf("Top %d by %s: %s; lowest: %s (%s).", MaxValues, name, strings.Join(top, ", "), lo.key, lo.text)
}

// spread gives a number's range.
func spread(name string, pts []point) string {
	if len(pts) == 0 {
		return ""
	}
	hi, lo := extremes(pts)
	if hi.value == lo.value {
		return fmt.Sprintf("Every row with a value has %s %s.", name, hi.text)
	}
	return fmt.Sprintf("Values of %s range from %s to %s.", name, lo.text, hi.text)
}

// common names the most frequent value of the first label column (text
// before identifiers) that repeats one, or says the first one's values
// are all distinct.
func common(cols []chart.Column, rows [][]json.RawMessage, labels []int) string {
	for _, i := range labels {
		if best, n := mode(rows, i); n > 1 {
			return fmt.Sprintf("Most common %s: %s (%d of %d rows).", cols[i].Name, best, n, len(rows))
		}
	}
	return fmt.Sprintf("All %d values of %s are distinct.", len(rows), cols[labels[0]].Name)
}

// mode is column i's most frequent value (the first seen of equals) and
// how often it occurs.
func mode(rows [][]json.RawMessage, i int) (string, int) {
	counts := map[string]int{}
	best, bestN := "", 0
	for _, r := range rows {
		v := show(r[i])
		counts[v]++
		if counts[v] > bestN {
			best, bestN = v, counts[v]
		}
	}
	return best, bestN
}

// list joins "a, b and c".
func list(parts []string) string {
	if len(parts) < 2 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
