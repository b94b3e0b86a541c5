package cli

// The dev token minter: `dbchat dev` is also a tiny identity provider for
// the demo tenant, so that signing in with a JWT can be tried locally, and
// `dbchat dev-token` mints its tokens. It is for `make run` only:
//
//   - the signing key (ES256, a private JWK, mode 0600) lives in the dev
//     cluster's directory (.dbchat/dev/dev-idp-key.json, git-ignored) and is
//     created on first use; nothing else ever reads it;
//   - `dbchat dev` serves the public half on a loopback listener only
//     (http://127.0.0.1:<port>/jwks.json, the previous run's port when it
//     is free) and registers it as an identity provider of the demo tenant,
//     replacing the previous run's registration when the port changed;
//   - the issuer is https://dev-token.dbchat.invalid/<demo tenant id>: the
//     .invalid name (RFC 2606) cannot belong to a real identity provider, and
//     `dbchat serve` has no such listener and no such command.
//
// A production deployment registers its own provider
// (POST /v1/identity-providers) and never runs either command.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dbchat/dbchat/internal/identity"
	"github.com/dbchat/dbchat/internal/tenant"
)

const (
	devKeyFile      = "dev-idp-key.json"
	devIdPFile      = "dev-idp.json"
	devAudience     = "dbchat-dev"
	devIssuerPrefix = "https://dev-token.dbchat.invalid/"
)

// devPassClaims are the claims the dev provider passes through to the
// request (app.claims), for claim policies to use.
var devPassClaims = []string{"country", "region", "team"}

// devIdPState is what `dbchat dev` leaves for `dbchat dev-token`.
type devIdPState struct {
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	JWKSURL  string `json:"jwks_url"`
}

// devKey loads the dev signing key from dir, creating it on first use.
func devKey(dir string, create bool) (jose.JSONWebKey, error) {
	file := filepath.Join(dir, devKeyFile)
	if b, err := os.ReadFile(file); err == nil {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(b); err != nil {
			return k, fmt.Errorf("%s: %w", file, err)
		}
		if _, ok := k.Key.(*ecdsa.PrivateKey); !ok {
			return k, fmt.Errorf("%s: not an EC private key", file)
		}
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) || !create {
		return jose.JSONWebKey{}, err
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return jose.JSONWebKey{}, err
	}
	k := jose.JSONWebKey{Key: priv, KeyID: "dev-" + randomID(), Algorithm: string(jose.ES256), Use: "sig"}
	b, err := k.MarshalJSON()
	if err != nil {
		return k, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return k, err
	}
	return k, os.WriteFile(file, b, 0o600)
}

func randomID() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// startDevIdP serves the dev key's JWKS on a loopback port, registers it as
// an identity provider of the demo tenant (as its admin, id) and writes the
// state dev-token reads. stop closes the listener.
func startDevIdP(ctx context.Context, db *tenant.DB, id tenant.Identity, dir string) (st devIdPState, stop func(), err error) {
	key, err := devKey(dir, true)
	if err != nil {
		return st, nil, fmt.Errorf("dev token key: %w", err)
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	if err != nil {
		return st, nil, err
	}
	// The previous run's port if it is free, so the registration (and the
	// users it signed in) stays; another loopback port otherwise.
	var prev devIdPState
	if b, err := os.ReadFile(filepath.Join(dir, devIdPFile)); err == nil {
		_ = json.Unmarshal(b, &prev)
	}
	ln, err := listenLoopback(prev.JWKSURL)
	if err != nil {
		return st, nil, fmt.Errorf("dev token JWKS listener: %w", err)
	}
	base := "http://" + ln.Addr().String()
	st = devIdPState{Issuer: devIssuerPrefix + id.TenantID.String(), Audience: devAudience, JWKSURL: base + "/jwks.json"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	})
	(&devLogin{key: key, st: st, codes: map[string]devCode{}}).routes(mux)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	stop = func() { _ = hs.Close() }

	spec := identity.Spec{Issuer: st.Issuer, Audience: st.Audience, JWKSURL: st.JWKSURL,
		Claims: identity.Claims{User: "sub", Email: "email", Role: "role", AdminValues: []string{"admin"}, Pass: devPassClaims},
		Login:  &identity.Login{AuthorizationEndpoint: base + "/authorize", TokenEndpoint: base + "/token"}}
	if err := spec.Validate(); err != nil {
		stop()
		return st, nil, err
	}
	err = db.TxAs(ctx, id, func(tx tenant.Conn) error {
		ps, err := identity.List(ctx, tx)
		if err != nil {
			return err
		}
		for _, p := range ps {
			if p.Issuer != st.Issuer {
				continue
			}
			if p.JWKSURL == spec.JWKSURL && p.Audience == spec.Audience && slices.Equal(p.Claims.Pass, spec.Claims.Pass) &&
				p.Login != nil && *p.Login == *spec.Login {
				return nil // registered by the previous run on the same port
			}
			// Replaced: its users keep their rows, and sign in as new users.
			if err := identity.Delete(ctx, tx, p.ID); err != nil {
				return err
			}
		}
		_, err = identity.Create(ctx, tx, spec)
		return err
	})
	if err == nil {
		var b []byte
		b, err = json.Marshal(st)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, devIdPFile), b, 0o600)
		}
	}
	if err != nil {
		stop()
		return st, nil, fmt.Errorf("dev token provider: %w", err)
	}
	return st, stop, nil
}

