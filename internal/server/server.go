// Package server is dbchat's HTTP API: thin Gin handlers over sqlc queries,
// each run inside the request's tenant transaction.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Server holds what handlers need. It has a tenant.DB, never a pool.
type Server struct {
	db     *tenant.DB
	log    *slog.Logger
	q      *dbsqlc.Queries
	engine *gin.Engine
}

// New builds the HTTP handler.
func New(db *tenant.DB, log *slog.Logger) *Server {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{db: db, log: log, q: dbsqlc.New(), engine: gin.New()}
	s.routes()
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.engine.ServeHTTP(w, r) }

func (s *Server) routes() {
	e := s.engine
	e.Use(s.recoverJSON)
	e.NoRoute(func(c *gin.Context) { s.fail(c, apperr.Errorf(apperr.NotFound, "no such route")) })
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", s.ready)

	v1 := e.Group("/v1", s.authenticate)
	v1.GET("/me", s.me)
	v1.GET("/tables", s.listTables)
}

// authenticate resolves the bearer key and puts the identity in the
// request's context; every /v1 handler's transaction is scoped to it.
func (s *Server) authenticate(c *gin.Context) {
	key, ok := strings.CutPrefix(c.GetHeader("Authorization"), "Bearer ")
	if !ok || key == "" {
		s.fail(c, apperr.Errorf(apperr.Unauthorized, "missing or invalid API key"))
		return
	}
	id, err := auth.Authenticate(c.Request.Context(), s.db, strings.TrimSpace(key))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Request = c.Request.WithContext(tenant.NewContext(c.Request.Context(), id))
	c.Next()
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
	err = s.db.TxAs(c.Request.Context(), tenant.Identity{}, func(tx tenant.Conn) error {
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
			slog.String("route", c.FullPath()), slog.String("code", string(e.Code)), slog.Any("error", err))
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
func (s *Server) tx(c *gin.Context, fn func(ctx context.Context, tx dbsqlc.DBTX) error) error {
	ctx := c.Request.Context()
	return s.db.Tx(ctx, func(tx tenant.Conn) error { return fn(ctx, tx) })
}

// once runs a single statement in the request's tenant context, in one round
// trip (see tenant.DB.Once).
func (s *Server) once(c *gin.Context, fn func(ctx context.Context, tx dbsqlc.DBTX) error) error {
	ctx := c.Request.Context()
	return s.db.Once(ctx, func(tx tenant.Conn) error { return fn(ctx, tx) })
}
