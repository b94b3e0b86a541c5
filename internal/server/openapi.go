package server

import (
	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
)

// openAPI is not implemented yet.
func (s *Server) openAPI(c *gin.Context) {
	s.fail(c, apperr.Errorf(apperr.Internal, "not implemented"))
}
