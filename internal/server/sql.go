package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
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

// noteWrites, when the sandbox reads on a hot standby (Config.Replica),
// notes every successful change under /v1/tables (rows, tables, columns,
// policies: all that generated SQL can see) with the primary's WAL position
// before the response's first byte, so the tenant's next statement, which
// its client can only send after that byte, waits for the standby to replay
// the change (read-your-writes). The note comes after the handler's commit:
// a handler answers once its transaction has ended.
func (s *Server) noteWrites(c *gin.Context) {
	r := c.Request
	if s.cfg.Replica == nil || r.Method == http.MethodGet || r.Method == http.MethodHead || !strings.HasPrefix(c.FullPath(), "/v1/tables") {
		c.Next()
		return
	}
	w := &notingWriter{ResponseWriter: c.Writer, note: func(status int) {
		id, ok := tenant.FromContext(r.Context())
		if !ok || status >= http.StatusBadRequest {
			return
		}
		if err := s.cfg.Replica.NoteWrite(r.Context(), id.TenantID); err != nil {
			// The tenant reads on the primary for a while instead.
			s.log.Warn("replica: the write position was not noted", "tenant", id.TenantID, "error", err)
		}
	}}
	c.Writer = w
	c.Next()
	w.before() // a response without a body is written after the chain
}

// notingWriter calls note, once, before anything of the response is
// written: a body (Write), the header alone (WriteHeaderNow) or a flush.
type notingWriter struct {
	gin.ResponseWriter
	note  func(status int)
	noted bool
}

func (w *notingWriter) before() {
	if !w.noted {
		w.noted = true
		w.note(w.Status())
	}
}

func (w *notingWriter) Write(b []byte) (int, error) {
	w.before()
	return w.ResponseWriter.Write(b)
}

func (w *notingWriter) WriteString(str string) (int, error) {
	w.before()
	return w.ResponseWriter.WriteString(str)
}

func (w *notingWriter) WriteHeaderNow() {
	w.before()
	w.ResponseWriter.WriteHeaderNow()
}

func (w *notingWriter) Flush() {
	w.before()
	w.ResponseWriter.Flush()
}
