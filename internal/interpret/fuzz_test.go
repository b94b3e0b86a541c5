package interpret_test

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/dbchat/dbchat/internal/interpret"
)

// FuzzInterpret: for any text, Describe returns without panicking and
// never returns empty text, and text that does not parse is said to be
// undescribable. Seeded with the demo, red-team, sqlguard and
// specification corpora; a crasher found later belongs in testdata/fuzz.
//
//	go test -run '^$' -fuzz FuzzInterpret -fuzztime 60s ./internal/interpret/
func FuzzInterpret(f *testing.F) {
	for _, c := range demoSQL {
		f.Add(c.sql)
	}
	for _, sql := range redTeam {
		f.Add(sql)
	}
	for _, c := range summaries {
		f.Add(c.sql)
	}
	for _, sql := range guardAdmitted {
		f.Add(sql)
	}
	interpret.SetPanicHook(func(p any) { panic(p) }) // a recovered panic is still a bug
	f.Fuzz(func(t *testing.T, text string) {
		// The text as a statement, and as an expression in the places
		// expressions go, where mutations parse far more often.
		for _, sql := range []string{text, "SELECT " + text, "SELECT * FROM t WHERE " + text} {
			got := interpret.Describe(sql)
			if strings.TrimSpace(got) == "" {
				t.Fatalf("empty summary for %q", sql)
			}
			if _, err := pg_query.Parse(sql); err != nil && got != "A query this summary cannot fully describe" {
				t.Fatalf("%q does not parse but was described as %q", sql, got)
			}
		}
	})
}
