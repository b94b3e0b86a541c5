package tenant

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
)

// admission shares a pool's connections among tenants (the sandbox's, and
// the runtime pool's when DB.ShareAmongTenants is set): at most perTenant
// statements of one tenant hold a connection at once, so one tenant's flood
// of slow statements always leaves the others a connection;
// a tenant's further statements wait in that tenant's queue (at most
// maxQueue of them, for at most maxWait), and when a connection frees up it
// goes to the waiting slot running the fewest statements (round robin
// among equals), not to whoever asked first.
//
// Lookups of credentials not verified yet (DB.LookupAs) are a class apart:
// each claimed tenant's lookups have a slot and a queue of their own, not
// the tenant's, and all lookups together hold at most lookupConns
// connections (each claimed tenant at most perLookup of them). A credential
// names its tenant in plain text, so anyone can make lookups "of" any
// tenant; counted as the tenant's own statements, a flood of forged keys
// would fill its queue and refuse its real requests. Counted apart, the
// flood competes only with other lookups naming the same tenant, and never
// holds more than lookupConns of the pool.
type admission struct {
	what        string // the pool, for messages: "sandbox", "database"
	mu          sync.Mutex
	free        int // connections not held by an admitted statement
	perTenant   int
	maxQueue    int
	maxWait     time.Duration
	lookupConns int // connections all lookups may hold at once (0: no lookups)
	perLookup   int // of which the lookups naming one tenant
	lookups     int // connections lookups hold
	active      map[slot]int
	queues      map[slot][]*waiter
	turn        []slot // slots with waiters, in round-robin order
}

// A slot is what admission caps and queues separately: a tenant's
// statements, or the lookups of credentials naming that tenant (lookup).
type slot struct {
	tenant uuid.UUID
	lookup bool
}

// tenantSlot is the slot of t's own statements.
func tenantSlot(t uuid.UUID) slot { return slot{tenant: t} }

// lookupSlot is the slot of lookups of credentials naming t.
func lookupSlot(t uuid.UUID) slot { return slot{tenant: t, lookup: true} }

type waiter struct {
	ready   chan struct{}
	granted bool
}

func newAdmission(what string, conns, perTenant, maxQueue int, maxWait time.Duration) *admission {
	return &admission{
		what: what, free: conns, perTenant: perTenant, maxQueue: maxQueue, maxWait: maxWait,
		active: map[slot]int{}, queues: map[slot][]*waiter{},
	}
}

// room reports whether s may take one more connection: it is under its
// cap and, for a lookup, the lookups together are under theirs.
func (a *admission) room(s slot) bool {
	if s.lookup {
		return a.active[s] < a.perLookup && a.lookups < a.lookupConns
	}
	return a.active[s] < a.perTenant
}

// take gives s a connection (a.mu held).
func (a *admission) take(s slot) {
	a.free--
	a.active[s]++
	if s.lookup {
		a.lookups++
	}
}

// errOverloaded is the answer to a statement that finds its tenant's queue
// full or waits too long for a connection (HTTP 503 overloaded, with
// Retry-After).
func errOverloaded(why string) error {
	return apperr.Errorf(apperr.Overloaded, "overloaded: %s; retry later", why)
}

// acquire admits one statement of t, waiting its turn if t is at its cap or
// no connection is free. The caller must call release(t) once admitted.
func (a *admission) acquire(ctx context.Context, t slot) error {
	a.mu.Lock()
	if a.free > 0 && a.room(t) && len(a.queues[t]) == 0 {
		a.take(t)
		a.mu.Unlock()
		return nil
	}
	if len(a.queues[t]) >= a.maxQueue {
		a.mu.Unlock()
		if t.lookup {
			return errOverloaded("too many sign-ins naming this tenant are waiting for the " + a.what)
		}
		return errOverloaded("too many of this tenant's statements are waiting for the " + a.what)
	}
	w := &waiter{ready: make(chan struct{})}
	if len(a.queues[t]) == 0 {
		a.turn = append(a.turn, t)
	}
	a.queues[t] = append(a.queues[t], w)
	a.mu.Unlock()

	timer := time.NewTimer(a.maxWait)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		err = Translate(ctx.Err())
	case <-timer.C:
		err = errOverloaded("no " + a.what + " connection became free in time")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w.granted { // admitted while giving up: hand the slot on
		a.releaseLocked(t)
		return err
	}
	q := a.queues[t]
	for i, x := range q {
		if x == w {
			a.queues[t] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(a.queues[t]) == 0 {
		a.dropTurn(t)
	}
	return err
}

// release returns t's connection and admits the next waiting statement.
func (a *admission) release(t slot) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.releaseLocked(t)
}

func (a *admission) releaseLocked(t slot) {
	a.free++
	if a.active[t]--; a.active[t] <= 0 {
		delete(a.active, t)
	}
	if t.lookup {
		a.lookups--
	}
	a.dispatch()
}

// dispatch hands free connections to waiting slots: each goes to the
// waiting slot with room (under its cap) with the fewest running statements
// (the earliest in the round on a tie), which then moves to the end of the
// round. A tenant that floods the sandbox thus never delays one that runs
// little.
func (a *admission) dispatch() {
	for a.free > 0 {
		pick := -1
		for i, t := range a.turn {
			if a.room(t) && (pick < 0 || a.active[t] < a.active[a.turn[pick]]) {
				pick = i
			}
		}
		if pick < 0 {
			return
		}
		t := a.turn[pick]
		q := a.queues[t]
		w := q[0]
		a.queues[t] = q[1:]
		w.granted = true
		close(w.ready)
		a.take(t)
		a.turn = append(a.turn[:pick:pick], a.turn[pick+1:]...)
		if len(a.queues[t]) > 0 {
			a.turn = append(a.turn, t)
		} else {
			delete(a.queues, t)
		}
	}
}

func (a *admission) dropTurn(t slot) {
	delete(a.queues, t)
	for i, x := range a.turn {
		if x == t {
			a.turn = append(a.turn[:i:i], a.turn[i+1:]...)
			return
		}
	}
}

// running is the number of t's statements holding a connection.
func (a *admission) running(t slot) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.active[t]
}

// waiting is the number of t's statements in its queue.
func (a *admission) waiting(t slot) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.queues[t])
}
