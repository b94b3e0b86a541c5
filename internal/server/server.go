// Package server is dbchat's HTTP API: thin Gin handlers over the domain
// packages and sqlc queries, each run inside the request's tenant
// transaction (internal/tenant). A handler parses its request, makes one
// call and returns what to answer; adapter.go writes it, and every error
// goes through Server.fail. api.go holds the response types and their rule.
package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/conversation"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/identity"
	"github.com/dbchat/dbchat/internal/limits"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/session"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/usage"
	"github.com/dbchat/dbchat/internal/web"
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
	// Replica is SQL's tenant.Sandbox when it reads on a hot standby: it is
	// told of every change to a tenant's tables before the response is
	// sent (noteWrites, read-your-writes). Nil when there is no standby.
	Replica *tenant.Sandbox
	// Embedder embeds training data on write; nil means the local one
	// (embed.FromEnv picks it from DBCHAT_EMBEDDER).
	Embedder embed.Embedder
	// Ask is the NL→SQL pipeline; nil answers POST /v1/ask with 503.
	Ask *ask.Service
	// BodyIdleTimeout cuts a request body that sends nothing for this long
	// (408 for an import); a body that keeps flowing is never cut. Zero
	// means DefaultBodyIdleTimeout, negative none.
	BodyIdleTimeout time.Duration
	// MaxConcurrentImports caps row imports running at once (each holds a
	// pooled connection while its body arrives); more wait as long as for a
	// connection, then get 503 overloaded. Zero means half the pool.
	MaxConcurrentImports int
	// MaxTenantImports caps one tenant's row imports running at once, so a
	// tenant cannot take every import slot; more wait like for the others,
	// then get 503 overloaded. Zero means half of MaxConcurrentImports, at
	// least 1.
	MaxTenantImports int
	// ImportStatementTimeout is an import transaction's statement_timeout
	// (SET LOCAL over dbchat_app's default). Zero means
	// DefaultImportStatementTimeout.
	ImportStatementTimeout time.Duration
	// Identity tunes the verification of identity provider tokens (clock
	// skew, JWKS caching); the zero value takes identity's defaults.
	Identity identity.Options
	// Sessions are the web app's session lifetimes (idle and absolute);
	// zero values take session's defaults (12 h idle, 7 days at most).
	Sessions session.Options
	// TrustForwardedProto believes X-Forwarded-Proto: https, so cookies
	// get Secure and responses HSTS behind a TLS-terminating proxy. Only
	// set it when such a proxy always sets (or strips) the header.
	TrustForwardedProto bool
	// Export writes a tenant's export for the operator's GET
	// /v1/admin/tenants/{id}/export; nil answers 503.
	Export Exporter
	// Limits enforces the tenants' rate limits and quotas (issue 17 §2);
	// nil enforces none.
	Limits *limits.Service
	// Prices is the LLM price table for usage analytics' estimated costs
	// (DBCHAT_LLM_PRICES); a model it lacks has an unknown (null) cost.
	Prices usage.Prices
	// Privileged opens a privileged connection (DBCHAT_CANARY_DATABASE_URL)
	// for an evaluation's leakage canary, which erases the throwaway tenant
	// it creates; nil reports the canary skipped.
	Privileged func(ctx context.Context) (*pgx.Conn, error)
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
	store   *nlsql.Store          // training data; see trainer
	imports *importSlots          // running row imports; see importSlot
	conv    *conversation.Service // nil without cfg.Ask
	idp     *identity.Verifier    // bearer JWTs from tenants' identity providers
	keys    *auth.Cache           // API keys verified lately (one round trip per read)
	session *session.Service      // the web app's cookie sessions
	app     *web.Handler          // the browser app, at / and /assets/
}

// keyCacheSize bounds the API keys a server remembers (auth.Cache).
const keyCacheSize = 10000

// New builds the HTTP handler.
func New(db *tenant.DB, log *slog.Logger, cfg Config) *Server {
	cfg = cfg.withDefaults(db.MaxConns())
	gin.SetMode(gin.ReleaseMode)
	s := &Server{db: db, log: log, cfg: cfg, q: dbsqlc.New(), engine: gin.New(), metrics: newMetrics(db),
		store: trainer(db, cfg), imports: newImportSlots(cfg), idp: identity.NewVerifier(db, cfg.Identity), app: web.New(),
		keys: auth.NewCache(keyCacheSize)}
	if cfg.Ask != nil {
		s.conv = conversation.New(db, cfg.Ask)
	}
	s.session = session.New(db, cfg.Sessions)
	s.enforceQuotas()
	s.engine.ContextWithFallback = true
	s.routes()
	return s
}

