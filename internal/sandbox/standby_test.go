package sandbox_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestRedTeamOnStandby is TestRedTeamWithoutParser on a hot standby (a
// real streaming replica of the test cluster): with the database layer
// alone, tenant B's marker never reaches tenant A, no statement changes
// anything, and every statement ran on the standby, none on the primary.
func TestRedTeamOnStandby(t *testing.T) {
	t.Parallel()
	r := newRedTeam(t, true)
	ctx := context.Background()
	sb := r.d.Standby(t) // B's marked rows, replayed
	box, err := tenant.NewSandbox(ctx, r.d.QueryURL, 4)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	// A bound long enough that nothing runs on the primary for lag.
	require.NoError(t, box.UseStandby(ctx, r.db, tenant.StandbyConfig{URL: sb.QueryURL, MonitorURL: sb.AppURL, MaxWait: time.Minute}))
	r.svc = sandbox.New(r.db, box)
	r.svc.SkipParserForTests()
	r.attack(t)
	require.Zero(t, box.OnPrimaryInstead(), "statements ran on the primary")
	require.Equal(t, int64(len(hostile("b", "s"))+1), box.OnStandby(), "statements on the standby")
}
