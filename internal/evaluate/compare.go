package evaluate

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/dbchat/dbchat/internal/sqlguard"
)

// Match is how a generated result compares with the gold one.
type Match struct {
	// Exact: the same rows (as a multiset, or in order when the gold SQL
	// orders its result), column by column in order; names are not
	// compared, since a generator may alias a column differently.
	Exact bool
	// Subset, as Defog's sql-eval has it: every gold column is matched by a
	// distinct generated column holding the same values, and the rows agree
	// on the matched columns (extra generated columns are allowed).
	Subset bool
}

// Compare compares the rows of a generated statement with those of the
// gold one; ordered says the gold statement orders its result (Ordered).
func Compare(gold, got [][]json.RawMessage, ordered bool) Match {
	g, h := normalise(gold), normalise(got)
	m := Match{Exact: width(g) == width(h) && sameRows(g, h, ordered)}
	m.Subset = m.Exact || subset(g, h, ordered)
	return m
}

// Ordered reports whether sql's top-level statement has an ORDER BY (so
// row order is part of its answer); SQL that does not parse counts as
// unordered.
func Ordered(sql string) bool {
	tree, err := sqlguard.Parse(sql)
	if err != nil || len(tree.Stmts) == 0 {
		return false
	}
	sel := tree.Stmts[len(tree.Stmts)-1].GetStmt().GetSelectStmt()
	return sel != nil && len(sel.GetSortClause()) > 0
}

// normalise renders each value as comparable text: numbers to 10
// significant digits (120.50 and 120.5, or a float and a numeric average,
// compare equal), strings and other values as their JSON.
func normalise(rows [][]json.RawMessage) [][]string {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = make([]string, len(r))
		for j, v := range r {
			out[i][j] = value(v)
		}
	}
	return out
}

func value(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) > 0 && (v[0] == '-' || v[0] >= '0' && v[0] <= '9') {
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return "n:" + strconv.FormatFloat(f, 'g', 10, 64)
		}
	}
	if len(v) > 0 && v[0] == '"' {
		// A number sent as a string (numeric beyond float precision).
		var s string
		if json.Unmarshal(v, &s) == nil {
			if f, err := strconv.ParseFloat(s, 64); err == nil && strings.TrimSpace(s) == s {
				return "n:" + strconv.FormatFloat(f, 'g', 10, 64)
			}
		}
	}
	return string(v)
}

func width(rows [][]string) int {
	if len(rows) == 0 {
		return -1 // no rows: any width matches
	}
	return len(rows[0])
}

// sameRows compares two results row by row, in order or as multisets.
func sameRows(a, b [][]string, ordered bool) bool {
	if len(a) != len(b) {
		return false
	}
	ka, kb := keys(a), keys(b)
	if !ordered {
		slices.Sort(ka)
		slices.Sort(kb)
	}
	return slices.Equal(ka, kb)
}

func keys(rows [][]string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = strings.Join(r, "\x00")
	}
	return out
}

// subset matches each gold column with an unused generated column of the
// same values (sorted), then compares the rows on the matched columns.
func subset(gold, got [][]string, ordered bool) bool {
	if len(gold) != len(got) {
		return false
	}
	if len(gold) == 0 {
		return true
	}
	used := make([]bool, len(got[0]))
	pick := make([]int, len(gold[0]))
	for j := range gold[0] {
		want := column(gold, j)
		pick[j] = -1
		for k := range got[0] {
			if !used[k] && slices.Equal(want, column(got, k)) {
				used[k], pick[j] = true, k
				break
			}
		}
		if pick[j] < 0 {
			return false
		}
	}
	projected := make([][]string, len(got))
	for i, r := range got {
		projected[i] = make([]string, len(pick))
		for j, k := range pick {
			projected[i][j] = r[k]
		}
	}
	return sameRows(gold, projected, ordered)
}

// column is column j's values, sorted.
func column(rows [][]string, j int) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r[j]
	}
	slices.Sort(out)
	return out
}
