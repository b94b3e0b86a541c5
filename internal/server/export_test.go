package server

import (
	"time"

	"github.com/gin-gonic/gin"
)

// Routes exposes the router's routes to the tests (package server_test).
func (s *Server) Routes() gin.RoutesInfo { return s.engine.Routes() }

// SetHeartbeat sets how often a quiet event stream sends a comment line
// (tests shorten it); it returns the previous value.
func SetHeartbeat(d time.Duration) time.Duration {
	old := heartbeat
	heartbeat = d
	return old
}
