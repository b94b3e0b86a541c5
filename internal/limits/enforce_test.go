package limits_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/limits"
	"github.com/dbchat/dbchat/internal/tenant"
)

// A question's quota check is one round trip: the month's LLM tokens are
// read with the day's count; each quota still refuses on its own.
func TestQuestionIsOneRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db, writes := d.CountingTenants(t)
	a := dbtest.NewTenant(t, db, "A")
	actx := tenant.NewContext(ctx, a.Identity)
	day, tokens := 3.0, 100.0
	svc := limits.New(db, limits.Limits{limits.QuestionsPerDay: &day, limits.LLMTokensPerMonth: &tokens})
	for i := range 2 { // the first pass prepares the statements
		writes.Store(0)
		require.NoError(t, svc.Question(actx))
		if i == 1 {
			require.Equal(t, int64(1), writes.Load(), "round trips of one question's check")
		}
	}
	require.NoError(t, svc.AddLLMTokens(actx, 100))
	err := svc.Question(actx)
	require.Equal(t, apperr.QuotaExceeded, apperr.CodeOf(err), "%v", err)
	require.Equal(t, limits.LLMTokensPerMonth, apperr.As(err).Details["quota"])
	require.EqualValues(t, 100, apperr.As(err).Details["used"])
	err = svc.Question(actx) // the fourth today
	require.Equal(t, limits.QuestionsPerDay, apperr.As(err).Details["quota"], "%v", err)
}
