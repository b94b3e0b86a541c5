package server

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/usage"
)

// analytics is a tenant admin's usage report (GET /v1/analytics), as JSON
// or, with Accept: text/csv, one CSV row per period. It reads the tenant's
// daily rollups under its policy in one transaction.
func (s *Server) analytics(c *gin.Context) (int, any, error) {
	r, err := usage.ParseRange(c.Query("from"), c.Query("to"), c.Query("granularity"), time.Now())
	if err != nil {
		return 0, nil, err
	}
	rep, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (usage.Report, error) {
		return usage.Read(ctx, tx, r, s.cfg.Prices)
	})
	if err != nil || !wantsCSV(c) {
		return reply(http.StatusOK, rep, err)
	}
	c.Data(http.StatusOK, "text/csv; charset=utf-8", rep.CSV())
	return 0, nil, nil
}

// adminAnalytics is the operator's view (GET /v1/admin/analytics): every
// tenant's figures over the range, sorted (usage.AllTenants: each tenant's
// rows are read in a transaction of that tenant).
func (s *Server) adminAnalytics(c *gin.Context) (int, any, error) {
	r, err := usage.ParseRange(c.Query("from"), c.Query("to"), "", time.Now())
	if err != nil {
		return 0, nil, err
	}
	key, err := usage.CheckSort(c.Query("sort"))
	if err != nil {
		return 0, nil, err
	}
	rows, err := usage.AllTenants(c.Request.Context(), s.db, r, s.cfg.Prices, key)
	return reply(http.StatusOK, gin.H{"from": r.From.Format(time.DateOnly), "to": r.To.Format(time.DateOnly), "sort": key, "tenants": rows}, err)
}

// wantsCSV reports whether the client asked for CSV.
func wantsCSV(c *gin.Context) bool {
	return strings.Contains(c.GetHeader("Accept"), "text/csv")
}

// counted runs fn in the request's tenant transaction like query and
// records its usage (kind, and the count fn returns as rows imported) in
// the same transaction, as its last statement, so the record commits with
// the work; when the transaction fails and rolls back, the failure is
// recorded right after in a short transaction of its own.
func counted(c *gin.Context, s *Server, kind usage.Kind, fn func(ctx context.Context, tx tenant.Conn) (int64, error)) (int64, error) {
	n, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (int64, error) {
		n, err := fn(ctx, tx)
		if err != nil {
			return n, err
		}
		return n, usage.Add(ctx, tx, usage.Record{Kind: kind, Outcome: usage.Answered, RowsImported: n})
	})
	if err != nil {
		_ = usage.Save(c.Request.Context(), s.db, usage.Record{Kind: kind, Outcome: usage.Failed}, err)
	}
	return n, err
}

// trained records a training write (whose transactions the store ran)
// after it ended; saving is best effort: the write stands either way.
func (s *Server) trained(c *gin.Context, err error) {
	_ = usage.Save(c.Request.Context(), s.db, usage.Record{Kind: usage.Training, Outcome: usage.OutcomeOf(err)}, err)
}

// sqlUsage records a /v1/sql statement that ran since start: first try
// means it ran; its time splits as in the ask pipeline (the statement is
// execute, the rest of the sandbox's run validate).
func (s *Server) sqlUsage(c *gin.Context, start time.Time, res sandbox.Result, err error) {
	wall := float64(time.Since(start).Microseconds()) / 1000
	u := usage.Record{Kind: usage.SQL, Outcome: usage.OutcomeOf(err), FirstTry: &[]bool{err == nil}[0]}
	if err == nil {
		u.ExecMS, u.ValidateMS = &res.ElapsedMS, &[]float64{max(0, wall-res.ElapsedMS)}[0]
		u.HistoryID, u.RowsReturned, u.Empty = &res.HistoryID, int64(res.RowCount), res.RowCount == 0
	}
	_ = usage.Save(c.Request.Context(), s.db, u, err)
}
