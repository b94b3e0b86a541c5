package server

import (
	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
)

// createUser is not implemented yet.
func (s *Server) createUser(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}

// listUsers is not implemented yet.
func (s *Server) listUsers(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}

// deleteUser is not implemented yet.
func (s *Server) deleteUser(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}

// createAPIKey is not implemented yet.
func (s *Server) createAPIKey(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}

// listAPIKeys is not implemented yet.
func (s *Server) listAPIKeys(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}

// deleteAPIKey is not implemented yet.
func (s *Server) deleteAPIKey(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}
