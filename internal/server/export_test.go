package server

import "github.com/gin-gonic/gin"

// Routes exposes the router's routes to the tests (package server_test).
func (s *Server) Routes() gin.RoutesInfo { return s.engine.Routes() }
