// Package web is dbchat's browser app: a single page of plain ES modules,
// CSS and vendored chart libraries, embedded in the binary so `dbchat serve`
// needs nothing beside it and the browser loads nothing from the internet.
//
// Every asset is served under /assets/<version>/, where version is a hash
// of all embedded files: a new binary changes every asset URL, so assets
// can be cached for a year (immutable) while index.html, which names the
// version, is never cached. The app routes on the URL's hash (#/chat,
// #/data, ...), so it needs no path but / and /assets/: the server mounts
// it there and keeps its JSON 404 for every other unknown path.
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
)

//go:embed static
var files embed.FS

// Prefix is the path under which assets are served, followed by the version.
const Prefix = "/assets/"

// ContentSecurityPolicy is the policy the app is written for: no inline
// script or style, no eval (charts use vega's expression interpreter), and
// nothing fetched from another origin. The server's security headers set
// it on every response; Handler sets it too when nothing has yet, so the
// app is never served without it.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// Handler serves the app: the embedded files under Prefix+Version(), and
// index.html for any other path it is given (the server gives it /).
type Handler struct {
	static  fs.FS
	version string
	index   []byte
	gzipped sync.Map // file name → gzipped bytes, made on first request
}

// New returns the app's handler over the embedded files.
func New() *Handler {
	static, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the embed directive guarantees static exists
	}
	h := &Handler{static: static, version: version(static)}
	raw, err := fs.ReadFile(static, "index.html")
	if err != nil {
		panic(err)
	}
	h.index = bytes.ReplaceAll(raw, []byte("{{ASSETS}}"), []byte(Prefix+h.version))
	return h
}

// Version is the hash of the embedded files that asset URLs carry.
func (h *Handler) Version() string { return h.version }

// version hashes every embedded file's path and content, in fs.WalkDir's
// lexical order, so it changes whenever any asset does.
func version(static fs.FS) string {
	sum := sha256.New()
	_ = fs.WalkDir(static, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(static, p)
		sum.Write([]byte(p + "\x00"))
		sum.Write(b)
		return err
	})
	return hex.EncodeToString(sum.Sum(nil))[:12]
}

// ServeHTTP answers GET and HEAD: an asset under Prefix, else index.html.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	securityHeaders(w.Header())
	rest, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		h.serveIndex(w, r)
		return
	}
	h.serveAsset(w, r, rest)
}

// serveIndex writes index.html; it is never cached, because it names the
// assets' version.
func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	h.write(w, r, "index.html", h.index)
}

// serveAsset writes one embedded file given "<version>/<path>". The current
// version's files are immutable for a year; a stale version (a page loaded
// before an upgrade) still gets today's file, uncached.
func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request, rest string) {
	ver, name, _ := strings.Cut(rest, "/")
	name = path.Clean("/" + name)[1:]
	b, err := fs.ReadFile(h.static, name)
	if name == "" || name == "index.html" || err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", contentType(name))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if ver == h.version {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	h.write(w, r, name, b)
}

// write answers 200 with b, gzipped when the client takes it and the file
// is text (the chart libraries shrink from 830 to 240 KB).
func (h *Handler) write(w http.ResponseWriter, r *http.Request, name string, b []byte) {
	w.Header().Set("Vary", "Accept-Encoding")
	if compressible(name) && acceptsGzip(r) {
		b = h.gzip(name, b)
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
}

// gzip compresses a file once and keeps the result: the files never change
// while the binary runs, and most servers never serve the app at all.
func (h *Handler) gzip(name string, b []byte) []byte {
	if z, ok := h.gzipped.Load(name); ok {
		return z.([]byte)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(b)
	_ = zw.Close()
	z, _ := h.gzipped.LoadOrStore(name, buf.Bytes())
	return z.([]byte)
}

func compressible(name string) bool {
	switch path.Ext(name) {
	case ".html", ".js", ".css", ".svg", ".json":
		return true
	}
	return false
}

func acceptsGzip(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// contentType is the file's media type by extension; JavaScript modules
// must be served as JavaScript or the browser refuses them.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".json", ".webmanifest":
		return "application/json"
	}
	if t := mime.TypeByExtension(path.Ext(name)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// securityHeaders sets the app's policy and the usual companions unless the
// server's middleware already did.
func securityHeaders(h http.Header) {
	for k, v := range map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	} {
		if h.Get(k) == "" {
			h.Set(k, v)
		}
	}
}
