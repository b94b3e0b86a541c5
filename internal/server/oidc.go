package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/identity"
)

// Browser sign-in through a tenant's identity provider: OpenID Connect's
// authorization code flow with PKCE (identity.StartLogin, FinishLogin).
// The started sign-in waits in the oidcCookie of the browser that started
// it: HttpOnly, limited to these two paths, and SameSite=Lax, because the
// callback is a top-level navigation back from the provider's site, which
// a Strict cookie would not come with. The session it ends in is the usual
// Strict one.
const oidcCookie = "dbchat_oidc"

// oidcRoutes: start (redirect to the provider) and the provider's callback.
func (s *Server) oidcRoutes() {
	g := s.engine.Group("/v1/sessions/oidc")
	g.GET("", s.handle(s.startOIDC))
	g.GET("/callback", s.handle(s.finishOIDC))
}

// startOIDC sends the browser to the sign-in of the provider of ?issuer=.
func (s *Server) startOIDC(c *gin.Context) (int, any, error) {
	issuer := c.Query("issuer")
	if issuer == "" {
		return 0, nil, apperr.Field("issuer", "is required")
	}
	to, pend, err := s.idp.StartLogin(c.Request.Context(), issuer, s.callbackURL(c))
	if err != nil {
		return 0, nil, err
	}
	b, err := json.Marshal(pend)
	if err != nil {
		return 0, nil, err
	}
	s.setOIDCCookie(c, base64.RawURLEncoding.EncodeToString(b), int(identity.LoginTTL.Seconds()))
	c.Redirect(http.StatusFound, to)
	return 0, nil, nil
}

// finishOIDC is the provider's callback: the code becomes a verified ID
// token, the token's user a session, and the browser goes to the chat.
func (s *Server) finishOIDC(c *gin.Context) (int, any, error) {
	pend, err := pendingLogin(c)
	s.setOIDCCookie(c, "", -1) // one callback per started sign-in
	if err != nil {
		return 0, nil, err
	}
	if e := c.Query("error"); e != "" {
		return 0, nil, apperr.Errorf(apperr.Unauthorized, "the identity provider ended the sign-in: %s", e)
	}
	ctx := c.Request.Context()
	id, provider, err := s.idp.FinishLogin(ctx, pend, c.Query("state"), c.Query("code"), s.callbackURL(c))
	if err != nil {
		return 0, nil, err
	}
	created, err := s.session.Start(ctx, id, c.GetHeader("User-Agent"), &provider)
	if err != nil {
		return 0, nil, err
	}
	s.setSessionCookie(c, created.Token, 0)
	c.Redirect(http.StatusSeeOther, "/#/chat")
	return 0, nil, nil
}

// pendingLogin reads the started sign-in from its cookie.
func pendingLogin(c *gin.Context) (identity.Pending, error) {
	var pend identity.Pending
	raw, err := c.Cookie(oidcCookie)
	if err == nil {
		var b []byte
		if b, err = base64.RawURLEncoding.DecodeString(raw); err == nil {
			err = json.Unmarshal(b, &pend)
		}
	}
	if err != nil {
		return pend, apperr.Field("state", "no sign-in was started in this browser (or it was finished)")
	}
	return pend, nil
}

func (s *Server) setOIDCCookie(c *gin.Context, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{Name: oidcCookie, Value: value, Path: "/v1/sessions/oidc", MaxAge: maxAge,
		HttpOnly: true, Secure: s.overTLS(c), SameSite: http.SameSiteLaxMode})
}

// callbackURL is where the provider sends the browser back: this server's
// callback, at the host the browser used (the provider checks it against
// the client's registered redirect URIs).
func (s *Server) callbackURL(c *gin.Context) string {
	scheme := "http"
	if s.overTLS(c) {
		scheme = "https"
	}
	return scheme + "://" + c.Request.Host + "/v1/sessions/oidc/callback"
}