// listenLoopback listens on prevURL's 127.0.0.1 port if it is free, else on
// a random loopback port; never on another interface.
func listenLoopback(prevURL string) (net.Listener, error) {
	if u, err := url.Parse(prevURL); err == nil && u.Hostname() == "127.0.0.1" && u.Port() != "" {
		if ln, err := net.Listen("tcp", "127.0.0.1:"+u.Port()); err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// claimFlags collects repeated --claim name=value flags. A value that is a
// JSON array ([\"a\",\"b\"]) becomes an array claim, anything else a string.
type claimFlags map[string]any

func (c claimFlags) String() string { return "" }
func (c claimFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return errors.New("want name=value")
	}
	var arr []any
	if strings.HasPrefix(value, "[") && json.Unmarshal([]byte(value), &arr) == nil {
		c[name] = arr
	} else {
		c[name] = value
	}
	return nil
}

// cmdDevToken mints a token of the dev provider that a running `dbchat dev`
// (same --dir) accepts for its demo tenant.
func cmdDevToken(_ context.Context, env *Env, args []string) error {
	fs := newFlags("dev-token", env)
	dir := fs.String("dir", ".dbchat/dev", "the dev cluster directory of the running `dbchat dev`")
	sub := fs.String("sub", "", "the end user's subject (required)")
	role := fs.String("role", "member", "member or admin")
	email := fs.String("email", "", "the email claim (default: <sub>@dev.invalid)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime of the token")
	claims := claimFlags{}
	fs.Var(claims, "claim", "a claim name=value, repeatable (a JSON array value is an array claim)")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 || *sub == "" || (*role != "member" && *role != "admin") || *ttl <= 0 {
		return errUsage
	}
	var st devIdPState
	b, err := os.ReadFile(filepath.Join(*dir, devIdPFile))
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		return fmt.Errorf("no dev identity provider in %s (start `make run` / `dbchat dev --dir %s` first): %w", *dir, *dir, err)
	}
	key, err := devKey(*dir, false)
	if err != nil {
		return fmt.Errorf("dev token key: %w", err)
	}
	tok, err := mintDevToken(key, st, *sub, *role, *email, claims, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, tok)
	return nil
}

func mintDevToken(key jose.JSONWebKey, st devIdPState, sub, role, email string, extra map[string]any, ttl time.Duration, now time.Time) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key.Key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", key.KeyID))
	if err != nil {
		return "", err
	}
	if email == "" {
		email = sub + "@dev.invalid"
	}
	c := map[string]any{}
	for k, v := range extra {
		c[k] = v
	}
	for k, v := range map[string]any{"iss": st.Issuer, "aud": st.Audience, "sub": sub, "email": email, "role": role,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix()} {
		c[k] = v
	}
	return jwt.Signed(signer).Claims(c).Serialize()
}
