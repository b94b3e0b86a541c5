package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

func toTenantJSON(t dbsqlc.Tenant) tenantJSON {
	return tenantJSON{ID: t.ID, Name: t.Name, Slug: t.Slug, IsActive: t.IsActive, CreatedAt: t.CreatedAt}
}

func toUserJSON(u dbsqlc.User) userJSON {
	return userJSON{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role}
}

type tenantRequest struct {
	Name       string `json:"name"`
	Slug       string `json:"slug"`
	AdminEmail string `json:"admin_email"`
}

// createTenant provisions a tenant with its first admin, that admin's key
// (shown once) and the default model.
func (s *Server) createTenant(c *gin.Context) {
	var req tenantRequest
	if err := s.bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	res, err := provision.CreateTenant(c.Request.Context(), s.db, provision.Request{
		Name: req.Name, Slug: req.Slug, AdminEmail: req.AdminEmail,
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{
		"tenant":  toTenantJSON(res.Tenant),
		"user":    toUserJSON(res.Admin),
		"api_key": res.APIKey,
	})
}

// listTenants lists every tenant through the operator's one cross-tenant
// path, dbchat_ops.list_tenants(), in a transaction with no tenant.
func (s *Server) listTenants(c *gin.Context) {
	ctx := c.Request.Context()
	var rows []dbsqlc.Tenant
	err := s.db.OnceAs(ctx, tenant.Identity{}, func(tx tenant.Conn) error {
		var err error
		rows, err = s.q.ListTenants(ctx, tx)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]tenantJSON, 0, len(rows))
	for _, t := range rows {
		out = append(out, toTenantJSON(t))
	}
	c.JSON(http.StatusOK, gin.H{"tenants": out})
}

type tenantPatch struct {
	Name     *string `json:"name"`
	IsActive *bool   `json:"is_active"`
}

// updateTenant renames, deactivates or reactivates a tenant. It runs as that
// tenant, so the policy admits exactly its row and an unknown id matches
// nothing (404). A deactivated tenant's keys fail on their next request:
// the key lookup checks is_active.
func (s *Server) updateTenant(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var p tenantPatch
	if err := s.bindJSON(c, &p); err != nil {
		s.fail(c, err)
		return
	}
	if p.Name != nil {
		name, err := provision.NormaliseName("name", *p.Name)
		if err != nil {
			s.fail(c, err)
			return
		}
		p.Name = &name
	}
	ctx := c.Request.Context()
	var t dbsqlc.Tenant
	err = s.db.OnceAs(ctx, tenant.Identity{TenantID: id}, func(tx tenant.Conn) error {
		var err error
		if p.Name == nil && p.IsActive == nil {
			t, err = s.q.CurrentTenant(ctx, tx) // nothing to change
			return err
		}
		t, err = s.q.UpdateTenant(ctx, tx, dbsqlc.UpdateTenantParams{ID: id, Name: p.Name, IsActive: p.IsActive})
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toTenantJSON(t))
}

// currentTenant returns the caller's own tenant.
func (s *Server) currentTenant(c *gin.Context) {
	var t dbsqlc.Tenant
	err := s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		t, err = s.q.CurrentTenant(ctx, tx)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, toTenantJSON(t))
}
