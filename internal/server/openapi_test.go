package server_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// oaSecurity is an OpenAPI security requirement list; nil means "absent"
// (the document's default applies), empty means "public".
type oaSecurity = *[]map[string][]string

type oaParam struct {
	Ref      string `yaml:"$ref"`
	Name     string `yaml:"name"`
	In       string `yaml:"in"`
	Required bool   `yaml:"required"`
}

type oaOperation struct {
	OperationID string         `yaml:"operationId"`
	Security    oaSecurity     `yaml:"security"`
	Parameters  []oaParam      `yaml:"parameters"`
	Responses   map[string]any `yaml:"responses"`
}

type oaDoc struct {
	OpenAPI    string                          `yaml:"openapi"`
	Security   oaSecurity                      `yaml:"security"`
	Paths      map[string]map[string]yaml.Node `yaml:"paths"`
	Components struct {
		Parameters      map[string]oaParam `yaml:"parameters"`
		SecuritySchemes map[string]struct {
			Type   string `yaml:"type"`
			Scheme string `yaml:"scheme"`
			In     string `yaml:"in"`
			Name   string `yaml:"name"`
		} `yaml:"securitySchemes"`
		Schemas map[string]yaml.Node `yaml:"schemas"`
	} `yaml:"components"`
}

var oaMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// oaServer builds a server for looking at its routes and document; neither
// touches the database, so none is needed.
func oaServer(t *testing.T) *server.Server {
	t.Helper()
	return server.New(tenant.New(nil), slog.New(slog.DiscardHandler), server.Config{})
}

func oaLoad(t *testing.T) (oaDoc, map[string]any) {
	t.Helper()
	raw, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)
	var doc oaDoc
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	var tree map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &tree))
	return doc, tree
}

