package limits

import (
	"math"
	"sync"
	"time"

	"github.com/google/uuid"
)

// A lease is request tokens a server took from a tenant's bucket ahead of
// the requests that spend them. Its size is at most a hundredth of the
// burst and 10 ms of the rate, so a limit small enough to notice (a burst
// under 200) is still taken one token per request, exactly as one shared
// bucket, and what a lease can overdraw (leases taken by instances that
// then see no requests) is at most 10 ms of the rate per instance. A lease
// lasts leaseTTL: tokens not spent by then are lost, which only makes the
// limit stricter.
type lease struct {
	mu                     sync.Mutex
	left                   int     // tokens taken and not yet spent
	rate, burst, remaining float64 // the bucket as last taken
	until                  time.Time
}

// leaseTTL bounds how long leased tokens stay spendable.
const leaseTTL = time.Second

// maxLease caps a lease, so one request's take stays one small write.
const maxLease = 1000

// lease is tenantID's lease on this server.
func (s *Service) lease(tenantID uuid.UUID) *lease {
	if l, ok := s.leases.Load(tenantID); ok {
		return l.(*lease)
	}
	l, _ := s.leases.LoadOrStore(tenantID, &lease{})
	return l.(*lease)
}

// spend takes one leased token, if a live one is left, and says what the
// RateLimit headers show: the bucket as last seen plus the lease.
func (l *lease) spend() (Rate, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.left <= 0 || time.Now().After(l.until) {
		return Rate{}, false
	}
	l.left--
	return rateOf(l.rate, l.burst, l.remaining+float64(l.left), true), true
}

// size is how many tokens the next take asks for: one until the limit is
// known, then a hundredth of the burst or 10 ms of the rate, whichever is
// less.
func (l *lease) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := math.Floor(math.Min(l.burst/100, l.rate/100))
	return int(math.Max(1, math.Min(n, maxLease)))
}

// fill records a take: the bucket as left and the tokens beyond the
// request's own, spendable for leaseTTL.
func (l *lease) fill(rate, burst, tokens float64, taken int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate, l.burst, l.remaining = rate, burst, tokens
	if taken > 1 {
		l.left, l.until = taken-1, time.Now().Add(leaseTTL)
	}
}
