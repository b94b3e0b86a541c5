package server

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/limits"
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
	return reply(http.StatusOK, gin.H{"tenants": convert(rows, s.withLimits)}, err)
}

type tenantPatch struct {
	Name     *string         `json:"name"`
	IsActive *bool           `json:"is_active"`
	Limits   json.RawMessage `json:"limits"`
	limits   *limits.Patch   // Limits, checked
}

// Validate normalises a new name as tenant creation does and checks the
// limits (400 naming limits.<name>).
func (p *tenantPatch) Validate() error {
	if p.Limits != nil {
		lp, err := limits.ParsePatch(p.Limits)
		if err != nil {
			return err
		}
		p.limits = &lp
	}
	if p.Name == nil {
		return nil
	}
	name, err := provision.NormaliseName("name", *p.Name)
	p.Name = &name
	return err
}

// tenantLimitsJSON is a tenant with its limits, as the operator and the
// tenant itself see it: limits are those in force (null: unlimited),
// limits_set the values the operator set (a name absent there takes the
// configured default, DBCHAT_DEFAULT_<NAME>).
type tenantLimitsJSON struct {
	tenantJSON
	Limits    limits.Limits       `json:"limits"`
	LimitsSet map[string]*float64 `json:"limits_set"`
}

// withLimits adds t's limits to its JSON. The column's CHECK constraints
// admit only an object of numbers and nulls, so it always decodes.
func (s *Server) withLimits(t dbsqlc.Tenant) tenantLimitsJSON {
	view := s.cfg.Limits
	if view == nil {
		view = limits.New(s.db, nil)
	}
	eff, _ := view.Effective(t.Limits)
	set, _ := limits.Stored(t.Limits)
	return tenantLimitsJSON{tenantJSON: toTenantJSON(t), Limits: eff, LimitsSet: set}
}

// updateTenant renames, deactivates or reactivates a tenant and sets its
// limits. It runs as that tenant, so the policy admits exactly its row and
// an unknown id matches nothing (404). A deactivated tenant's keys fail on
// their next request: the key lookup checks is_active. New limits hold on
// every instance from the next request: each reads them in its statement.
func (s *Server) updateTenant(c *gin.Context) (int, any, error) {
	id, p, err := pathIDAndBody[tenantPatch](s, c, "id")
	if err != nil {
		return 0, nil, err
	}
	t, err := query(c, as(s.db.TxAs, tenant.Identity{TenantID: id}), func(ctx context.Context, tx tenant.Conn) (dbsqlc.Tenant, error) {
		return s.patchTenant(ctx, tx, id, p)
	})
	return reply(http.StatusOK, s.withLimits(t), err)
}

// patchTenant applies p in the tenant's transaction: name and state, then
// limits, each only if given; with nothing given it reads the tenant.
func (s *Server) patchTenant(ctx context.Context, tx tenant.Conn, id uuid.UUID, p tenantPatch) (t dbsqlc.Tenant, err error) {
	if p.Name != nil || p.IsActive != nil {
		if t, err = s.q.UpdateTenant(ctx, tx, dbsqlc.UpdateTenantParams{ID: id, Name: p.Name, IsActive: p.IsActive}); err != nil {
			return t, err
		}
	}
	if p.limits != nil {
		return s.q.SetTenantLimits(ctx, tx, dbsqlc.SetTenantLimitsParams{ID: id, Set: p.limits.Set, Unset: p.limits.Unset})
	}
	if t.ID == uuid.Nil {
		return s.q.CurrentTenant(ctx, tx) // nothing to change
	}
	return t, nil
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
	return reply(http.StatusOK, s.withLimits(t), err)
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
