// Package server is dbchat's HTTP API: thin Gin handlers over sqlc queries,
// each run inside the request's tenant transaction (internal/tenant).
package server

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Config holds the server's tunables.
type Config struct {
	// AdminToken is the platform operator's bearer token for /v1/tenants,
	// /v1/admin and /metrics; empty disables those endpoints.
	AdminToken string
	// MaxImportBytes caps a row import body (413 beyond it).
	MaxImportBytes int64
	// MaxJSONBytes caps every other request body.
	MaxJSONBytes int64
	// SQL is the SQL sandbox; nil answers POST /v1/sql with 503.
	SQL *sandbox.Service
	// Embedder embeds training data on write; nil means the local one
	// (embed.FromEnv picks it from DBCHAT_EMBEDDER).
	Embedder embed.Embedder
	// Ask is the NL→SQL pipeline; nil answers POST /v1/ask with 503.
	Ask *ask.Service
}

// Defaults for Config's zero fields.
const (
	DefaultMaxImportBytes = 1 << 30
	DefaultMaxJSONBytes   = 1 << 20
)

// Server holds what handlers need. It has a tenant.DB, never a pool.
type Server struct {
	db      *tenant.DB
	log     *slog.Logger
	cfg     Config
	q       *dbsqlc.Queries
	engine  *gin.Engine
	metrics *metrics
}

// New builds the HTTP handler.
func New(db *tenant.DB, log *slog.Logger, cfg Config) *Server {
	if cfg.MaxImportBytes <= 0 {
		cfg.MaxImportBytes = DefaultMaxImportBytes
	}
	if cfg.MaxJSONBytes <= 0 {
		cfg.MaxJSONBytes = DefaultMaxJSONBytes
	}
	gin.SetMode(gin.ReleaseMode)
	s := &Server{db: db, log: log, cfg: cfg, q: dbsqlc.New(), engine: gin.New(), metrics: newMetrics(db)}
	s.engine.ContextWithFallback = true
	s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

// MetricsHandler serves the Prometheus exposition without a token, for a
// listener of its own that only the scraper can reach (DBCHAT_METRICS_ADDR);
// on the API's address GET /metrics needs the operator token.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.http }

// Registry exposes the server's Prometheus registry (for tests).
func (s *Server) Registry() *prometheus.Registry { return s.metrics.registry }

func (s *Server) routes() {
	e := s.engine
	e.Use(s.observe, s.recoverJSON)
	e.NoRoute(func(c *gin.Context) { s.fail(c, apperr.Errorf(apperr.NotFound, "no such route")) })
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.ready)
	// Metrics show pool sizes, heap and traffic by route: the operator's, like
	// /v1/tenants. A scraper without the token uses MetricsHandler on a
	// listener of its own (DBCHAT_METRICS_ADDR).
	e.GET("/metrics", s.operator, s.metrics.handler)
	e.GET("/openapi.yaml", s.openAPI)

	// Platform operator (DBCHAT_ADMIN_TOKEN).
	ops := e.Group("/v1/tenants", s.operator)
	ops.POST("", s.createTenant)
	ops.GET("", s.listTenants)
	ops.PATCH("/:id", s.updateTenant)
	// (audit routes: GET /v1/admin/audit, operator token)
	e.Group("/v1/admin", s.operator).GET("/audit", s.adminAudit)

	// Tenant API keys.
	v1 := e.Group("/v1", s.authenticate)
	v1.GET("/me", s.me)
	v1.GET("/tenant", s.currentTenant)

	v1.POST("/users", s.adminOnly, s.createUser)
	v1.GET("/users", s.listUsers)
	v1.DELETE("/users/:id", s.adminOnly, s.deleteUser)
	v1.POST("/api-keys", s.createAPIKey)
	v1.GET("/api-keys", s.listAPIKeys)
	v1.DELETE("/api-keys/:id", s.deleteAPIKey)

	v1.POST("/tables", s.adminOnly, s.createTable)
	v1.GET("/tables", s.listTables)
	v1.GET("/tables/:id", s.getTable)
	v1.PATCH("/tables/:id", s.adminOnly, s.updateTable)
	v1.DELETE("/tables/:id", s.adminOnly, s.deleteTable)
	v1.POST("/tables/:id/columns", s.adminOnly, s.addColumn)
	v1.PATCH("/tables/:id/columns/:column_id", s.adminOnly, s.updateColumn)
	v1.POST("/tables/:id/rows", s.adminOnly, s.importRows)
	v1.GET("/tables/:id/rows", s.listRows)

	v1.POST("/sql", s.runSQL)

	v1.GET("/history", s.listHistory)
	v1.GET("/history/:id", s.getHistory)

	// (models and training data routes)
	v1.POST("/models", s.adminOnly, s.createModel)
	v1.GET("/models", s.listModels)
	v1.GET("/models/:name", s.getModel)
	v1.DELETE("/models/:name", s.adminOnly, s.deleteModel)
	v1.POST("/models/:name/training-data", s.adminOnly, s.addTrainingData)
	v1.GET("/models/:name/training-data", s.listTrainingData)
	v1.DELETE("/models/:name/training-data/:id", s.adminOnly, s.deleteTrainingData)
	v1.POST("/models/:name/training-data/import", s.adminOnly, s.importTrainingData)
	v1.POST("/models/:name/train-from-catalog", s.adminOnly, s.trainFromCatalog)

	v1.POST("/ask", s.askQuestion)
	v1.POST("/history/:id/feedback", s.feedback)
	v1.GET("/feedback", s.listFeedback)
	v1.POST("/history/:id/feedback/review", s.adminOnly, s.reviewFeedback)
	v1.GET("/models/:name/stats", s.modelStats)
}

