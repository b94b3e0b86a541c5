package cli

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// devLogin is the dev identity provider's browser sign-in (`dbchat dev`
// only, on a loopback port): an authorization endpoint that signs the
// browser in at once, as login_hint or "alice" (a member in the US; the
// hint "admin" is a tenant admin), and a token endpoint that trades the
// code, with the PKCE verifier, for an ID token signed by the dev key. It
// exists so that the web app's "sign in with your identity provider" runs
// without a real provider; there is no password because there is nobody
// to protect on a developer's loopback.
type devLogin struct {
	key jose.JSONWebKey
	st  devIdPState

	mu    sync.Mutex
	codes map[string]devCode
}

// devCode is an authorization request waiting for its token request.
type devCode struct {
	q       url.Values
	subject string
	at      time.Time
}

func (d *devLogin) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /authorize", d.authorize)
	mux.HandleFunc("POST /token", d.token)
}

// authorize answers the authorization request with a code, at once.
func (d *devLogin) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	back, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" || back.Host == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	subject := q.Get("login_hint")
	if subject == "" {
		subject = "alice"
	}
	code := randomID() + randomID()
	d.mu.Lock()
	d.codes[code] = devCode{q: q, subject: subject, at: time.Now()}
	d.mu.Unlock()
	back.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// token trades a code (once, within a minute) for an ID token, checking
// the PKCE verifier, client and redirect URI against its request.
func (d *devLogin) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	d.mu.Lock()
	c, ok := d.codes[r.PostForm.Get("code")]
	delete(d.codes, r.PostForm.Get("code"))
	d.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	if !ok || time.Since(c.at) > time.Minute || base64.RawURLEncoding.EncodeToString(sum[:]) != c.q.Get("code_challenge") ||
		r.PostForm.Get("client_id") != c.q.Get("client_id") || r.PostForm.Get("redirect_uri") != c.q.Get("redirect_uri") {
		http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
		return
	}
	role, extra := "member", map[string]any{"nonce": c.q.Get("nonce"), "country": "US"}
	if c.subject == "admin" {
		role = "admin"
	}
	tok, err := mintDevToken(d.key, d.st, c.subject, role, "", extra, time.Hour, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"id_token": tok, "token_type": "Bearer", "access_token": randomID()})
}
