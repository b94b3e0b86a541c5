package tenant_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/tenant"
)

// TestSandboxLogsInAsTheTenantsQueryLogin: with the tenants split across
// three query logins, every statement's session user is its tenant's login
// and its role the tenant's; a sandbox of two connections serving tenants
// of all three logins at once never has more than two open; and a sandbox
// that was not told of the split refuses the tenants of the other logins
// (the database, not the sandbox, decides which login may become whom)
// with 503, the service's fault, not the statement's; one that follows the
// database's count moves to its new logins without a restart.
func TestSandboxLogsInAsTheTenantsQueryLogin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 2))
	// Tenants until every login has two (ids are random).
	var ids []uuid.UUID
	count := map[string]int{}
	for i := 0; len(count) < 3 || min(count[tenant.QueryLogin(uuid.Nil, 3)], count[tenant.QueryRole+"_1"], count[tenant.QueryRole+"_2"]) < 2; i++ {
		require.Less(t, i, 100)
		id := dbtest.NewTenant(t, db, fmt.Sprintf("Login %d", i)).ID
		ids = append(ids, id)
		count[tenant.QueryLogin(id, 3)]++
	}
	d.SplitQueryLogins(t, 3)
	n, err := tenant.QueryShards(ctx, db)
	require.NoError(t, err)
	require.Equal(t, 3, n)

	box, err := tenant.NewSandbox(ctx, d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	require.NoError(t, box.SplitLogins(n))
	who := func(box *tenant.Sandbox, id uuid.UUID) (session, current string, err error) {
		return dbtest.WhoRuns(ctx, box, id)
	}
	logins := map[string]bool{}
	for _, id := range ids {
		session, current, err := who(box, id)
		require.NoError(t, err)
		require.Equal(t, tenant.QueryLogin(id, 3), session)
		require.Equal(t, tenant.MemberRole(id), current)
		logins[session] = true
	}
	require.Len(t, logins, 3)

	// Two connections in all: two statements of one login's tenants hold
	// both; then a statement of another login closes one of them first.
	byLogin := map[string][]uuid.UUID{}
	for _, id := range ids {
		byLogin[tenant.QueryLogin(id, 3)] = append(byLogin[tenant.QueryLogin(id, 3)], id)
	}
	var a, b, c string
	for login, ts := range byLogin {
		if a == "" && len(ts) >= 2 {
			a = login
		}
	}
	require.NotEmpty(t, a)
	for login := range byLogin {
		switch {
		case login == a:
		case b == "":
			b = login
		default:
			c = login
		}
	}
	admin := d.AdminPool(t)
	backends := func() map[string]int {
		out := map[string]int{}
		rows, err := admin.Query(ctx, `SELECT usename::text, count(*)::int FROM pg_stat_activity
			WHERE datname = current_database() AND usename LIKE 'dbchat\_query%' GROUP BY 1`)
		require.NoError(t, err)
		for rows.Next() {
			var u string
			var n int
			require.NoError(t, rows.Scan(&u, &n))
			out[u] = n
		}
		require.NoError(t, rows.Err())
		return out
	}
	settle := func(want map[string]int) {
		t.Helper()
		require.Eventually(t, func() bool { return fmt.Sprint(backends()) == fmt.Sprint(want) }, 10*time.Second, 10*time.Millisecond,
			"backends %v, want %v", backends(), want)
	}
	hold := make(chan struct{})
	release := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(release) // before box.Close, which waits for the connections
	held := make(chan error, 2)
	for _, id := range byLogin[a][:2] {
		go func() {
			held <- box.Query(ctx, id, `SELECT 1`, tenant.Limits{MaxRows: 1, Timeout: 5 * time.Second},
				func(rows pgx.Rows) error { <-hold; return nil })
		}()
	}
	require.Eventually(t, func() bool { return box.Connections() == 2 && len(backends()) == 1 }, 10*time.Second, time.Millisecond)
	settle(map[string]int{a: 2})
	release()
	require.NoError(t, <-held)
	require.NoError(t, <-held)
	_, _, err = who(box, byLogin[b][0])
	require.NoError(t, err)
	settle(map[string]int{a: 1, b: 1})
	_, _, err = who(box, byLogin[c][0])
	require.NoError(t, err)
	require.Equal(t, 2, box.Connections())
	require.Len(t, backends(), 2)

	// Statements of every login at once, eight at a time: all succeed as
	// their tenant's login, and two connections are left.
	var wg sync.WaitGroup
	errs := make(chan error, 8*len(ids))
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range len(ids) {
				id := ids[(w+i)%len(ids)]
				if session, _, err := who(box, id); err != nil || session != tenant.QueryLogin(id, 3) {
					errs <- fmt.Errorf("tenant %s: session user %q, %v", id, session, err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	require.LessOrEqual(t, box.Connections(), 2)
	require.Eventually(t, func() bool {
		n := 0
		for _, c := range backends() {
			n += c
		}
		return n <= 2
	}, 10*time.Second, 10*time.Millisecond)

	// Without the split every statement logs in as dbchat_query, which may
	// become only its own shard's tenants.
	plain, err := tenant.NewSandbox(ctx, d.QueryURL, 1)
	require.NoError(t, err)
	t.Cleanup(plain.Close)
	for _, id := range ids {
		_, _, err := who(plain, id)
		if tenant.QueryLogin(id, 3) == tenant.QueryRole {
			require.NoError(t, err)
		} else {
			// The prelude is the service's, so this is a 503, not an SQL error.
			require.ErrorContains(t, err, "permission denied to set role")
			require.Equal(t, apperr.Unavailable, apperr.CodeOf(err))
		}
	}

	// A sandbox that follows the database's count moves to the new logins
	// at the first refusal, without a restart; one with a fixed split
	// refuses the moved tenants (503).
	follower, err := tenant.NewSandbox(ctx, d.QueryURL, 2)
	require.NoError(t, err)
	t.Cleanup(follower.Close)
	require.NoError(t, follower.FollowQueryShards(ctx, db))
	for _, id := range ids {
		session, _, err := who(follower, id)
		require.NoError(t, err)
		require.Equal(t, tenant.QueryLogin(id, 3), session)
	}
	d.SplitQueryLogins(t, 4)
	moved := 0
	for _, id := range ids {
		session, _, err := who(follower, id)
		require.NoError(t, err)
		require.Equal(t, tenant.QueryLogin(id, 4), session)
		require.Equal(t, tenant.QueryLogin(id, 4), follower.Login(id))
		if tenant.QueryLogin(id, 3) != tenant.QueryLogin(id, 4) {
			moved++
			_, _, err := who(box, id)
			require.Equal(t, apperr.Unavailable, apperr.CodeOf(err), "tenant %s on a sandbox split in 3", id)
		}
	}
	require.Positive(t, moved)
}
