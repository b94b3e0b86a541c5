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
	var r limits.Rate
	switch v := v.(type) {
	case limits.Rate: // taken by an API key's lookup
		r = v
	case *limits.Rate: // to be taken by a remembered key's confirmation
		if callerIdentity(c).Check.Pending() {
			return nil // in the request's first statement; see deferredRate
		}
		r = *v
	default:
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

// deferredRate writes the RateLimit headers of a rate that a remembered
// key's confirmation took during the handler (see rateLimit).
func deferredRate(c *gin.Context) {
	if v, _ := c.Get(rateKey{}); v != nil {
		if r, ok := v.(*limits.Rate); ok && r.Limited {
			setRateHeaders(c.Writer.Header(), *r)
		}
	}
}

// rateKey holds, in the gin context, the rate an API key's lookup took
// (a limits.Rate) or its confirmation will take (a *limits.Rate).
type rateKey struct{}

// keySignIn is how authenticate resolves an API key: a key this server
// verified lately is not looked up again (auth.Cache); with limits, the
// lookup takes the request's rate token in the same statement and leaves it
// for rateLimit, and a remembered key's confirmation takes it (tokens).
func (s *Server) keySignIn(c *gin.Context, key string, tokens auth.TokensFor) (tenant.Identity, error) {
	lookup := auth.Lookup(auth.AuthenticateKeyOnly)
	var taken limits.Rate
	if s.cfg.Limits != nil {
		lookup = s.cfg.Limits.KeyLookup(&taken)
	}
	id, remembered, err := s.keys.Authenticate(c.Request.Context(), s.db, key, lookup, tokens)
	if err == nil && !remembered && s.cfg.Limits != nil {
		c.Set(rateKey{}, taken)
	}
	return id, err
}

// confirmLater arranges the confirmation of a remembered credential (an
// identity with a tenant.Check): a GET or HEAD sends it with the handler's
// first statement (one round trip in all, and handle confirms a handler
// that ran none), any other request before the handler, which may do
// costly work (the sandbox, a language model) before its first statement.
// With limits, the confirmation takes the rate token into deferred.
func (s *Server) confirmLater(c *gin.Context, id tenant.Identity, deferred *limits.Rate) error {
	if id.Check == nil {
		return nil
	}
	if s.cfg.Limits != nil {
		c.Set(rateKey{}, deferred)
	}
	if m := c.Request.Method; m == http.MethodGet || m == http.MethodHead {
		return nil
	}
	err := s.db.Verify(tenant.NewContext(c.Request.Context(), id))
	deferredRate(c)
	return err
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
