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
// bucket. One request at a time takes the next lease, while a quarter of
// the last one is still left: the requests in flight when a lease runs out
// would otherwise each take a lease of their own, queue on the tenant's
// bucket row and throw all but one away, holding a busy tenant well under
// its limit. A request that finds the lease dry while the next one is being
// taken takes a token of its own. What a server can overdraw (tokens it
// leased and then had no request for) is at most 1.25 leases, 12.5 ms of
// the rate. Leased tokens last leaseTTL from the latest take: tokens not
// spent by then are lost, which only makes the limit stricter.
type lease struct {
	mu                     sync.Mutex
	left                   int     // tokens taken and not yet spent
	rate, burst, remaining float64 // the bucket as last taken
	until                  time.Time
	renewing               time.Time // when the take of the next lease began (zero: none)
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
// RateLimit headers show: the bucket as last seen plus the lease. renew
// asks the caller to take the next lease (and nobody else until it lands
// or leaseTTL passes): the lease is dry or down to its last quarter.
func (l *lease) spend() (r Rate, spent, renew bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	live := l.left > 0 && now.Before(l.until)
	low := !live || l.left <= l.sizeLocked()/4
	if low && (l.renewing.IsZero() || now.Sub(l.renewing) > leaseTTL) {
		l.renewing, renew = now, true
	}
	if !live {
		return Rate{}, false, renew
	}
	l.left--
	return rateOf(l.rate, l.burst, l.remaining+float64(l.left), true), true, renew
}

// size is how many tokens the next take asks for: one until the limit is
// known, then a hundredth of the burst or 10 ms of the rate, whichever is
// less.
func (l *lease) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sizeLocked()
}

func (l *lease) sizeLocked() int {
	n := math.Floor(math.Min(l.burst/100, l.rate/100))
	return int(math.Max(1, math.Min(n, maxLease)))
}

// fill records a take: the bucket as left and the tokens beyond the
// request's own (all of them when the request had spent a leased token),
// added to what is left and spendable for leaseTTL. A take of one token
// (a request that found the lease dry) leaves the lease as it is.
func (l *lease) fill(rate, burst, tokens float64, taken int, spent bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rate, l.burst, l.remaining = rate, burst, tokens
	extra := taken
	if !spent {
		extra-- // the request's own token
	}
	if extra > 0 {
		if !time.Now().Before(l.until) {
			l.left = 0 // expired tokens are lost
		}
		l.left, l.until = l.left+extra, time.Now().Add(leaseTTL)
	}
}

// renewed ends a take of the next lease, landed or not.
func (l *lease) renewed() {
	l.mu.Lock()
	l.renewing = time.Time{}
	l.mu.Unlock()
}
