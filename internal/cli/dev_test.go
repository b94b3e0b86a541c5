package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// make run's banner shows the web app's address beside the curl line, both
// on the server's real address.
func TestPrintTryShowsTheWebApp(t *testing.T) {
	var out bytes.Buffer
	printTry(&out, "http://localhost:8080", "dbc_key")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Equal(t, []string{
		"demo tenant API key: dbc_key",
		"web app: http://localhost:8080/ (sign in with the key)",
		"try:",
		"  curl -s -H 'Authorization: Bearer dbc_key' http://localhost:8080/v1/tables",
	}, lines)
}

// The web app's session lifetimes and the proxy's https claim come from the
// environment; a bad value stops the server at start.
func TestServerConfigSessions(t *testing.T) {
	env := func(vars map[string]string) *Env {
		return &Env{Getenv: func(k string) string { return vars[k] }}
	}
	cfg, _, err := serverConfig(env(nil))
	require.NoError(t, err)
	require.Zero(t, cfg.Sessions.Idle, "zero: session's defaults")
	require.False(t, cfg.TrustForwardedProto, "a client's X-Forwarded-Proto is not believed by default")

	cfg, _, err = serverConfig(env(map[string]string{
		"DBCHAT_SESSION_IDLE_TIMEOUT": "30m", "DBCHAT_SESSION_MAX_AGE": "24h", "DBCHAT_TRUST_FORWARDED_PROTO": "true"}))
	require.NoError(t, err)
	require.Equal(t, 30*time.Minute, cfg.Sessions.Idle)
	require.Equal(t, 24*time.Hour, cfg.Sessions.MaxAge)
	require.True(t, cfg.TrustForwardedProto)

	for k, v := range map[string]string{"DBCHAT_SESSION_IDLE_TIMEOUT": "soon", "DBCHAT_TRUST_FORWARDED_PROTO": "yes"} {
		_, _, err = serverConfig(env(map[string]string{k: v}))
		require.ErrorContains(t, err, k)
	}
}