// withDefaults fills cfg's zero fields; the import caps follow the size of
// the pool they share.
func (cfg Config) withDefaults(poolSize int) Config {
	if cfg.MaxImportBytes <= 0 {
		cfg.MaxImportBytes = DefaultMaxImportBytes
	}
	if cfg.MaxJSONBytes <= 0 {
		cfg.MaxJSONBytes = DefaultMaxJSONBytes
	}
	if cfg.BodyIdleTimeout == 0 {
		cfg.BodyIdleTimeout = DefaultBodyIdleTimeout
	}
	if cfg.ImportStatementTimeout <= 0 {
		cfg.ImportStatementTimeout = DefaultImportStatementTimeout
	}
	if cfg.MaxConcurrentImports <= 0 {
		cfg.MaxConcurrentImports = max(1, poolSize/2)
	}
	if cfg.MaxTenantImports <= 0 {
		cfg.MaxTenantImports = max(1, cfg.MaxConcurrentImports/2)
	}
	return cfg
}

// ServeHTTP implements http.Handler.
// Request bodies are cut when they stall (see idleBody).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.engine.ServeHTTP(w, s.withIdleBody(w, r))
}

// MetricsHandler serves the Prometheus exposition without a token, for a
// listener of its own that only the scraper can reach (DBCHAT_METRICS_ADDR);
// on the API's address GET /metrics needs the operator token.
func (s *Server) MetricsHandler() http.Handler { return s.metrics.http }

// Registry exposes the server's Prometheus registry (for tests).
func (s *Server) Registry() *prometheus.Registry { return s.metrics.registry }

// routes registers every route: the platform's, the operator's and, under
// /v1 with a tenant API key, the tenant's by area.
func (s *Server) routes() {
	e, h := s.engine, s.handle
	e.Use(s.securityHeaders, s.observe, s.recoverJSON)
	e.NoRoute(s.noRoute)
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", h(s.ready))
	e.GET("/openapi.yaml", s.openAPI)
	s.operatorRoutes()
	s.sessionRoutes()
	s.oidcRoutes()
	v1, admin := e.Group("/v1", s.guard(s.authenticate), s.guard(s.rateLimit), s.noteWrites), s.guard(s.adminOnly)
	s.accountRoutes(v1, admin)
	s.tableRoutes(v1, admin)
	s.modelRoutes(v1, admin)
	s.askRoutes(v1, admin)
}

// noRoute serves the web app (internal/web) to a GET or HEAD of / or its
// assets, and answers every other unknown route with the JSON 404: the app
// routes on the URL's hash, so no other path needs to be a page.
func (s *Server) noRoute(c *gin.Context) {
	p, m := c.Request.URL.Path, c.Request.Method
	if (m == http.MethodGet || m == http.MethodHead) && (p == "/" || strings.HasPrefix(p, web.Prefix)) {
		s.app.ServeHTTP(c.Writer, c.Request)
		return
	}
	s.fail(c, apperr.Errorf(apperr.NotFound, "no such route"))
}

// operatorRoutes are the platform operator's (DBCHAT_ADMIN_TOKEN). Metrics
// show pool sizes, heap and traffic by route, so they are the operator's
// too; a scraper without the token uses MetricsHandler on a listener of its
// own (DBCHAT_METRICS_ADDR).
func (s *Server) operatorRoutes() {
	e, h, operator := s.engine, s.handle, s.guard(s.operator)
	e.GET("/metrics", operator, s.metrics.handler)
	ops := e.Group("/v1/tenants", operator)
	ops.POST("", h(s.createTenant))
	ops.GET("", h(s.listTenants))
	ops.PATCH("/:id", h(s.updateTenant))
	admin := e.Group("/v1/admin", operator)
	admin.GET("/audit", h(s.adminAudit))
	admin.GET("/analytics", h(s.adminAnalytics))
	admin.GET("/tenants/:id/export", h(s.exportTenant))
}

// accountRoutes: the caller, its tenant, users and API keys.
func (s *Server) accountRoutes(v1 *gin.RouterGroup, admin gin.HandlerFunc) {
	h := s.handle
	v1.GET("/me", h(s.me))
	v1.GET("/tenant", h(s.currentTenant))
	v1.PATCH("/tenant", admin, h(s.updateCurrentTenant))
	v1.GET("/analytics", admin, h(s.analytics))
	v1.POST("/users", admin, h(s.createUser))
	v1.GET("/users", h(s.listUsers))
	v1.DELETE("/users/:id", admin, h(s.deleteUser))
	v1.POST("/api-keys", h(s.createAPIKey))
	v1.GET("/api-keys", h(s.listAPIKeys))
	v1.DELETE("/api-keys/:id", h(s.deleteAPIKey))
	s.identityProviderRoutes(v1, admin)
}

