package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// me answers who the key acts as: its tenant, user and role.
func (s *Server) me(c *gin.Context) (int, any, error) {
	id := callerIdentity(c)
	row, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (dbsqlc.GetMeRow, error) {
		return s.q.GetMe(ctx, tx, id.UserID)
	})
	return reply(http.StatusOK, gin.H{
		"tenant": toTenantJSON(row.Tenant),
		"user":   toUserJSON(row.User),
		"role":   id.Role,
		"key_id": id.KeyID,
	}, err)
}
