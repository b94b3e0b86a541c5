package server

import (
	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
)

// createTenant is not implemented yet.
func (s *Server) createTenant(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}

// listTenants is not implemented yet.
func (s *Server) listTenants(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}

// updateTenant is not implemented yet.
func (s *Server) updateTenant(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}

// currentTenant is not implemented yet.
func (s *Server) currentTenant(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}
