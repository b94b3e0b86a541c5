package server

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/limits"
	"github.com/dbchat/dbchat/internal/session"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/web"
)

// Browser sessions (the web app) and the headers that protect browsers.
//
// The web app signs in by exchanging an API key for a session cookie
// (HttpOnly, so page script never reads it; SameSite=Strict, so another
// site's page never sends it; Secure over TLS). Every /v1 route accepts the
// cookie where it accepts a bearer credential, and a bearer header wins
// when both come. A state-changing request authenticated by the cookie must
// also carry the session's CSRF token in X-CSRF-Token: SameSite is the
// first defence, the token the second (older browsers, same-site subdomains).

// sessionKey is where a cookie-authenticated request keeps its session.
const sessionKey = "dbchat.session"

// signInRequest is POST /v1/sessions' body.
type signInRequest struct {
	APIKey string `json:"api_key"`
}

// sessionRoutes: sign in (no credential but the key in the body), and the
// current session by its cookie alone.
func (s *Server) sessionRoutes() {
	h := s.handle
	g := s.engine.Group("/v1/sessions")
	g.POST("", h(s.createSession))
	cur := g.Group("/current", s.guard(s.cookieOnly))
	cur.GET("", h(s.currentSession))
	cur.DELETE("", h(s.deleteSession))
}

// createSession exchanges an API key for a session; the token travels in
// the cookie only.
func (s *Server) createSession(c *gin.Context) (int, any, error) {
	var req signInRequest
	if err := s.bindJSON(c, &req); err != nil {
		return 0, nil, err
	}
	if req.APIKey == "" {
		return 0, nil, apperr.Field("api_key", "is required")
	}
	created, err := s.session.SignIn(c.Request.Context(), req.APIKey, c.GetHeader("User-Agent"))
	if err != nil {
		return 0, nil, err
	}
	s.setSessionCookie(c, created.Token, 0)
	return http.StatusCreated, created.View, nil
}

// currentSession answers the cookie's session, so a reloaded page recovers
// its CSRF token.
func (s *Server) currentSession(c *gin.Context) (int, any, error) {
	v, err := s.session.Describe(c.Request.Context(), cookieSession(c))
	return reply(http.StatusOK, v, err)
}

// deleteSession signs out: the session is revoked in the database (the
// cookie stops working even if a copy survives) and the cookie cleared.
func (s *Server) deleteSession(c *gin.Context) (int, any, error) {
	if err := s.session.Revoke(c.Request.Context(), cookieSession(c)); err != nil {
		return 0, nil, err
	}
	s.setSessionCookie(c, "", -1)
	return http.StatusNoContent, nil, nil
}

// cookieOnly authenticates /v1/sessions/current by the cookie alone: a
// bearer key has no session to show or end.
func (s *Server) cookieOnly(c *gin.Context) error {
	token, err := c.Cookie(session.CookieName)
	if err != nil || token == "" {
		return apperr.Errorf(apperr.Unauthorized, "missing or invalid session")
	}
	err = s.cookieAuth(c, token)
	if errors.Is(err, auth.ErrChanged) { // forgotten now: looked up afresh
		err = s.cookieAuth(c, token)
	}
	return err
}

// cookieAuth resolves the session cookie to the identity the key it came
// from would have, and checks the CSRF token on state-changing methods. A
// dead session's cookie is cleared, so the browser stops sending it.
func (s *Server) cookieAuth(c *gin.Context, token string) error {
	deferred := &limits.Rate{}
	var tokens auth.TokensFor
	if s.cfg.Limits != nil {
		tokens = s.cfg.Limits.Tokens(deferred)
	}
	sess, err := s.session.AuthenticateWith(c.Request.Context(), token, tokens)
	if apperr.CodeOf(err) == apperr.Unauthorized {
		s.setSessionCookie(c, "", -1)
	}
	if err != nil {
		return err
	}
	if changesState(c.Request.Method) && !sess.CheckCSRF(c.GetHeader(session.CSRFHeader)) {
		return apperr.Errorf(apperr.CSRFFailed, "%s header missing or wrong for this session (it is in the sign-in answer and GET /v1/sessions/current)", session.CSRFHeader)
	}
	c.Set(sessionKey, sess)
	c.Request = c.Request.WithContext(tenant.NewContext(c.Request.Context(), sess.Identity))
	err = s.confirmLater(c, sess.Identity, deferred)
	if apperr.CodeOf(err) == apperr.Unauthorized && !errors.Is(err, auth.ErrChanged) {
		s.setSessionCookie(c, "", -1)
	}
	return err
}

// changesState: every method but the safe ones needs the CSRF token.
func changesState(method string) bool {
	return method != http.MethodGet && method != http.MethodHead && method != http.MethodOptions
}

// cookieSession is the session cookieAuth resolved.
func cookieSession(c *gin.Context) session.Session {
	v, _ := c.Get(sessionKey)
	sess, _ := v.(session.Session)
	return sess
}

// setSessionCookie sets (maxAge 0: a browser-session cookie, gone when the
// browser closes) or clears (maxAge < 0) the session cookie.
func (s *Server) setSessionCookie(c *gin.Context, token string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: session.CookieName, Value: token, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.overTLS(c), SameSite: http.SameSiteStrictMode,
	})
}

// overTLS reports whether the browser reached us over TLS: the connection
// itself, or X-Forwarded-Proto: https only when the operator says a
// TLS-terminating proxy sets it (Config.TrustForwardedProto); otherwise any
// client could claim it.
func (s *Server) overTLS(c *gin.Context) bool {
	return c.Request.TLS != nil || (s.cfg.TrustForwardedProto && c.GetHeader("X-Forwarded-Proto") == "https")
}

// contentSecurityPolicy is the web app's policy (internal/web, written for
// it), on every response: only the app's own scripts, styles, fonts and
// API (no inline script, no eval); images also as data: and blob: URLs
// (charts); no plugins, no framing, no <base>, forms post only here.
const contentSecurityPolicy = web.ContentSecurityPolicy

// securityHeaders sets the browser protections on every response, errors
// and probes included, before anything else can answer.
func (s *Server) securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
	if s.overTLS(c) {
		// Only over TLS: over plain HTTP a browser ignores it anyway, and a
		// proxy's claim is trusted only when configured.
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	c.Next()
}