// tableRoutes: the tenant's tables, their rows and SQL over them.
func (s *Server) tableRoutes(v1 *gin.RouterGroup, admin gin.HandlerFunc) {
	h := s.handle
	v1.POST("/tables", admin, h(s.createTable))
	v1.GET("/tables", h(s.listTables))
	v1.GET("/tables/:id", h(s.getTable))
	v1.PATCH("/tables/:id", admin, h(s.updateTable))
	v1.DELETE("/tables/:id", admin, h(s.deleteTable))
	v1.POST("/tables/:id/columns", admin, h(s.addColumn))
	v1.PATCH("/tables/:id/columns/:column_id", admin, h(s.updateColumn))
	v1.POST("/tables/:id/rows", admin, h(s.importRows))
	v1.GET("/tables/:id/rows", h(s.listRows))
	// Claim policies: end-user row policies, enforced by PostgreSQL.
	v1.POST("/tables/:id/policies", admin, h(s.createPolicy))
	v1.GET("/tables/:id/policies", admin, h(s.listPolicies))
	v1.DELETE("/tables/:id/policies/:policy_id", admin, h(s.deletePolicy))
	v1.POST("/sql", h(s.runSQL))
}

// modelRoutes: text-to-SQL models and their training data.
func (s *Server) modelRoutes(v1 *gin.RouterGroup, admin gin.HandlerFunc) {
	h := s.handle
	v1.POST("/models", admin, h(s.createModel))
	v1.GET("/models", h(s.listModels))
	v1.GET("/models/:name", h(s.getModel))
	v1.DELETE("/models/:name", admin, h(s.deleteModel))
	v1.POST("/models/:name/training-data", admin, h(s.addTrainingData))
	v1.GET("/models/:name/training-data", h(s.listTrainingData))
	v1.DELETE("/models/:name/training-data/:id", admin, h(s.deleteTrainingData))
	v1.PATCH("/models/:name/training-data/:id", admin, h(s.verifyTrainingData))
	v1.POST("/models/:name/training-data/import", admin, h(s.importTrainingData))
	v1.POST("/models/:name/train-from-catalog", admin, h(s.trainFromCatalog))
	v1.GET("/models/:name/stats", h(s.modelStats))
	v1.POST("/models/:name/evaluations", admin, h(s.createEvaluation))
	v1.GET("/models/:name/evaluations", h(s.listEvaluations))
	v1.GET("/models/:name/evaluations/:id", h(s.getEvaluation))
}

// askRoutes: questions, their history and feedback on the answers.
func (s *Server) askRoutes(v1 *gin.RouterGroup, admin gin.HandlerFunc) {
	h := s.handle
	v1.POST("/ask", h(s.askQuestion))
	v1.GET("/history", h(s.listHistory))
	v1.GET("/history/:id", h(s.getHistory))
	v1.POST("/history/:id/feedback", h(s.feedback))
	v1.GET("/feedback", h(s.listFeedback))
	v1.POST("/history/:id/feedback/review", admin, h(s.reviewFeedback))
	s.conversationRoutes(v1)
}

// conversationRoutes: multi-turn chat; who sees which conversation is the
// database's owner_or_admin policy.
func (s *Server) conversationRoutes(v1 *gin.RouterGroup) {
	h, g := s.handle, v1.Group("/conversations", s.guard(s.conversationsConfigured))
	g.POST("", h(s.createConversation))
	g.GET("", h(s.listConversations))
	g.GET("/:id", h(s.getConversation))
	g.PATCH("/:id", h(s.updateConversation))
	g.DELETE("/:id", h(s.deleteConversation))
	g.POST("/:id/messages", h(s.addMessage))
}

// authenticate resolves the bearer credential, an API key (dbc_...) or a
// JWT from a tenant's identity provider (three dot-separated parts), or
// without an Authorization header the web app's session cookie, and puts
// the identity in the request's context; every /v1 handler's transaction
// is scoped to it.
func (s *Server) authenticate(c *gin.Context) error {
	err := s.signIn(c)
	if errors.Is(err, auth.ErrChanged) { // forgotten now: looked up afresh
		err = s.signIn(c)
	}
	return err
}

// signIn is one attempt of authenticate.
func (s *Server) signIn(c *gin.Context) error {
	if token, err := c.Cookie(session.CookieName); err == nil && token != "" && c.GetHeader("Authorization") == "" {
		return s.cookieAuth(c, token)
	}
	key, ok := bearer(c)
	if !ok {
		return apperr.Errorf(apperr.Unauthorized, "missing or invalid API key")
	}
	deferred := &limits.Rate{}
	var tokens auth.TokensFor
	if s.cfg.Limits != nil {
		tokens = s.cfg.Limits.Tokens(deferred)
	}
	var id tenant.Identity
	var err error
	if !strings.HasPrefix(key, "dbc_") && identity.LooksLikeJWT(key) {
		id, err = s.idp.AuthenticateWith(c.Request.Context(), key, tokens)
	} else {
		id, err = s.keySignIn(c, key, tokens)
	}
	if err == nil {
		err = s.confirmLater(c, id, deferred)
	}
	if err != nil {
		return err
	}
	c.Request = c.Request.WithContext(tenant.NewContext(c.Request.Context(), id))
	return nil
}