// oaOperations returns the document's operations keyed "METHOD /path", with
// the path item's parameters merged in.
func oaOperations(t *testing.T, doc oaDoc) map[string]oaOperation {
	t.Helper()
	ops := map[string]oaOperation{}
	for path, item := range doc.Paths {
		var shared []oaParam
		if n, ok := item["parameters"]; ok {
			require.NoError(t, n.Decode(&shared), path)
		}
		for key, n := range item {
			switch {
			case key == "parameters", key == "summary", key == "description", key == "servers":
				continue
			case !slices.Contains(oaMethods, key):
				t.Errorf("%s: unexpected key %q in path item", path, key)
				continue
			}
			var op oaOperation
			require.NoError(t, n.Decode(&op), "%s %s", key, path)
			op.Parameters = append(slices.Clone(shared), op.Parameters...)
			ops[strings.ToUpper(key)+" "+path] = op
		}
	}
	return ops
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPIMatchesRoutes holds the document and the router to each other:
// every route is documented and every documented operation is routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc, _ := oaLoad(t)
	ops := oaOperations(t, doc)

	routed := map[string]bool{}
	for _, r := range oaServer(t).Routes() {
		routed[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	require.NotEmpty(t, routed)

	var undocumented, unrouted []string
	for k := range routed {
		if _, ok := ops[k]; !ok {
			undocumented = append(undocumented, k)
		}
	}
	for k := range ops {
		if !routed[k] {
			unrouted = append(unrouted, k)
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unrouted)
	require.Empty(t, undocumented, "routes missing from openapi.yaml")
	require.Empty(t, unrouted, "operations in openapi.yaml that no route serves")
}

func TestOpenAPIOperations(t *testing.T) {
	t.Parallel()
	doc, tree := oaLoad(t)
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3.0."), "OpenAPI 3.0, got %q", doc.OpenAPI)

	require.Contains(t, doc.Components.SecuritySchemes, "apiKey")
	require.Contains(t, doc.Components.SecuritySchemes, "operatorToken")
	for name, s := range doc.Components.SecuritySchemes {
		if name == "sessionCookie" { // the web app's session (POST /v1/sessions)
			require.Equal(t, []string{"apiKey", "cookie", "dbchat_session"}, []string{s.Type, s.In, s.Name})
			continue
		}
		require.Equal(t, "http", s.Type, name)
		require.Equal(t, "bearer", s.Scheme, name)
	}
	require.NotNil(t, doc.Security, "a default security requirement, so a new operation is protected unless it says otherwise")

	seenIDs := map[string]string{}
	for key, op := range oaOperations(t, doc) {
		method, path, _ := strings.Cut(key, " ")

		require.NotEmpty(t, op.OperationID, key)
		require.NotContains(t, seenIDs, op.OperationID, "%s: operationId also used by %s", key, seenIDs[op.OperationID])
		seenIDs[op.OperationID] = key

		require.NotEmpty(t, op.Responses, "%s declares no response", key)
		for code := range op.Responses {
			require.Regexp(t, `^([1-5][0-9][0-9]|default)$`, code, key)
		}

		security := doc.Security
		if op.Security != nil {
			security = op.Security
		}
		var schemes []string
		for _, req := range *security {
			for name := range req {
				require.Contains(t, doc.Components.SecuritySchemes, name, key)
				schemes = append(schemes, name)
			}
		}
		// The document's security must say what the router does: /v1 is
		// behind a key or a session cookie (or the operator token), signing
		// in (with a key or through an identity provider) is public, the current session is the cookie's, /metrics is
		// behind the operator token, everything else is public.
		switch {
		case strings.HasPrefix(path, "/v1/tenants"), strings.HasPrefix(path, "/v1/admin/"), path == "/metrics":
			require.Equal(t, []string{"operatorToken"}, schemes, key)
		case path == "/v1/sessions", strings.HasPrefix(path, "/v1/sessions/oidc"):
			require.Empty(t, schemes, "%s is public", key)
		case path == "/v1/sessions/current":
			require.Equal(t, []string{"sessionCookie"}, schemes, key)
		case strings.HasPrefix(path, "/v1/"):
			require.ElementsMatch(t, []string{"apiKey", "sessionCookie"}, schemes, key)
		default:
			require.Empty(t, schemes, "%s is public", key)
		}
		if len(schemes) > 0 {
			require.Contains(t, op.Responses, "401", "protected operation %s must declare 401", key)
		}

		// Path templates and path parameters agree.
		var inPath []string
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
			inPath = append(inPath, m[1])
		}
		var declared []string
		for _, p := range op.Parameters {
			if p.Ref != "" {
				name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/")
				require.True(t, ok, "%s: %s", key, p.Ref)
				require.Contains(t, doc.Components.Parameters, name, key)
				p = doc.Components.Parameters[name]
			}
			if p.In == "path" {
				require.True(t, p.Required, "%s: path parameter %s must be required", key, p.Name)
				declared = append(declared, p.Name)
			}
		}
		require.ElementsMatch(t, inPath, declared, "%s: path parameters", key)

		if method == "POST" || method == "PUT" || method == "PATCH" {
			body, _ := tree["paths"].(map[string]any)[path].(map[string]any)[strings.ToLower(method)].(map[string]any)["requestBody"]
			require.NotNil(t, body, "%s declares its request body", key)
		}
	}

	// Every $ref points at something that exists, and no key is left without
	// a value (in a flow mapping, `{ description: a, b }` silently makes "b"
	// a key with a null value).
	var walk func(n any, at string)
	walk = func(n any, at string) {
		switch v := n.(type) {
		case map[string]any:
			for k, child := range v {
				require.NotNil(t, child, "%s/%s has no value: quote the scalar before it", at, k)
				if k == "$ref" {
					ref, _ := child.(string)
					target, ok := oaResolve(tree, ref)
					require.True(t, ok && target != nil, "%s: dangling $ref %q", at, ref)
					continue
				}
				walk(child, at+"/"+k)
			}
		case []any:
			for _, child := range v {
				walk(child, at)
			}
		}
	}
	walk(tree, "#")
}

func oaResolve(tree map[string]any, ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false
	}
	var n any = tree
	for _, part := range strings.Split(rest, "/") {
		m, ok := n.(map[string]any)
		if !ok {
			return nil, false
		}
		if n, ok = m[part]; !ok {
			return nil, false
		}
	}
	return n, true
}

// TestOpenAPIErrorSchema checks the documented error shape and codes against
// internal/apperr.
func TestOpenAPIErrorSchema(t *testing.T) {
	t.Parallel()
	_, tree := oaLoad(t)
	errSchema, ok := oaResolve(tree, "#/components/schemas/Error/properties/error")
	require.True(t, ok)
	props := errSchema.(map[string]any)["properties"].(map[string]any)
	require.Contains(t, props, "code")
	require.Contains(t, props, "message")
	require.Contains(t, props, "details")

	var documented []string
	for _, c := range props["code"].(map[string]any)["enum"].([]any) {
		documented = append(documented, c.(string))
	}
	codes := oaAppErrCodes(t)
	require.Contains(t, codes, apperr.Internal, "sanity: the parser found the codes")
	// Each code's status is documented next to it.
	desc := strings.Join(strings.Fields(props["code"].(map[string]any)["description"].(string)), " ")
	var want []string
	for _, c := range codes {
		want = append(want, string(c))
		require.Contains(t, desc, string(c)+" "+strconv.Itoa(apperr.HTTPStatus(c)), c)
	}
	require.ElementsMatch(t, want, documented)
}

// oaAppErrCodes lists every Code constant declared in internal/apperr, read
// from its source so that a new code fails this test until it is documented.
func oaAppErrCodes(t *testing.T) []apperr.Code {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "../apperr/apperr.go", nil, 0)
	require.NoError(t, err)
	var codes []apperr.Code
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, v := range vs.Values {
				lit, ok := v.(*ast.BasicLit)
				require.True(t, ok && lit.Kind == token.STRING, "apperr codes are string literals")
				s, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				codes = append(codes, apperr.Code(s))
			}
		}
	}
	return codes
}

// TestOpenAPIServed checks GET /openapi.yaml serves the embedded document.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("openapi.yaml")
	require.NoError(t, err)

	srv := httptest.NewServer(oaServer(t))
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/openapi.yaml")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "application/yaml", resp.Header.Get("Content-Type"))
	require.Equal(t, string(raw), string(body))
	require.NotEmpty(t, resp.Header.Get("X-Request-Id"))
}
