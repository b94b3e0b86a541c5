package server

import (
	"context"
	"io"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
)

// Exporter writes one tenant's export (internal/tenantio's zip) to w. It
// needs a privileged connection, so the CLI supplies it only when
// DBCHAT_ADMIN_DATABASE_URL is set.
type Exporter func(ctx context.Context, tenant string, w io.Writer) error

// exportTenant streams GET /v1/admin/tenants/{id}/export (operator): the
// same zip as `dbchat tenant export`, written as it is read, so memory stays
// flat whatever the tenant's size. An error before the first byte is the
// usual JSON error; one after it aborts the connection, so a client never
// takes a truncated zip for a whole one.
func (s *Server) exportTenant(c *gin.Context) (int, any, error) {
	if s.cfg.Export == nil {
		return 0, nil, apperr.Errorf(apperr.Unavailable, "tenant export needs DBCHAT_ADMIN_DATABASE_URL (a privileged role) on the server")
	}
	w := &lazyZip{c: c}
	err := s.cfg.Export(c.Request.Context(), c.Param("id"), w)
	switch {
	case err != nil && !w.started:
		return 0, nil, err
	case err != nil:
		s.logFailure(c, apperr.As(err), err)
		panic(http.ErrAbortHandler)
	case !w.started:
		return 0, nil, apperr.Errorf(apperr.Internal, "the export wrote nothing")
	}
	return 0, nil, nil
}

// lazyZip sends the response's headers with the export's first byte.
type lazyZip struct {
	c       *gin.Context
	started bool
}

func (z *lazyZip) Write(p []byte) (int, error) {
	if !z.started {
		z.started = true
		z.c.Header("Content-Type", "application/zip")
		z.c.Header("Content-Disposition", `attachment; filename="dbchat-tenant-export.zip"`)
		z.c.Status(http.StatusOK)
	}
	return z.c.Writer.Write(p)
}
