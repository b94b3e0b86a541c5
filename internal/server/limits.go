package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
)

// Defaults for the limits in Config.
const (
	DefaultBodyIdleTimeout        = 30 * time.Second
	DefaultImportStatementTimeout = time.Hour
)

// idleBody cuts a request body that stops flowing: before each read it
// moves the connection's read deadline idle ahead, so an upload of any size
// that keeps sending is fine and one that stalls for idle fails with a
// *bodyStalledError. The deadline is cleared once the body ends, so that
// net/http's own reads after the body (which cancel the request's context
// on an error) never hit it; after a stall it is left expired.
type idleBody struct {
	io.ReadCloser
	ctl  *http.ResponseController
	idle time.Duration
	done bool
}

// bodyStalledError reports a body that sent nothing for Idle.
type bodyStalledError struct {
	Idle time.Duration
	err  error
}

func (e *bodyStalledError) Error() string {
	return fmt.Sprintf("request body sent nothing for %s: %v", e.Idle, e.err)
}

func (e *bodyStalledError) Unwrap() error { return e.err }

func (b *idleBody) Read(p []byte) (int, error) {
	if b.done {
		return b.ReadCloser.Read(p)
	}
	_ = b.ctl.SetReadDeadline(time.Now().Add(b.idle))
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, os.ErrDeadlineExceeded):
		// The deadline stays in the past: net/http's own attempt to drain
		// the rest of the body fails at once and closes the connection.
		b.done = true
		return n, &bodyStalledError{Idle: b.idle, err: err}
	default:
		b.done = true
		_ = b.ctl.SetReadDeadline(time.Time{})
	}
	return n, err
}

// withIdleBody returns a shallow copy of r whose body is an idleBody
// (requests without a body are left alone). net/http keeps the original,
// whose type it inspects after the handler to decide how to drain it.
func (s *Server) withIdleBody(w http.ResponseWriter, r *http.Request) *http.Request {
	if s.cfg.BodyIdleTimeout <= 0 || r.Body == nil || r.Body == http.NoBody {
		return r
	}
	r2 := r.WithContext(r.Context())
	r2.Body = &idleBody{ReadCloser: r.Body, ctl: http.NewResponseController(w), idle: s.cfg.BodyIdleTimeout}
	return r2
}

// stalledErr words a body that stopped flowing as 408 (the importer and
// the JSON decoder see it only as a read error); any other error is
// returned as it is.
func stalledErr(err error) error {
	if stall := (*bodyStalledError)(nil); errors.As(err, &stall) {
		return apperr.Wrap(apperr.RequestTimeout, err,
			fmt.Sprintf("the request body sent nothing for %s; nothing was changed", stall.Idle))
	}
	return err
}

// importSlots are the row-import semaphores: one for all imports and one
// per tenant with imports running or waiting (dropped when none is left).
type importSlots struct {
	all       chan struct{}
	perTenant int
	mu        sync.Mutex
	tenants   map[uuid.UUID]*tenantSlots
}

type tenantSlots struct {
	ch    chan struct{}
	users int // imports holding or waiting for ch
}

func newImportSlots(cfg Config) *importSlots {
	return &importSlots{all: make(chan struct{}, cfg.MaxConcurrentImports), perTenant: cfg.MaxTenantImports,
		tenants: map[uuid.UUID]*tenantSlots{}}
}

// tenant returns tenantID's semaphore, counting one more user of it; leave
// undoes that.
func (is *importSlots) tenant(tenantID uuid.UUID) *tenantSlots {
	is.mu.Lock()
	defer is.mu.Unlock()
	ts := is.tenants[tenantID]
	if ts == nil {
		ts = &tenantSlots{ch: make(chan struct{}, is.perTenant)}
		is.tenants[tenantID] = ts
	}
	ts.users++
	return ts
}

func (is *importSlots) leave(tenantID uuid.UUID, ts *tenantSlots) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if ts.users--; ts.users == 0 {
		delete(is.tenants, tenantID)
	}
}

// importSlot admits one row import of tenantID: at most MaxTenantImports of
// one tenant and MaxConcurrentImports in all. An import reads its body
// inside its transaction, so each holds a pooled connection for as long as
// its client keeps sending; the caps keep the rest of the pool for every
// other request, and one tenant from taking every import slot. The wait for
// both slots is as bounded as a wait for a connection: past it, 503
// overloaded.
func (s *Server) importSlot(ctx context.Context, tenantID uuid.UUID) (release func(), err error) {
	if wait := s.db.AcquireTimeout(); wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, wait)
		defer cancel()
	}
	is := s.imports
	ts := is.tenant(tenantID)
	select {
	case ts.ch <- struct{}{}:
	case <-ctx.Done():
		is.leave(tenantID, ts)
		return nil, apperr.Wrap(apperr.Overloaded, ctx.Err(),
			fmt.Sprintf("this tenant already runs %d imports; try again when one is done", is.perTenant))
	}
	select {
	case is.all <- struct{}{}:
		return func() { <-is.all; <-ts.ch; is.leave(tenantID, ts) }, nil
	case <-ctx.Done():
		<-ts.ch
		is.leave(tenantID, ts)
		return nil, apperr.Wrap(apperr.Overloaded, ctx.Err(),
			fmt.Sprintf("%d imports are already running; try again shortly", cap(is.all)))
	}
}

// retryAfter is the Retry-After of an overloaded answer, in seconds: the
// time a request may wait for a connection, at least one second.
func (s *Server) retryAfter() string {
	return strconv.Itoa(max(1, int((s.db.AcquireTimeout()+time.Second-1)/time.Second)))
}
