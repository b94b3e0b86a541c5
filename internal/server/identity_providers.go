package server

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/identity"
	"github.com/dbchat/dbchat/internal/tenant"
)

// identityProviderRoutes: the issuers whose tokens sign the tenant's end
// users in (admins only; internal/identity has the logic).
func (s *Server) identityProviderRoutes(v1 *gin.RouterGroup, admin gin.HandlerFunc) {
	h := s.handle
	v1.POST("/identity-providers", admin, h(s.createIdentityProvider))
	v1.GET("/identity-providers", admin, h(s.listIdentityProviders))
	v1.DELETE("/identity-providers/:id", admin, h(s.deleteIdentityProvider))
}

// createIdentityProvider registers an issuer for the caller's tenant; 409
// when any tenant has it already.
func (s *Server) createIdentityProvider(c *gin.Context) (int, any, error) {
	spec, err := bind[identity.Spec](s, c)
	if err != nil {
		return 0, nil, err
	}
	p, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (identity.Provider, error) {
		return identity.Create(ctx, tx, spec)
	})
	return reply(http.StatusCreated, p, err)
}

// listIdentityProviders lists the caller's tenant's providers.
func (s *Server) listIdentityProviders(c *gin.Context) (int, any, error) {
	ps, err := query(c, s.db.Once, identity.List)
	return reply(http.StatusOK, gin.H{"identity_providers": ps}, err)
}

// deleteIdentityProvider removes one; its users stay, unlinked.
func (s *Server) deleteIdentityProvider(c *gin.Context) (int, any, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	return reply(http.StatusNoContent, nil, exec(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) error {
		return identity.Delete(ctx, tx, id)
	}))
}
