package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

type tenantRequest struct {
	Name       string `json:"name"`
	Slug       string `json:"slug"`
	AdminEmail string `json:"admin_email"`
}

// createTenant provisions a tenant with its first admin, that admin's key
// (shown once) and the default model.
func (s *Server) createTenant(c *gin.Context) (int, any, error) {
	req, err := bind[tenantRequest](s, c)
	if err != nil {
		return 0, nil, err
	}
	res, err := provision.CreateTenant(c.Request.Context(), s.db, provision.Request{
		Name: req.Name, Slug: req.Slug, AdminEmail: req.AdminEmail,
	})
	return reply(http.StatusCreated, gin.H{
		"tenant":  toTenantJSON(res.Tenant),
		"user":    toUserJSON(res.Admin),
		"api_key": res.APIKey,
	}, err)
}

// listTenants lists every tenant through the operator's one cross-tenant
// path, dbchat_ops.list_tenants(), in a transaction with no tenant.
func (s *Server) listTenants(c *gin.Context) (int, any, error) {
	rows, err := query(c, as(s.db.OnceAs, tenant.Identity{}), func(ctx context.Context, tx tenant.Conn) ([]dbsqlc.Tenant, error) {
		return s.q.ListTenants(ctx, tx)
	})
	return reply(http.StatusOK, gin.H{"tenants": convert(rows, toTenantJSON)}, err)
}

type tenantPatch struct {
	Name     *string `json:"name"`
	IsActive *bool   `json:"is_active"`
}

// Validate normalises a new name as tenant creation does.
func (p *tenantPatch) Validate() error {
	if p.Name == nil {
		return nil
	}
	name, err := provision.NormaliseName("name", *p.Name)
	p.Name = &name
	return err
}

// updateTenant renames, deactivates or reactivates a tenant. It runs as that
// tenant, so the policy admits exactly its row and an unknown id matches
// nothing (404). A deactivated tenant's keys fail on their next request:
// the key lookup checks is_active.
func (s *Server) updateTenant(c *gin.Context) (int, any, error) {
	id, p, err := pathIDAndBody[tenantPatch](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	t, err := query(c, as(s.db.OnceAs, tenant.Identity{TenantID: id}), func(ctx context.Context, tx tenant.Conn) (dbsqlc.Tenant, error) {
		if p.Name == nil && p.IsActive == nil {
			return s.q.CurrentTenant(ctx, tx) // nothing to change
		}
		return s.q.UpdateTenant(ctx, tx, dbsqlc.UpdateTenantParams{ID: id, Name: p.Name, IsActive: p.IsActive})
	})
	return reply(http.StatusOK, toTenantJSON(t), err)
}

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

// currentTenant returns the caller's own tenant.
func (s *Server) currentTenant(c *gin.Context) (int, any, error) {
	t, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (dbsqlc.Tenant, error) {
		return s.q.CurrentTenant(ctx, tx)
	})
	return reply(http.StatusOK, toTenantJSON(t), err)
}

type tenantSettings struct {
	LLMDataAccess *bool `json:"llm_data_access"`
}

// Validate requires the setting.
func (p *tenantSettings) Validate() error {
	if p.LLMDataAccess == nil {
		return apperr.Field("llm_data_access", "is required")
	}
	return nil
}

// updateCurrentTenant changes the caller's tenant's settings (admins).
func (s *Server) updateCurrentTenant(c *gin.Context) (int, any, error) {
	p, err := bind[tenantSettings](s, c)
	if err != nil {
		return 0, nil, err
	}
	t, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (dbsqlc.Tenant, error) {
		return s.q.SetLLMDataAccess(ctx, tx, *p.LLMDataAccess)
	})
	return reply(http.StatusOK, toTenantJSON(t), err)
}
