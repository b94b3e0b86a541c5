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
