package server

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/importer"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/usage"
)

// importRows loads a CSV (text/csv) or JSON (application/json) body into a
// table, all or nothing, in the request's tenant transaction; see package
// importer for the formats, the NULL rules and how RLS is respected.
func (s *Server) importRows(c *gin.Context) (int, any, error) {
	id, load, err := s.importRequest(c)
	if err != nil {
		return 0, nil, err
	}
	release, err := s.importSlot(c.Request.Context(), callerIdentity(c).TenantID)
	if err != nil {
		return 0, nil, err
	}
	defer release()
	body := http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxImportBytes)
	n, err := counted(c, s, usage.Import, func(ctx context.Context, tx tenant.Conn) (int64, error) {
		return s.loadRows(ctx, tx, id, load, body)
	})
	return reply(http.StatusOK, gin.H{"inserted": n}, importErr(err))
}

// loadRows is an import's transaction: the table, the rows, then the
// tenant's size quotas over the result (rows_per_import, storage_bytes),
// whose error rolls the whole import back.
func (s *Server) loadRows(ctx context.Context, tx tenant.Conn, id uuid.UUID, load loader, body io.Reader) (int64, error) {
	t, err := catalog.Get(ctx, tx, id, false)
	if err != nil {
		return 0, err
	}
	// The COPY runs as long as the client sends (bounded by the body idle
	// timeout and the size cap) and the INSERT moves every row at once.
	if err := tenant.SetStatementTimeout(ctx, tx, s.cfg.ImportStatementTimeout); err != nil {
		return 0, err
	}
	n, err := load(ctx, tx, t, body)
	if err != nil || s.cfg.Limits == nil {
		return n, err
	}
	return n, s.cfg.Limits.CheckImport(ctx, tx, n)
}

// importRequest reads an import's table id and loader (by Content-Type),
// refusing a declared length over the limit before any slot is taken.
func (s *Server) importRequest(c *gin.Context) (uuid.UUID, loader, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return uuid.Nil, nil, err
	}
	load, err := importFormat(c.GetHeader("Content-Type"))
	if err != nil {
		return uuid.Nil, nil, err
	}
	if limit := s.cfg.MaxImportBytes; c.Request.ContentLength > limit {
		return uuid.Nil, nil, importTooLarge(limit)
	}
	return id, load, nil
}

// importErr words a body cut off at the size limit, or one that stalled, as
// such; the importer sees either only as a read error.
func importErr(err error) error {
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		return importTooLarge(mbe.Limit)
	}
	return stalledErr(err)
}

// loader is an importer's entry point: importer.CSV or importer.JSON.
type loader func(context.Context, tenant.Conn, catalog.Table, io.Reader) (int64, error)

// importFormat picks the loader for a Content-Type: CSV or JSON, UTF-8.
func importFormat(contentType string) (loader, error) {
	var load loader
	mt, params, _ := mime.ParseMediaType(contentType)
	switch mt {
	case "text/csv":
		load = importer.CSV
	case "application/json":
		load = importer.JSON
	}
	if cs, ok := params["charset"]; load == nil || ok && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "utf8") {
		return nil, apperr.Errorf(apperr.UnsupportedMedia, "Content-Type must be text/csv or application/json (UTF-8)")
	}
	return load, nil
}

func importTooLarge(limit int64) error {
	return apperr.Errorf(apperr.TooLarge, "import body exceeds %d bytes; nothing was imported", limit)
}

// maxPreviewOffset bounds how deep a preview pages: each page scans its
// offset's rows first, so 8 requests at offset 10^12 of a large table held
// every pooled connection for seconds. Deeper reads belong in /v1/sql with
// a filter.
const maxPreviewOffset = 100_000

// listRows pages through a table's rows in import order; catalog.Preview
// documents how each type's values are encoded. A page holds at most
// /v1/sql's byte cap of values (sandbox.DefaultMaxBytes): any member may
// preview, and without a cap one page of large values took the server's
// memory (and every tenant's requests) with it.
func (s *Server) listRows(c *gin.Context) (int, any, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	limit, err := queryInt(c, "limit", 100, 1, 1000)
	if err != nil {
		return 0, nil, err
	}
	offset, err := queryInt(c, "offset", 0, 0, maxPreviewOffset)
	if err != nil {
		return 0, nil, err
	}
	page, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (catalog.Rows, error) {
		return catalog.Preview(ctx, tx, id, limit, offset, sandbox.DefaultMaxBytes)
	})
	return reply(http.StatusOK, rowsPage{Columns: page.Columns, Rows: page.Rows, Truncated: page.Truncated, Limit: limit, Offset: offset}, err)
}
