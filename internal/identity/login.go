package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/tenant"
)

// LoginTTL bounds a browser sign-in from its start to its callback.
const LoginTTL = 10 * time.Minute

// Pending is a started browser sign-in (OpenID Connect authorization code
// flow with PKCE, RFC 7636): what the callback needs to finish it. The
// server keeps it in an HttpOnly cookie of the browser that started it, so
// it holds across server instances and binds the callback to that browser;
// its holder can only finish its own sign-in, so nothing in it is secret
// from that browser.
type Pending struct {
	Issuer   string    `json:"iss"`
	TenantID uuid.UUID `json:"tid"`
	State    string    `json:"state"`
	Verifier string    `json:"verifier"`
	Nonce    string    `json:"nonce"`
	Expires  time.Time `json:"exp"`
}

// StartLogin begins a browser sign-in at issuer's provider: the URL to
// send the browser to (code flow, S256 challenge, state and nonce) and what
// FinishLogin needs. A provider without login endpoints is a 400.
func (v *Verifier) StartLogin(ctx context.Context, issuer, redirectURI string) (string, Pending, error) {
	p, _, err := v.provider(ctx, issuer, false)
	if err != nil {
		return "", Pending{}, err
	}
	if p.AuthorizationEndpoint == "" {
		return "", Pending{}, apperr.Field("issuer", "this identity provider has no browser sign-in (register it with login endpoints)")
	}
	pend := Pending{Issuer: issuer, TenantID: p.TenantID, State: random(), Verifier: random(), Nonce: random(),
		Expires: v.opt.Now().Add(LoginTTL)}
	challenge := sha256.Sum256([]byte(pend.Verifier))
	q := url.Values{"response_type": {"code"}, "client_id": {p.Audience}, "redirect_uri": {redirectURI},
		"scope": {"openid email profile"}, "state": {pend.State}, "nonce": {pend.Nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(challenge[:])}, "code_challenge_method": {"S256"}}
	sep := "?"
	if strings.Contains(p.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	return p.AuthorizationEndpoint + sep + q.Encode(), pend, nil
}

// FinishLogin completes pend with the callback's state and code: the state
// must be pend's, the code is traded at the provider's token endpoint with
// the PKCE verifier, and the ID token must pass the same checks as a bearer
// JWT, carry pend's nonce and sign in to pend's tenant. The identity is the
// token's user, provisioned on first sight as for a bearer token, with the
// provider's id.
func (v *Verifier) FinishLogin(ctx context.Context, pend Pending, state, code, redirectURI string) (tenant.Identity, uuid.UUID, error) {
	switch {
	case v.opt.Now().After(pend.Expires):
		return tenant.Identity{}, uuid.Nil, refuse(ReasonExpired, "the sign-in took too long; start again")
	case state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(pend.State)) != 1:
		return tenant.Identity{}, uuid.Nil, apperr.Field("state", "does not match the sign-in this browser started")
	case code == "":
		return tenant.Identity{}, uuid.Nil, apperr.Field("code", "missing")
	}
	p, _, err := v.provider(ctx, pend.Issuer, true)
	if err != nil {
		return tenant.Identity{}, uuid.Nil, err
	}
	raw, err := v.redeem(ctx, p.TokenEndpoint, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirectURI}, "client_id": {p.Audience}, "code_verifier": {pend.Verifier}})
	if err != nil {
		return tenant.Identity{}, uuid.Nil, err
	}
	id, err := v.Authenticate(ctx, raw)
	if err != nil {
		return tenant.Identity{}, uuid.Nil, err
	}
	if _, claims, err := peek(raw); err != nil || claims["nonce"] != pend.Nonce || id.TenantID != pend.TenantID {
		return tenant.Identity{}, uuid.Nil, refuse(ReasonSignature, "the ID token is not the answer to this sign-in")
	}
	return id, p.ID, nil
}

// redeem trades a code at endpoint for the response's id_token.
func (v *Verifier) redeem(ctx context.Context, endpoint string, form url.Values) (string, error) {
	if err := CheckJWKSURL(endpoint); err != nil || endpoint == "" {
		return "", apperr.Errorf(apperr.Unavailable, "the identity provider's token endpoint is not usable")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := v.opt.Client.Do(req)
	if err != nil {
		return "", apperr.Wrap(apperr.Unavailable, err, "the identity provider's token endpoint did not answer")
	}
	defer resp.Body.Close()
	var body struct {
		IDToken string `json:"id_token"`
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, maxFetchBytes)).Decode(&body)
	if resp.StatusCode != http.StatusOK || err != nil || body.IDToken == "" {
		return "", refuse(ReasonSignature, fmt.Sprintf("the identity provider refused the code (status %d)", resp.StatusCode))
	}
	return body.IDToken, nil
}

// random is 32 bytes from crypto/rand, base64url: a state, nonce or PKCE
// verifier (43 characters, within RFC 7636's 43..128).
func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand panics on a broken source)
	return base64.RawURLEncoding.EncodeToString(b)
}
