package server

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/limits"
	"github.com/dbchat/dbchat/internal/tenant"
)

// rateLimit runs after authenticate on every tenant request: it takes the
// request's token from its tenant's bucket, in PostgreSQL so that every
// instance on the database shares the bucket. An API key's lookup took it
// already (keySignIn); other credentials take it here, in one statement
// (limits.Service.TakeRequest). A tenant with a rate limit gets the IETF
// draft's RateLimit-Limit, -Remaining and -Reset headers on every answer;
// a request over it gets 429 rate_limited with Retry-After. Only an
// authenticated request takes a token, so a forged key naming a tenant
// cannot spend that tenant's requests.
func (s *Server) rateLimit(c *gin.Context) error {
	if s.cfg.Limits == nil {
		return nil
	}
	v, _ := c.Get(rateKey{})
	r, taken := v.(limits.Rate) // by an API key's lookup
	if !taken {
		var err error
		if r, err = query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (limits.Rate, error) {
			return s.cfg.Limits.TakeRequest(ctx, tx)
		}); err != nil {
			return err
		}
	}
	if !r.Limited {
		return nil
	}
	setRateHeaders(c.Writer.Header(), r)
	if !r.Allowed {
		return r.Err()
	}
	return nil
}

// rateKey holds, in the gin context, the rate an API key's lookup took.
type rateKey struct{}

// keySignIn is how authenticate resolves an API key: with limits, the key's
// lookup takes the request's rate token in the same statement (one round
// trip for both) and leaves it for rateLimit.
func (s *Server) keySignIn(c *gin.Context) func(context.Context, *tenant.DB, string) (tenant.Identity, error) {
	if s.cfg.Limits == nil {
		return auth.Authenticate
	}
	return func(ctx context.Context, db *tenant.DB, key string) (tenant.Identity, error) {
		var r limits.Rate
		id, err := auth.AuthenticateBy(ctx, db, key, s.cfg.Limits.KeyLookup(&r))
		if err == nil {
			c.Set(rateKey{}, r)
		}
		return id, err
	}
}

// setRateHeaders writes a limited tenant's bucket as RateLimit-* headers
// (whole requests and seconds), and Retry-After on a refusal.
func setRateHeaders(h http.Header, r limits.Rate) {
	h.Set("RateLimit-Limit", strconv.FormatInt(r.Limit, 10))
	h.Set("RateLimit-Remaining", strconv.FormatInt(r.Remaining, 10))
	h.Set("RateLimit-Reset", strconv.FormatInt(r.Reset, 10))
	if !r.Allowed {
		h.Set("Retry-After", strconv.FormatInt(r.RetryAfter, 10))
	}
}

// enforceQuotas hands the quotas to the pipelines that spend them: each
// question (ask and conversation turns share cfg.Ask) and every training
// data write (the store's transaction).
func (s *Server) enforceQuotas() {
	if s.cfg.Limits == nil {
		return
	}
	if s.cfg.Ask != nil {
		s.cfg.Ask.Quota = s.cfg.Limits
	}
	s.store.Quota = s.cfg.Limits.CheckTraining
}
