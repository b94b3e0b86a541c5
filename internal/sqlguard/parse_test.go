package sqlguard_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/sqlguard"
)

// nested builds a statement whose parse tree nests depth levels of one
// shape: open repeated, the innermost expression, then close repeated.
func nested(open, inner, close string, depth int) string {
	return "SELECT " + strings.Repeat(open, depth) + inner + strings.Repeat(close, depth)
}

// The shapes of deep nesting the parser builds: each level needs one token
// that Parse counts (an operator, a keyword, an opening bracket).
var deepShapes = map[string]func(depth int) string{
	"operators":   func(d int) string { return nested("1+", "1", "", d) },
	"concatenate": func(d int) string { return nested("'a'||", "'a'", "", d) },
	"unary minus": func(d int) string { return nested("- ", "1", "", d) },
	"not":         func(d int) string { return nested("NOT ", "true", "", d) },
	"calls":       func(d int) string { return nested("abs(", "1", ")", d) },
	"parentheses": func(d int) string { return nested("(", "1", ")", d) },
	"arrays":      func(d int) string { return nested("ARRAY[", "1", "]", d) },
	"casts":       func(d int) string { return "SELECT 1" + strings.Repeat("::int", d) },
	"case":        func(d int) string { return nested("CASE WHEN true THEN ", "1", " END", d/4) },
	"subqueries":  func(d int) string { return nested("(SELECT ", "1", ")", d/2) },
}

// TestDeepStatementsAreRefusedNotCrashed: a statement nested deeper than
// libpg_query's C code can turn into protobuf on a thread's stack used to
// kill the whole process (SIGSEGV in cgo, found with SELECT 1+1+…+1 of
// 25,000 terms through /v1/sql). Each shape is refused with a Rejection
// past the bound, and parses (or is refused for a reason of its own,
// never by crashing) just under it. Without the bound this test dies.
func TestDeepStatementsAreRefusedNotCrashed(t *testing.T) {
	for name, shape := range deepShapes {
		t.Run(name, func(t *testing.T) {
			_, err := sqlguard.Inspect(shape(25_000), policy)
			var rej *sqlguard.Rejection
			require.ErrorAs(t, err, &rej)
			require.Contains(t, err.Error(), "too complex to parse safely")

			// Within 5% under the bound the parser runs, and returns.
			for d := sqlguard.MaxNesting; ; d = d * 95 / 100 {
				_, err = sqlguard.Parse(shape(d))
				if err == nil || !strings.Contains(err.Error(), "too complex to parse safely") {
					break
				}
			}
		})
	}
}

// TestLongFlatStatementsAreNotTooComplex: lists nest nothing, so a long
// IN list or select list is parsed whatever its length.
func TestLongFlatStatementsAreNotTooComplex(t *testing.T) {
	in := "SELECT id FROM orders WHERE id IN (" + strings.Repeat("1, ", 30_000) + "1)"
	require.NoError(t, sqlguard.Check(in, policy))
	cols := "SELECT " + strings.Repeat("id, ", 20_000) + "id FROM orders"
	require.NoError(t, sqlguard.Check(cols, policy))
}
