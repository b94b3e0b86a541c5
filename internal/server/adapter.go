package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/tenant"
)

// handler is a route's logic without the writing: it parses the request,
// calls one domain function and says what to answer. Returning the error
// instead of writing it keeps every error on one path, Server.fail.
type handler func(c *gin.Context) (status int, body any, err error)

// handle adapts h to gin: an error goes to fail, a nil body answers with
// the status alone (204), status 0 means the handler wrote the response
// itself (a stream), anything else is written as JSON.
func (s *Server) handle(h handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		status, body, err := h(c)
		if status != 0 || err != nil {
			// A remembered credential confirmed by no statement of the
			// handler's is confirmed now, before anything is answered.
			if verr := s.db.Verify(c.Request.Context()); verr != nil {
				err = verr
			}
			if errors.Is(err, auth.ErrChanged) && !c.Writer.Written() &&
				(c.Request.Method == http.MethodGet || c.Request.Method == http.MethodHead) {
				status, body, err = s.again(c, h)
			}
			deferredRate(c)
			if apperr.CodeOf(err) == apperr.Unauthorized && cookieSession(c).ID != uuid.Nil {
				s.setSessionCookie(c, "", -1) // a dead session's cookie is cleared
			}
		}
		switch {
		case err != nil:
			s.fail(c, err)
		case status == 0: // the handler wrote the response itself (a stream)
		case body == nil:
			c.Status(status)
		default:
			c.JSON(status, body)
		}
	}
}

// again runs a read once more after its remembered credential was refused
// for a changed role (nothing was read or written: the refusal came first):
// signed in afresh, with the route's rate and admin checks again.
func (s *Server) again(c *gin.Context, h handler) (int, any, error) {
	if err := s.authenticate(c); err != nil {
		return 0, nil, err
	}
	if err := s.rateLimit(c); err != nil {
		return 0, nil, err
	}
	if c.GetBool(adminRouteKey{}) {
		if err := s.adminOnly(c); err != nil {
			return 0, nil, err
		}
	}
	return h(c)
}

// guard adapts a middleware check to gin: an error stops the chain through
// fail, nil lets the request on.
func (s *Server) guard(check func(c *gin.Context) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := check(c); err != nil {
			s.fail(c, err)
			return
		}
		c.Next()
	}
}

// reply is a handler's successful answer; with it, a handler ends in one
// line whether or not its last call failed.
func reply(status int, body any, err error) (int, any, error) {
	if err != nil {
		return 0, nil, err
	}
	return status, body, nil
}

// runner runs fn in a tenant transaction: tenant.DB's Tx (several
// statements) or Once (one statement, one round trip), or as() for an
// explicit identity.
type runner func(ctx context.Context, fn func(tx tenant.Conn) error) error

// as is a runner for id rather than the request's identity: operator
// endpoints run with no tenant, or as the one tenant they change.
func as(run func(context.Context, tenant.Identity, func(tenant.Conn) error) error, id tenant.Identity) runner {
	return func(ctx context.Context, fn func(tx tenant.Conn) error) error { return run(ctx, id, fn) }
}

// query runs fn through run in the request's context and returns its
// result, so a handler needs no closure variables to carry it out.
func query[T any](c *gin.Context, run runner, fn func(ctx context.Context, tx tenant.Conn) (T, error)) (T, error) {
	ctx := c.Request.Context()
	var out T
	err := run(ctx, func(tx tenant.Conn) error {
		var err error
		out, err = fn(ctx, tx)
		return err
	})
	return out, err
}

// exec is query for fn without a result.
func exec(c *gin.Context, run runner, fn func(ctx context.Context, tx tenant.Conn) error) error {
	ctx := c.Request.Context()
	return run(ctx, func(tx tenant.Conn) error { return fn(ctx, tx) })
}
