package limits

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// TestLeaseIsTakenByOneRequestAtATime: the requests in flight when a
// tenant's lease runs low do not each take a lease (which queued them on
// the tenant's bucket row and threw all but one lease away, holding a busy
// tenant under its limit): one takes the next lease while the last quarter
// of the current one is spent, and a request that finds the lease dry
// meanwhile takes one token of its own. No taken token is thrown away.
func TestLeaseIsTakenByOneRequestAtATime(t *testing.T) {
	s := &Service{}
	tenantID := uuid.New()
	const rate, burst = 10_000.0, 20_000.0 // a lease of 100 tokens
	var r Rate

	// The first request knows no limit yet: one token, which tells the
	// lease its size.
	first := s.tokens(tenantID, &r)
	require.Equal(t, 1, first.Take)
	require.NoError(t, first.Taken(rate, burst, burst-1, true, 1))
	require.Equal(t, 100, s.lease(tenantID).size())

	// A burst of 32 requests on a dry lease: one takes the lease, the
	// others a token each, until it lands.
	var takes []int
	var renewal *int
	for range 32 {
		tk := s.tokens(tenantID, &r)
		require.NotNil(t, tk, "the lease is dry: every request takes")
		takes = append(takes, tk.Take)
		if tk.Take > 1 {
			require.Nil(t, renewal, "a second request took a lease")
			renewal = &takes[len(takes)-1]
		}
	}
	require.NotNil(t, renewal)
	require.Equal(t, 100, *renewal)
	require.Equal(t, 31, count(takes, 1))

	// The lease landed: 99 tokens beyond the renewing request's own, spent
	// by 99 requests without a take until its last quarter, where one
	// request, having spent a leased token, takes the next lease (all of
	// it leased) while the others go on spending.
	l := s.lease(tenantID)
	l.fill(rate, burst, burst-101, 100, false)
	l.renewed()
	spentWithoutTake := 0
	var next *int
	for range 99 {
		tk := s.tokens(tenantID, &r)
		switch {
		case tk == nil:
			spentWithoutTake++
		case next == nil:
			require.Equal(t, 100, tk.Take)
			next = &tk.Take
			require.NoError(t, tk.Taken(rate, burst, burst-201, true, 100), "a leased request is admitted whatever the take got")
		default:
			t.Fatalf("a second take while the lease still had tokens: %d", tk.Take)
		}
	}
	require.NotNil(t, next, "the lease was renewed before it ran dry")
	require.Equal(t, 99, spentWithoutTake+1, "every request but the renewing one spent a leased token without a take")
	l.mu.Lock()
	left := l.left
	l.mu.Unlock()
	require.Equal(t, 100, left, "the renewal's 100 tokens were added to the lease, none lost")
}

func count(xs []int, v int) int {
	n := 0
	for _, x := range xs {
		if x == v {
			n++
		}
	}
	return n
}
