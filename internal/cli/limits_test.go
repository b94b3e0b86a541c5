package cli_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/cli"
	"github.com/dbchat/dbchat/internal/dbtest"
)

// serve's HTTP limits come from the environment and cut slow clients:
// headers that never end (DBCHAT_READ_HEADER_TIMEOUT), a keep-alive
// connection left idle (DBCHAT_IDLE_TIMEOUT) and a body that stops
// (DBCHAT_BODY_IDLE_TIMEOUT, 408). Each is an outcome: the server closes the
// connection or answers, long before the client's own one-minute deadline.
func TestServeCutsSlowClients(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdoutR, stdoutW := io.Pipe()
	var stderr syncBuffer
	const token = "limits-test-operator-token"
	env := &cli.Env{Stdout: stdoutW, Stderr: &stderr, Getenv: getenv(map[string]string{
		"DATABASE_URL":               d.AppURL,
		"DBCHAT_ADDR":                "127.0.0.1:0",
		"DBCHAT_ADMIN_TOKEN":         token,
		"DBCHAT_READ_HEADER_TIMEOUT": "1s",
		"DBCHAT_IDLE_TIMEOUT":        "1s",
		"DBCHAT_BODY_IDLE_TIMEOUT":   "1s",
	})}
	done := make(chan int, 1)
	go func() {
		code := cli.Run(ctx, env, []string{"serve"})
		stdoutW.Close()
		done <- code
	}()
	base := waitForLines(t, stdoutR, &stderr, "dbchat: listening on ")[0]
	go func() { _, _ = io.Copy(io.Discard, stdoutR) }()
	addr := strings.TrimPrefix(base, "http://")

	dial := func() (net.Conn, *bufio.Reader) {
		conn, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(time.Minute)))
		return conn, bufio.NewReader(conn)
	}

	// Slowloris: headers that never end. The server closes the connection.
	conn, r := dial()
	_, err := fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: dbchat\r\nX-Slow: ")
	require.NoError(t, err)
	_, err = r.ReadByte()
	require.ErrorIs(t, err, io.EOF, "closed by the server, not by the client's deadline")

	// A keep-alive connection left idle after a request is closed.
	conn, r = dial()
	_, err = fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: dbchat\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = r.ReadByte()
	require.ErrorIs(t, err, io.EOF, "the idle connection was closed by the server")

	// A JSON body that stops mid-way is answered 408 request_timeout.
	conn, r = dial()
	_, err = fmt.Fprintf(conn, "POST /v1/tenants HTTP/1.1\r\nHost: dbchat\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":", token)
	require.NoError(t, err)
	resp, err = http.ReadResponse(r, nil)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusRequestTimeout, resp.StatusCode, string(body))
	require.Contains(t, string(body), `"code":"request_timeout"`)

	cancel()
	require.Equal(t, 0, <-done, "stderr: %s", stderr.String())
}

// A limit that does not parse stops serve with a one-line error naming it.
func TestServeRefusesBadLimits(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	for name, value := range map[string]string{
		"DBCHAT_BODY_IDLE_TIMEOUT":      "soon",
		"DBCHAT_POOL_ACQUIRE_TIMEOUT":   "-1s",
		"DBCHAT_MAX_CONCURRENT_IMPORTS": "0",
		"DBCHAT_MAX_TENANT_IMPORTS":     "many",
		"DBCHAT_SHUTDOWN_TIMEOUT":       "forever",
	} {
		r := run(t, map[string]string{"DATABASE_URL": d.AppURL, "DBCHAT_ADDR": "127.0.0.1:0", name: value}, "serve")
		requireOneLineError(t, r, name)
	}
}
