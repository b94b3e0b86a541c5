package server

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

type tenantJSON struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	Slug      string    `json:"slug"`
	IsActive  bool      `json:"is_active"`
	CreatedAt time.Time `json:"created_at"`
}

type userJSON struct {
	ID    uuid.UUID `json:"id"`
	Email string    `json:"email"`
	Name  string    `json:"name"`
	Role  string    `json:"role"`
}

// me answers who the key acts as: its tenant, user and role.
func (s *Server) me(c *gin.Context) {
	id, _ := tenant.FromContext(c.Request.Context())
	var row dbsqlc.GetMeRow
	err := s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		row, err = s.q.GetMe(ctx, tx, id.UserID)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	t, u := row.Tenant, row.User
	c.JSON(http.StatusOK, gin.H{
		"tenant": tenantJSON{ID: t.ID, Name: t.Name, Slug: t.Slug, IsActive: t.IsActive, CreatedAt: t.CreatedAt},
		"user":   userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role},
		"role":   id.Role,
		"key_id": id.KeyID,
	})
}