// authenticate resolves the bearer key and puts the identity in the
// request's context; every /v1 handler's transaction is scoped to it.
func (s *Server) authenticate(c *gin.Context) {
	key, ok := bearer(c)
	if !ok {
		s.fail(c, apperr.Errorf(apperr.Unauthorized, "missing or invalid API key"))
		return
	}
	id, err := auth.Authenticate(c.Request.Context(), s.db, key)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Request = c.Request.WithContext(tenant.NewContext(c.Request.Context(), id))
	c.Next()
}

// operator admits the platform operator's token (constant-time compare).
func (s *Server) operator(c *gin.Context) {
	token, ok := bearer(c)
	if s.cfg.AdminToken == "" {
		s.fail(c, apperr.Errorf(apperr.NotFound, "operator endpoints are disabled (set DBCHAT_ADMIN_TOKEN)"))
		return
	}
	if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) != 1 {
		s.fail(c, apperr.Errorf(apperr.Unauthorized, "missing or invalid operator token"))
		return
	}
	c.Next()
}

// adminOnly stops members from doing what only tenant admins may.
func (s *Server) adminOnly(c *gin.Context) {
	if id, _ := tenant.FromContext(c.Request.Context()); id.Role != tenant.Admin {
		s.fail(c, apperr.Errorf(apperr.Forbidden, "only tenant admins may do this"))
		return
	}
	c.Next()
}

func bearer(c *gin.Context) (string, bool) {
	key, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	key = strings.TrimSpace(key)
	return key, ok && key != ""
}

// ready reports whether the database answers and carries this binary's
// latest migration.
func (s *Server) ready(c *gin.Context) {
	want, err := migrate.Latest()
	if err != nil {
		s.fail(c, err)
		return
	}
	var have int64
	err = s.db.OnceAs(c.Request.Context(), tenant.Identity{}, func(tx tenant.Conn) error {
		return tx.QueryRow(c.Request.Context(), `SELECT coalesce(max(version_id), 0) FROM `+migrate.VersionTable+` WHERE is_applied`).Scan(&have)
	})
	switch {
	case err != nil:
		s.fail(c, apperr.Wrap(apperr.Unavailable, err, "database not ready"))
	case have < want:
		s.fail(c, apperr.Errorf(apperr.Unavailable, "database at migration %d, binary needs %d: run `dbchat migrate`", have, want))
	default:
		c.JSON(http.StatusOK, gin.H{"status": "ready", "migration": have})
	}
}

// fail writes err in the one error shape and stops the handler chain.
// Internal errors are logged with their cause and shown generically.
func (s *Server) fail(c *gin.Context, err error) {
	e := apperr.As(err)
	status := apperr.HTTPStatus(e.Code)
	if status >= 500 {
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
			slog.String("request_id", c.GetString(requestIDKey)), slog.String("route", c.FullPath()),
			slog.String("code", string(e.Code)), slog.Any("error", err))
	}
	body := gin.H{"code": e.Code, "message": e.Message}
	if e.Code == apperr.Internal {
		body["message"] = "internal error"
	}
	if len(e.Details) > 0 {
		body["details"] = e.Details
	}
	c.AbortWithStatusJSON(status, gin.H{"error": body})
}

func (s *Server) recoverJSON(c *gin.Context) {
	defer func() {
		if r := recover(); r != nil {
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error("panic", slog.Any("panic", r), slog.String("route", c.FullPath()))
			s.fail(c, apperr.Errorf(apperr.Internal, "internal error"))
		}
	}()
	c.Next()
}

// tx runs fn in the request's tenant transaction.
func (s *Server) tx(c *gin.Context, fn func(ctx context.Context, tx tenant.Conn) error) error {
	ctx := c.Request.Context()
	return s.db.Tx(ctx, func(tx tenant.Conn) error { return fn(ctx, tx) })
}

// once runs a single statement in the request's tenant context, in one round
// trip (see tenant.DB.Once).
func (s *Server) once(c *gin.Context, fn func(ctx context.Context, tx tenant.Conn) error) error {
	ctx := c.Request.Context()
	return s.db.Once(ctx, func(tx tenant.Conn) error { return fn(ctx, tx) })
}
