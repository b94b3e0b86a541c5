package evalset_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/evalset"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestOfflineOnUnseenSchemas asks the offline generator every question of
// the evaluation schemas: no answer may be wrong (other rows than the
// person's SQL, or an answer to a question the schema cannot answer), and
// each answerable question of the set is answered correctly.
func TestOfflineOnUnseenSchemas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	box := dbtest.NewSandboxed(t, 2)
	for _, s := range evalset.Schemas {
		tn := dbtest.NewTenant(t, box.Tenants, "Eval "+s.Name)
		require.NoError(t, box.Tenants.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error { return evalset.Load(ctx, tx, s) }))
		score, err := evalset.Run(tenant.NewContext(ctx, tn.Identity), generate.NewOffline(), box.SQL, s)
		require.NoError(t, err)
		for _, o := range score.Outcomes {
			t.Logf("%s %-8s %q → %s %s", s.Name, o.Verdict, o.Question, o.SQL, o.Detail)
			switch {
			case o.Verdict == evalset.Wrong:
				t.Errorf("%s: wrong answer to %q: %s (%s)", s.Name, o.Question, o.SQL, o.Detail)
			case o.Want != "" && o.Verdict != evalset.Correct:
				t.Errorf("%s: %q was not answered: %s", s.Name, o.Question, o.Detail)
			}
		}
		t.Logf("%s: %d correct, %d refused, %d wrong", s.Name, score.Correct, score.Refused, score.Wrong)
		require.Zero(t, score.Wrong)
	}
}

// TestOfflineNeverAnswersWrongOnBlindSchemas asks every question of the
// blind schemas (written without reading the generator): the offline
// generator may refuse any of them, but no answer may be wrong.
func TestOfflineNeverAnswersWrongOnBlindSchemas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	box := dbtest.NewSandboxed(t, 2)
	answered := 0
	for _, s := range evalset.Blind {
		tn := dbtest.NewTenant(t, box.Tenants, "Blind "+s.Name)
		require.NoError(t, box.Tenants.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error { return evalset.Load(ctx, tx, s) }))
		score, err := evalset.Run(tenant.NewContext(ctx, tn.Identity), generate.NewOffline(), box.SQL, s)
		require.NoError(t, err)
		for _, o := range score.Outcomes {
			t.Logf("%s %-8s %q → %s %s", s.Name, o.Verdict, o.Question, o.SQL, o.Detail)
			if o.Verdict == evalset.Wrong {
				t.Errorf("%s: wrong answer to %q: %s (%s)", s.Name, o.Question, o.SQL, o.Detail)
			}
		}
		t.Logf("%s: %d correct, %d refused, %d wrong", s.Name, score.Correct, score.Refused, score.Wrong)
		answered += score.Correct
	}
	// Refusing everything would pass the rule above; it must not be how.
	require.GreaterOrEqual(t, answered, 40, "the offline generator answered too few of the blind questions")
}

// TestOfflineNewShapesStayNarrow asks the shapes the offline generator
// learned from the blind set ("most common", a year number column, "the 3
// largest") and their near misses: the shapes are answered, and what only
// looks like them is refused, never answered as something else. "Books lost
// in 2020" names a status, not the year they were published; "the 3
// highest fines" is three rows, not one maximum.
func TestOfflineNewShapesStayNarrow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	box := dbtest.NewSandboxed(t, 2)
	s := evalset.Library
	s.Cases = []evalset.Case{
		{"Which genre is most common?", `SELECT genre, count(*) FROM books GROUP BY genre ORDER BY 2 DESC, 1 LIMIT 1`},
		{"How many books were published before 2015?", `SELECT count(*) FROM books WHERE published_year < 2015`},
		{"List the 2 largest loans by fine", `SELECT * FROM loans ORDER BY fine DESC LIMIT 2`},
		{"How many books were lost in 2020?", `SELECT count(*) FROM books WHERE false`},
		{"What are the 3 highest fines?", `SELECT fine FROM loans ORDER BY fine DESC LIMIT 3`},
		{"How many books were published in March 2020?", ``},
	}
	tn := dbtest.NewTenant(t, box.Tenants, "Narrow")
	require.NoError(t, box.Tenants.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error { return evalset.Load(ctx, tx, s) }))
	score, err := evalset.Run(tenant.NewContext(ctx, tn.Identity), generate.NewOffline(), box.SQL, s)
	require.NoError(t, err)
	verdicts := map[string]string{}
	for _, o := range score.Outcomes {
		t.Logf("%-8s %q → %s %s", o.Verdict, o.Question, o.SQL, o.Detail)
		verdicts[o.Question] = o.Verdict
	}
	require.Zero(t, score.Wrong)
	require.Equal(t, evalset.Correct, verdicts["Which genre is most common?"])
	require.Equal(t, evalset.Correct, verdicts["How many books were published before 2015?"])
	require.Equal(t, evalset.Refused, verdicts["How many books were lost in 2020?"])
	require.Equal(t, evalset.Refused, verdicts["What are the 3 highest fines?"])
}
