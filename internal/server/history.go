package server

import (
	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
)

// listHistory is not implemented yet.
func (s *Server) listHistory(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}

// getHistory is not implemented yet.
func (s *Server) getHistory(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}
