package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/audit"
	"github.com/dbchat/dbchat/internal/tenant"
)

// adminAudit returns the isolation audit (the audit.* views: findings,
// per-table coverage, policies, roles, grants) as JSON, behind the operator
// token. It reads through the runtime pool in a transaction without a
// tenant: migration 00003 lets dbchat_app read the audit views, which
// show catalog metadata only, never a tenant row. A report with findings is
// still a 200; summary.clean says whether the database is clean. The live
// probe is not run here (it needs the query and admin connections): use
// `dbchat audit --probe`.
func (s *Server) adminAudit(c *gin.Context) (int, any, error) {
	rep, err := query(c, as(s.db.TxAs, tenant.Identity{}), func(ctx context.Context, tx tenant.Conn) (*audit.Report, error) {
		return audit.Collect(ctx, tx)
	})
	return reply(http.StatusOK, rep, err)
}

// Endpoint is one routed method and path, in the router's syntax
// (/v1/users/:id).
type Endpoint struct {
	Method string
	Path   string
}

// Endpoints lists the routes; the isolation probe (internal/audit/probe)
// sends another tenant's ids to every one that takes an id.
func (s *Server) Endpoints() []Endpoint {
	routes := s.engine.Routes()
	out := make([]Endpoint, 0, len(routes))
	for _, r := range routes {
		out = append(out, Endpoint{Method: r.Method, Path: r.Path})
	}
	return out
}
