package server

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPISpec describes every route in routes(); openapi_test.go checks the
// two against each other in both directions.
//
//go:embed openapi.yaml
var openAPISpec []byte

// openAPI serves the embedded OpenAPI 3.0 document.
func (s *Server) openAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml", openAPISpec)
}
