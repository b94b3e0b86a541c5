package server

import (
	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
)

// importRows is not implemented yet.
func (s *Server) importRows(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}

// listRows is not implemented yet.
func (s *Server) listRows(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}
