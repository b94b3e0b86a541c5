package nlsql_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// A question asked as it was trained (up to its first letter's case, spaces
// at the ends and the final ?)
// gets its pair first, whatever the vector search returns: here the vector
// is another question's, on the HNSW path and on the exact one. The lookup
// honours Exclude (an evaluation's leave-one-out) and the tenant's policy
// (B trained the same question).
func TestRetrieveFindsTheQuestionAsked(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	def := w.modelID(t, w.a, provision.DefaultModel)
	const trained = "How many orders did customer 42 place?"
	var items []nlsql.NewItem
	for i := range 30 {
		items = append(items, nlsql.NewItem{Kind: nlsql.KindSQL, Question: fmt.Sprintf("How many orders did customer %d place?", i+40),
			Content: fmt.Sprintf("SELECT count(*) FROM orders WHERE customer_id = %d", i+40)})
	}
	pairs := w.add(t, w.a, def, items...)
	want := pairs[2]
	require.Equal(t, trained, *want.Question)
	w.add(t, w.b, w.modelID(t, w.b, provision.DefaultModel), nlsql.NewItem{Kind: nlsql.KindSQL, Question: trained, Content: "SELECT 42 FROM orders"})

	vec := embed.NewLocal().Vector("What is the total amount per country?")
	retrieve := func(r nlsql.Retriever) nlsql.Context {
		var c nlsql.Context
		w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
			var err error
			c, err = r.Retrieve(ctx, tx, def, embed.NewLocal().Name(), vec, nlsql.Ks{SQL: 3, DDL: -1, Documentation: -1})
			return err
		})
		return c
	}
	for _, m := range []nlsql.Method{nlsql.ForceHNSW, nlsql.ForceExact} {
		without := retrieve(nlsql.Retriever{Method: m})
		require.Len(t, without.SQL, 3)
		require.NotContains(t, ids(without.SQL), want.ID, "%v: the vector alone does not find it (the test's control)", m)

		got := retrieve(nlsql.Retriever{Method: m, Question: "  how many orders did customer 42 place "})
		require.Len(t, got.SQL, 3, "%v: still k pairs", m)
		require.Equal(t, want.ID, got.SQL[0].ID, "%v: the question's own pair first", m)
		require.Equal(t, *want.Question, got.SQL[0].Question)
		require.Greater(t, got.SQL[0].Distance, 0.0, "%v: with its true distance", m)
		require.Equal(t, ids(without.SQL)[:2], ids(got.SQL)[1:], "%v: then the nearest, once each", m)

		// The lookup can use its index under the forced policy (a
		// condition with a function that is not leakproof could not:
		// the table was scanned); sequential scans are off, since this
		// table is too small for the planner to prefer the index.
		var plans []string
		w.tx(t, w.a, func(ctx context.Context, tx tenant.Conn) error {
			if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
				return err
			}
			r := nlsql.WithPlanHook(nlsql.Retriever{Method: m, Question: trained}, func(p string) { plans = append(plans, p) })
			_, err := r.Retrieve(ctx, tx, def, embed.NewLocal().Name(), vec, nlsql.Ks{SQL: 3, DDL: -1, Documentation: -1})
			return err
		})
		require.Contains(t, strings.Join(plans, "\n"), "training_data_question_idx", "%v", m)

		left := retrieve(nlsql.Retriever{Method: m, Question: trained, Exclude: []uuid.UUID{want.ID}})
		require.NotContains(t, ids(left.SQL), want.ID, "%v: Exclude holds for the lookup too", m)
		require.Equal(t, ids(without.SQL), ids(left.SQL))
	}
}

func ids(ms []nlsql.Match) []uuid.UUID {
	out := make([]uuid.UUID, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestQuestionForms(t *testing.T) {
	require.Equal(t, []string{"how many", "how many?", "how many.", "how many!", "How many", "How many?", "How many.", "How many!"},
		nlsql.QuestionForms(" how many?! "))
	forms := nlsql.QuestionForms("über alles")
	require.Len(t, forms, 8)
	require.Contains(t, forms, "Über alles?")
	require.Empty(t, nlsql.QuestionForms(" ?? "))
}
