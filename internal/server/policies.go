package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/tenant"
)

// createPolicy attaches a claim policy to a table: the database compiles it
// into a restrictive PostgreSQL policy (catalog.CreatePolicy). Admins only;
// the database checks app.role again.
func (s *Server) createPolicy(c *gin.Context) (int, any, error) {
	id, spec, err := pathIDAndBody[catalog.PolicySpec](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	p, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) (catalog.Policy, error) {
		return catalog.CreatePolicy(ctx, tx, id, spec)
	})
	return reply(http.StatusCreated, p, err)
}

// listPolicies lists a table's claim policies.
func (s *Server) listPolicies(c *gin.Context) (int, any, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	ps, err := query(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) ([]catalog.Policy, error) {
		return catalog.ListPolicies(ctx, tx, id)
	})
	return reply(http.StatusOK, gin.H{"policies": ps}, err)
}

// deletePolicy drops a claim policy of a table.
func (s *Server) deletePolicy(c *gin.Context) (int, any, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	pid, err := pathID(c, "policy_id")
	if err != nil {
		return 0, nil, err
	}
	err = exec(c, s.db.Tx, func(ctx context.Context, tx tenant.Conn) error { return catalog.DeletePolicy(ctx, tx, id, pid) })
	return reply(http.StatusNoContent, nil, err)
}
