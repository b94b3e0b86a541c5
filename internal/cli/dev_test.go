package cli

import (
	"bytes"
	"strings"
	"testing"

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