// operator admits the platform operator's token (constant-time compare).
func (s *Server) operator(c *gin.Context) error {
	token, ok := bearer(c)
	if s.cfg.AdminToken == "" {
		return apperr.Errorf(apperr.NotFound, "operator endpoints are disabled (set DBCHAT_ADMIN_TOKEN)")
	}
	if !ok || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) != 1 {
		return apperr.Errorf(apperr.Unauthorized, "missing or invalid operator token")
	}
	return nil
}

// adminOnly stops members from doing what only tenant admins may. It marks
// the route, so that a read run again for a changed role checks it again.
func (s *Server) adminOnly(c *gin.Context) error {
	c.Set(adminRouteKey{}, true)
	if id := callerIdentity(c); id.Role != tenant.Admin && id.Check.Pending() {
		// A remembered identity may be out of date: confirm it before
		// refusing, and sign in afresh if its user became an admin.
		err := s.db.Verify(c.Request.Context())
		if errors.Is(err, auth.ErrChanged) {
			err = s.authenticate(c)
		}
		if err != nil {
			return err
		}
	}
	if callerIdentity(c).Role != tenant.Admin {
		return apperr.Errorf(apperr.Forbidden, "only tenant admins may do this")
	}
	return nil
}

// adminRouteKey marks, in the gin context, a route behind adminOnly.
type adminRouteKey struct{}

// bearer is the credential of an "Authorization: Bearer <credential>"
// header. The scheme's name is case-insensitive (RFC 9110 section 11.1), so
// "bearer" and "BEARER" are Bearer too; the credential is taken as sent.
func bearer(c *gin.Context) (string, bool) {
	scheme, key, ok := strings.Cut(c.GetHeader("Authorization"), " ")
	key = strings.TrimSpace(key)
	return key, ok && strings.EqualFold(scheme, "Bearer") && key != ""
}

// callerIdentity is the caller behind the request's key (set by authenticate).
func callerIdentity(c *gin.Context) tenant.Identity {
	id, _ := tenant.FromContext(c.Request.Context())
	return id
}

// ready reports whether the database answers and carries this binary's
// latest migration. It reads in a transaction without a tenant.
func (s *Server) ready(c *gin.Context) (int, any, error) {
	want, err := migrate.Latest()
	if err != nil {
		return 0, nil, err
	}
	have, err := query(c, as(s.db.OnceAs, tenant.Identity{}), func(ctx context.Context, tx tenant.Conn) (int64, error) {
		return migrate.Applied(ctx, tx)
	})
	switch {
	case err != nil:
		return 0, nil, apperr.Wrap(apperr.Unavailable, err, "database not ready")
	case have < want:
		return 0, nil, apperr.Errorf(apperr.Unavailable, "database at migration %d, binary needs %d: run `dbchat migrate`", have, want)
	}
	return http.StatusOK, gin.H{"status": "ready", "migration": have}, nil
}

// fail writes err in the one error shape and stops the handler chain.
// Internal errors are logged with their cause and shown generically.
func (s *Server) fail(c *gin.Context, err error) {
	e := apperr.As(err)
	s.logFailure(c, e, err)
	if e.Code == apperr.Overloaded {
		c.Header("Retry-After", s.retryAfter())
	}
	c.AbortWithStatusJSON(apperr.HTTPStatus(e.Code), errorBody(e))
}

// logFailure logs a failure that is the service's (5xx), not the caller's.
func (s *Server) logFailure(c *gin.Context, e *apperr.Error, err error) {
	if apperr.HTTPStatus(e.Code) >= 500 {
		s.log.LogAttrs(c.Request.Context(), slog.LevelError, "request failed",
			slog.String("request_id", c.GetString(requestIDKey)), slog.String("route", c.FullPath()),
			slog.String("code", string(e.Code)), slog.Any("error", err))
	}
}

// errorBody is the one JSON error shape: code, message (a generic one for
// internal errors) and details when there are any.
func errorBody(e *apperr.Error) gin.H {
	body := gin.H{"code": e.Code, "message": e.Message}
	if e.Code == apperr.Internal {
		body["message"] = "internal error"
	}
	if len(e.Details) > 0 {
		body["details"] = e.Details
	}
	return gin.H{"error": body}
}

// recoverJSON turns a handler's panic into the one error shape (500) and a
// log line, instead of a dropped connection.
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
