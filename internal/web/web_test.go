package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/web"
)

// apiServer is the whole HTTP handler (API and app) without a database:
// serving the app never touches one.
func apiServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(server.New(tenant.New(nil), slog.New(slog.DiscardHandler), server.Config{}))
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, method, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

// The app is served at / (it routes on the URL's hash), never cached, with
// the CSP; every other unknown route keeps the API's JSON 404.
func TestAppAndAPIRoutes(t *testing.T) {
	srv := apiServer(t)
	for _, p := range []string{"/", "/?from=bookmark"} {
		res, body := get(t, http.MethodGet, srv.URL+p)
		require.Equal(t, http.StatusOK, res.StatusCode, p)
		require.Equal(t, "text/html; charset=utf-8", res.Header.Get("Content-Type"), p)
		require.Equal(t, "no-cache", res.Header.Get("Cache-Control"), p)
		// The server's security headers or, without them, the app's own.
		csp := res.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "object-src 'none'", "frame-ancestors 'none'"} {
			require.Contains(t, csp, d+";", p)
		}
		require.NotContains(t, csp, "unsafe", p)
		require.Contains(t, body, `<script type="module" src="/assets/`, p)
		require.NotContains(t, body, "{{ASSETS}}", p)
	}
	res, _ := get(t, http.MethodHead, srv.URL+"/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	for _, c := range []struct{ method, path string }{
		{http.MethodGet, "/v1/nope"}, {http.MethodGet, "/v1"}, {http.MethodGet, "/chat"}, {http.MethodGet, "/assetsx"},
		{http.MethodPost, "/"}, {http.MethodDelete, "/"}, {http.MethodPost, web.Prefix + "x/app.css"},
	} {
		res, body := get(t, c.method, srv.URL+c.path)
		require.Equal(t, http.StatusNotFound, res.StatusCode, c)
		require.Equal(t, "application/json; charset=utf-8", res.Header.Get("Content-Type"), c)
		require.JSONEq(t, `{"error":{"code":"not_found","message":"no such route"}}`, body, c)
	}
	// The API's own routes are untouched: /v1 without a key is 401 JSON.
	res, _ = get(t, http.MethodGet, srv.URL+"/v1/tables")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
}

// Every file index.html and the modules name is served, as what it is
// (a module served as anything but JavaScript is refused by the browser),
// cached for a year under the current version.
func TestAssets(t *testing.T) {
	srv := apiServer(t)
	base := web.Prefix + web.New().Version()
	_, index := get(t, http.MethodGet, srv.URL+"/")
	refs := regexp.MustCompile(`(?:href|src)="(/assets/[^"]+)"`).FindAllStringSubmatch(index, -1)
	require.NotEmpty(t, refs)
	want := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	for _, r := range refs {
		require.True(t, strings.HasPrefix(r[1], base+"/"), r[1])
		res, _ := get(t, http.MethodGet, srv.URL+r[1])
		require.Equal(t, http.StatusOK, res.StatusCode, r[1])
		require.Equal(t, want[filepath.Ext(r[1])], res.Header.Get("Content-Type"), r[1])
		require.Equal(t, "public, max-age=31536000, immutable", res.Header.Get("Cache-Control"), r[1])
		require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), r[1])
	}
	// Every module and vendored file under static/ is reachable.
	for _, dir := range []string{"js", "vendor"} {
		entries, err := os.ReadDir(filepath.Join("static", dir))
		require.NoError(t, err)
		for _, e := range entries {
			res, _ := get(t, http.MethodGet, srv.URL+base+"/"+dir+"/"+e.Name())
			require.Equal(t, http.StatusOK, res.StatusCode, e.Name())
			require.Equal(t, "text/javascript; charset=utf-8", res.Header.Get("Content-Type"), e.Name())
		}
	}
	// A page loaded before an upgrade still gets today's files, uncached;
	// unknown files and escapes are 404.
	res, _ := get(t, http.MethodGet, srv.URL+web.Prefix+"0123456789ab/app.css")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "no-cache", res.Header.Get("Cache-Control"))
	for _, p := range []string{base + "/nope.js", base + "/index.html", base + "/", base + "/../web.go", base + "/%2e%2e/web.go"} {
		res, _ := get(t, http.MethodGet, srv.URL+p)
		require.Equal(t, http.StatusNotFound, res.StatusCode, p)
	}
}

// Our own code keeps to the CSP and renders values as text: no inline
// script or style in the page, no innerHTML, eval or Function in the
// modules (the vendored chart libraries run with the expression
// interpreter instead; the browser tests prove no violation occurs).
func TestNoUnsafeCode(t *testing.T) {
	index, err := os.ReadFile(filepath.Join("static", "index.html"))
	require.NoError(t, err)
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(string(index), -1) {
		require.Contains(t, tag, " src=", "inline script")
	}
	require.NotContains(t, string(index), "style=")
	require.NotContains(t, string(index), "<style")
	files, err := filepath.Glob(filepath.Join("static", "js", "*.js"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	unsafe := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setAttribute\('style'|\.style\.cssText`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.Empty(t, unsafe.FindAllString(string(b), -1), f)
	}
}

// Text files are sent gzipped to clients that take it, and plain to the
// others; the bytes are the same once unzipped.
func TestGzip(t *testing.T) {
	srv := apiServer(t)
	url := srv.URL + web.Prefix + web.New().Version() + "/vendor/vega.min.js"
	plain, err := os.ReadFile(filepath.Join("static", "vendor", "vega.min.js"))
	require.NoError(t, err)
	for _, accept := range []string{"gzip", "br, gzip;q=0.8", "identity", "gzip;q=0"} {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		require.NoError(t, err)
		req.Header.Set("Accept-Encoding", accept) // set by hand, so the client leaves the body as sent
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, "Accept-Encoding", res.Header.Get("Vary"))
		if accept == "identity" || accept == "gzip;q=0" {
			require.Empty(t, res.Header.Get("Content-Encoding"), accept)
			require.Equal(t, plain, body, accept)
			continue
		}
		require.Equal(t, "gzip", res.Header.Get("Content-Encoding"), accept)
		require.Less(t, len(body), len(plain)/2, accept)
		zr, err := gzip.NewReader(bytes.NewReader(body))
		require.NoError(t, err)
		unzipped, err := io.ReadAll(zr)
		require.NoError(t, err)
		require.Equal(t, plain, unzipped, accept)
	}
}
