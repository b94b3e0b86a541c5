package generate_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/evalset"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/sqlguard"
)

// FuzzOffline: for any question the offline generator either refuses with
// ErrNoSQL or returns a statement the sandbox's parser admits; it never
// panics. Values are "found" when they are capitalised, so filters are built.
func FuzzOffline(f *testing.F) {
	var tables []generate.Table
	policy := sqlguard.Policy{Schema: "t_x", Tables: map[string]bool{}, Columns: map[string]map[string]bool{}}
	for _, s := range evalset.Schemas {
		for _, c := range s.Cases {
			f.Add(c.Question)
		}
		for _, t := range evalset.Tables(s) {
			tables = append(tables, t)
			policy.Tables[t.Name] = true
			policy.Columns[t.Name] = map[string]bool{"tenant_id": true, "_row_id": true}
			for _, c := range t.Columns {
				policy.Columns[t.Name][c.Name] = true
			}
		}
	}
	for _, q := range []string{"", "not", "or or or", "top -5 employees", "between 1 and", "last 0 days", "'", "\"unterminated", "in March", "9999-99-99"} {
		f.Add(q)
	}
	find := func(_ context.Context, _, _ string, values []string) ([]string, error) {
		return slices.DeleteFunc(slices.Clone(values), func(v string) bool { return v == "" || v != strings.ToUpper(v[:1])+v[1:] }), nil
	}
	gen := generate.NewOffline()
	f.Fuzz(func(t *testing.T, question string) {
		out, err := gen.Generate(context.Background(), generate.Input{Question: question, Tables: tables, FindValues: find})
		if err != nil {
			if apperr.CodeOf(err) != apperr.NoSQL {
				t.Fatalf("%q: %v", question, err)
			}
			return
		}
		if err := sqlguard.Check(out.SQL, policy); err != nil {
			t.Fatalf("%q → %s: %v", question, out.SQL, err)
		}
	})
}
