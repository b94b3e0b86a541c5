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

// runSQL runs caller SQL through exactly the path generated SQL takes (the
// seed's run_sql): validator, then the sandbox, then query_history.
func (s *Server) runSQL(c *gin.Context) {
	if s.cfg.SQL == nil {
		s.fail(c, apperr.Errorf(apperr.Unavailable, "the SQL sandbox is not configured (set DBCHAT_QUERY_DATABASE_URL)"))
		return
	}
	var req sqlRequest
	if err := s.bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	run := sandbox.Request{SQL: req.SQL}
	switch {
	case strings.TrimSpace(req.SQL) == "":
		s.fail(c, apperr.Field("sql", "is required"))
		return
	case len(req.SQL) > 100_000:
		s.fail(c, apperr.Field("sql", "at most 100000 bytes"))
		return
	case req.Limit != nil && (*req.Limit < 1 || *req.Limit > sandbox.MaxMaxRows):
		s.fail(c, apperr.Field("limit", "must be from 1 to %d", sandbox.MaxMaxRows))
		return
	case req.TimeoutMS != nil && (*req.TimeoutMS < 1 || *req.TimeoutMS > int(sandbox.MaxTimeout.Milliseconds())):
		s.fail(c, apperr.Field("timeout_ms", "must be from 1 to %d", sandbox.MaxTimeout.Milliseconds()))
		return
	}
	if req.Limit != nil {
		run.MaxRows = *req.Limit
	}
	if req.TimeoutMS != nil {
		run.Timeout = time.Duration(*req.TimeoutMS) * time.Millisecond
	}
	res, err := s.cfg.SQL.Run(c.Request.Context(), run)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}
