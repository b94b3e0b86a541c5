package server

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/limits"
	"github.com/dbchat/dbchat/internal/tenant"
)

// rateLimit runs after authenticate on every tenant request: it takes the
// request's token from its tenant's bucket (limits.Service.TakeRequest, one
// statement in one round trip, in PostgreSQL so that every instance on the
// database shares the bucket). A tenant with a rate limit gets the IETF
// draft's RateLimit-Limit, -Remaining and -Reset headers on every answer;
// a request over it gets 429 rate_limited with Retry-After. Only an
// authenticated request takes a token, so a forged key naming a tenant
// cannot spend that tenant's requests.
func (s *Server) rateLimit(c *gin.Context) error {
	if s.cfg.Limits == nil {
		return nil
	}
	r, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (limits.Rate, error) {
		return s.cfg.Limits.TakeRequest(ctx, tx)
	})
	if err != nil || !r.Limited {
		return err
	}
	setRateHeaders(c.Writer.Header(), r)
	if !r.Allowed {
		return r.Err()
	}
	return nil
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
