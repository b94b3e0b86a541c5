package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/sandbox"
)

type sqlRequest struct {
	SQL       string `json:"sql"`
	Limit     *int   `json:"limit"`
	TimeoutMS *int   `json:"timeout_ms"`
}

// Validate checks the request against the sandbox's bounds.
func (r *sqlRequest) Validate() error {
	switch {
	case strings.TrimSpace(r.SQL) == "":
		return apperr.Field("sql", "is required")
	case len(r.SQL) > 100_000:
		return apperr.Field("sql", "at most 100000 bytes")
	case r.Limit != nil && (*r.Limit < 1 || *r.Limit > sandbox.MaxMaxRows):
		return apperr.Field("limit", "must be from 1 to %d", sandbox.MaxMaxRows)
	case r.TimeoutMS != nil && (*r.TimeoutMS < 1 || *r.TimeoutMS > int(sandbox.MaxTimeout.Milliseconds())):
		return apperr.Field("timeout_ms", "must be from 1 to %d", sandbox.MaxTimeout.Milliseconds())
	}
	return nil
}

// run is the sandbox request; zero fields take the sandbox's defaults.
func (r sqlRequest) run() sandbox.Request {
	run := sandbox.Request{SQL: r.SQL}
	if r.Limit != nil {
		run.MaxRows = *r.Limit
	}
	if r.TimeoutMS != nil {
		run.Timeout = time.Duration(*r.TimeoutMS) * time.Millisecond
	}
	return run
}

// runSQL runs caller SQL through exactly the path generated SQL takes (the
// seed's run_sql): validator, then the sandbox, then query_history.
func (s *Server) runSQL(c *gin.Context) (int, any, error) {
	if s.cfg.SQL == nil {
		return 0, nil, apperr.Errorf(apperr.Unavailable, "the SQL sandbox is not configured (set DBCHAT_QUERY_DATABASE_URL)")
	}
	req, err := bind[sqlRequest](s, c)
	if err != nil {
		return 0, nil, err
	}
	start := time.Now()
	res, err := s.cfg.SQL.Run(c.Request.Context(), req.run())
	s.sqlUsage(c, start, res, err)
	return reply(http.StatusOK, res, err)
}
