package probe

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dbchat/dbchat/internal/audit"
)

// probeIdP is a probe tenant's identity provider (registered in seed with an
// inline key set) and the private key only the probe holds.
type probeIdP struct {
	issuer, audience, kid string
	key                   ed25519.PrivateKey
	jwks                  []byte
}

// claims are a valid token's claims for this provider; extra overrides.
func (i probeIdP) claims(sub string, extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": i.issuer, "aud": i.audience, "sub": sub, "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	maps.Copy(c, extra)
	return c
}

// sign signs claims with key (EdDSA, go-jose) under the given kid and extra
// header fields.
func sign(key ed25519.PrivateKey, kid string, claims map[string]any, opts *jose.SignerOptions) (string, error) {
	if opts == nil {
		opts = &jose.SignerOptions{}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, opts.WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}

// handMade builds a compact JWS from a header and claims with the given
// signature function: the forgeries no JOSE library will produce.
func handMade(header, claims map[string]any, sig func(signingInput []byte) []byte) (string, error) {
	h, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	return in + "." + enc.EncodeToString(sig([]byte(in))), nil
}

func hs256(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

// forgery is one token the API must refuse with 401.
type forgery struct {
	what  string // how it was made, without its values
	token func() (string, error)
}

// forgerSubject is the subject of every forged token: after them, no user
// with it may exist in either tenant.
const forgerSubject = "probe-forger"

// attackTokens signs in with forged tokens (each must be 401, nothing
// provisioned), then, as end users of the actor's own provider, tries to
// widen their claims through /v1/sql (each refused; the claim policy on the
// data table holds before and after).
func (h *httpProbe) attackTokens(ctx context.Context, p *prober, actor, victim *probeTenant) error {
	const channel = "token"
	own, other := actor.idp, victim.idp
	// What an attacker would want: the other tenant's admin, or its tenant.
	asVictimAdmin := map[string]any{"role": victim.marker, victim.marker: victim.marker}
	pub := other.key.Public().(ed25519.PublicKey)
	forgeries := []forgery{
		{"alg none, the other tenant's issuer and admin role", func() (string, error) {
			return handMade(map[string]any{"alg": "none", "typ": "JWT", "kid": other.kid}, other.claims(forgerSubject, asVictimAdmin),
				func([]byte) []byte { return nil })
		}},
		{"HS256 keyed with the other tenant's public key (raw bytes)", func() (string, error) {
			return handMade(map[string]any{"alg": "HS256", "typ": "JWT", "kid": other.kid}, other.claims(forgerSubject, asVictimAdmin), hs256(pub))
		}},
		{"HS256 keyed with the other tenant's JWK set", func() (string, error) {
			return handMade(map[string]any{"alg": "HS256", "typ": "JWT", "kid": other.kid}, other.claims(forgerSubject, asVictimAdmin), hs256(other.jwks))
		}},
		{"the other tenant's issuer, audience and kid, signed with its own provider's key", func() (string, error) {
			return sign(own.key, other.kid, other.claims(forgerSubject, asVictimAdmin), nil)
		}},
		{"the other tenant's issuer, its own key embedded as a jwk header", func() (string, error) {
			return sign(own.key, other.kid, other.claims(forgerSubject, asVictimAdmin), &jose.SignerOptions{EmbedJWK: true})
		}},
		{"the other tenant's issuer, a jku header to keys it controls", func() (string, error) {
			return sign(own.key, other.kid, other.claims(forgerSubject, asVictimAdmin),
				(&jose.SignerOptions{}).WithHeader("jku", "https://attacker.probe.invalid/jwks.json"))
		}},
		{"its own provider, a claim naming the other tenant (tenant_id)", func() (string, error) {
			return sign(own.key, own.kid, own.claims(forgerSubject, map[string]any{"tenant_id": victim.id.String()}), nil)
		}},
		{"its own provider, a claim naming the other tenant (dbchat_tenant)", func() (string, error) {
			return sign(own.key, own.kid, own.claims(forgerSubject, map[string]any{"dbchat_tenant": victim.id.String()}), nil)
		}},
		{"its own provider, the other tenant's audience", func() (string, error) {
			return sign(own.key, own.kid, own.claims(forgerSubject, map[string]any{"aud": other.audience}), nil)
		}},
		{"its own provider, expired an hour ago", func() (string, error) {
			past := time.Now().Add(-time.Hour)
			return sign(own.key, own.kid, own.claims(forgerSubject, map[string]any{"iat": past.Add(-time.Hour).Unix(), "exp": past.Unix()}), nil)
		}},
		{"its own provider, not valid for another hour", func() (string, error) {
			return sign(own.key, own.kid, own.claims(forgerSubject, map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}), nil)
		}},
		{"its own provider, no exp", func() (string, error) {
			c := own.claims(forgerSubject, nil)
			delete(c, "exp")
			return sign(own.key, own.kid, c, nil)
		}},
	}
	for _, f := range forgeries {
		if err := ctx.Err(); err != nil {
			return err
		}
		tok, err := f.token()
		if err != nil {
			return fmt.Errorf("probe: forge a token (%s): %w", f.what, err)
		}
		r, err := h.do(ctx, tok, http.MethodGet, "/v1/tables", "", "")
		a := audit.Attempt{Channel: channel, Actor: actor.label, Victim: victim.label, Action: "sign in",
			Target: "GET /v1/tables with a forged token", Statement: "GET /v1/tables, Bearer token: " + f.what,
			Expected: "401 Unauthorized", Cells: []string{audit.CellViewOther}}
		a.Outcome = statusOutcome(r, err) + reasonOf(r)
		a.Passed = err == nil && r.status == http.StatusUnauthorized && !strings.Contains(r.body, victim.marker)
		scrub(&a, victim)
		if strings.Contains(r.body, victim.marker) {
			a.Passed, a.Outcome = false, "MARKER LEAKED: "+a.Outcome
		}
		p.add(a)
	}
	var forged int
	err := p.admin.QueryRow(ctx, `SELECT count(*) FROM dbchat.users WHERE subject = $1 AND tenant_id = ANY($2)`,
		forgerSubject, []string{actor.id.String(), victim.id.String()}).Scan(&forged)
	a := audit.Attempt{Channel: channel, Actor: actor.label, Victim: victim.label, Action: "sign in",
		Target: "users provisioned by refused tokens", Statement: "SELECT count(*) FROM dbchat.users WHERE subject = '" + forgerSubject + "'",
		Expected: "0", Cells: []string{audit.CellViewOther}}
	a.Outcome = fmt.Sprint(forged)
	if err != nil {
		a.Outcome = "query failed: " + err.Error()
	}
	a.Passed = err == nil && forged == 0
	p.add(a)

	return h.escalateClaims(ctx, p, actor, victim)
}

// escalateClaims: the actor's data table has a claim policy (column v equals
// the claim named by its marker; admins bypass it). An end user whose claim
// matches sees the marked row (control); one whose claim does not must not,
// whatever it sends to /v1/sql, before and after.
func (h *httpProbe) escalateClaims(ctx context.Context, p *prober, actor, victim *probeTenant) error {
	const channel = "token"
	own := actor.idp
	sub := "probe-enduser-" + strings.ToLower(actor.label)
	match, err := sign(own.key, own.kid, own.claims(sub+"-match", map[string]any{actor.marker: actor.marker}), nil)
	if err != nil {
		return err
	}
	nomatch, err := sign(own.key, own.kid, own.claims(sub, map[string]any{actor.marker: "probe-other-value"}), nil)
	if err != nil {
		return err
	}
	read := fmt.Sprintf(`{"sql":%q}`, "SELECT v FROM "+DataTable)
	sqlAttempt := func(token, body, action, expected string, control bool, cells []string, ok func(response) bool) {
		r, err := h.do(ctx, token, http.MethodPost, "/v1/sql", "", body)
		a := audit.Attempt{Channel: channel, Actor: actor.label, Victim: actor.label, Action: action, Control: control,
			Target: "POST /v1/sql as an end user (JWT)", Statement: "POST /v1/sql " + body, Expected: expected, Cells: cells}
		a.Outcome = statusOutcome(r, err) + reasonOf(r)
		a.Passed = err == nil && ok(r) && !strings.Contains(r.body, victim.marker)
		if err == nil && hasRow(r, actor.marker) && !control {
			a.Outcome += "; the row beyond its claims was returned"
		}
		scrub(&a, victim)
		p.add(a)
	}
	sees := func(r response) bool { return r.status == http.StatusOK && hasRow(r, actor.marker) }
	seesNot := func(r response) bool { return r.status == http.StatusOK && !hasRow(r, actor.marker) }
	refused := func(r response) bool { return r.status >= 400 && r.status < 500 && !hasRow(r, actor.marker) }

	sqlAttempt(match, read, "control", "200 with the row its claim matches", true, []string{audit.CellExecSame}, sees)
	sqlAttempt(nomatch, read, "read beyond claims", "200 without the row (claim policy)", false, []string{audit.CellExecOther}, seesNot)
	widened := fmt.Sprintf(`{"%s":"%s"}`, actor.marker, actor.marker)
	for _, stmt := range []string{
		"SET app.claims = '" + widened + "'",
		"SELECT set_config('app.claims', '" + widened + "', false)",
		"SELECT set_config('app.claims', '" + widened + "', true), v FROM " + DataTable,
		"SELECT v FROM " + DataTable + " WHERE set_config('app.claims', '" + widened + "', true) IS NOT NULL",
		"RESET app.claims",
		"SET ROLE dbchat_app",
		"BEGIN; SET LOCAL app.claims = '" + widened + "'; SELECT v FROM " + DataTable + "; COMMIT",
	} {
		sqlAttempt(nomatch, fmt.Sprintf(`{"sql":%q}`, stmt), "widen claims", "4xx, not the row", false, []string{audit.CellExecOther}, refused)
	}
	// A session-level setting would outlive its request on a pooled
	// connection: read again, more times than the sandbox has connections.
	for range 3 {
		sqlAttempt(nomatch, read, "read beyond claims", "200 without the row (nothing persisted)", false, []string{audit.CellExecOther}, seesNot)
	}
	return nil
}

// hasRow says whether a /v1/sql result has a row whose first value is v
// (the marked row; the marker is also a claim name, which the answer's
// security receipt lists, so a substring test would not do).
func hasRow(r response, v string) bool {
	var res struct {
		Rows [][]json.RawMessage `json:"rows"`
	}
	if json.Unmarshal([]byte(r.body), &res) != nil {
		return strings.Contains(r.body, v) // not a result: any trace of it counts
	}
	for _, row := range res.Rows {
		var s string
		if len(row) > 0 && json.Unmarshal(row[0], &s) == nil && s == v {
			return true
		}
	}
	return false
}

// reasonOf appends the refusal's details.reason (or else its code), if any.
func reasonOf(r response) string {
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Details struct {
				Reason string `json:"reason"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(r.body), &e) == nil && e.Error.Details.Reason != "" {
		return " (" + e.Error.Details.Reason + ")"
	}
	if e.Error.Code != "" {
		return " (" + e.Error.Code + ")"
	}
	return ""
}
