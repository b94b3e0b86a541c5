package server_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestOpenAPIClientFriendly keeps the document inside what client
// generators accept with their default options (`make verify` runs two; this
// says why quickly, without Node or a database):
//   - every $ref names a whole component: oapi-codegen refuses a reference
//     into a component ("unexpected reference depth");
//   - no schema a request body uses has a `default`: openapi-typescript makes
//     such a property required in the request type, so a client could not
//     leave it out. Say what omitting it means in its description instead.
func TestOpenAPIClientFriendly(t *testing.T) {
	t.Parallel()
	_, tree := oaLoad(t)
	wholeComponent := regexp.MustCompile(`^#/components/[A-Za-z]+/[A-Za-z0-9._-]+$`)

	var refs func(n any, at string)
	refs = func(n any, at string) {
		switch v := n.(type) {
		case map[string]any:
			for k, child := range v {
				if ref, ok := child.(string); ok && k == "$ref" {
					require.Regexp(t, wholeComponent, ref, "%s: reference a whole component (give a nested schema a name of its own)", at)
				}
				refs(child, at+"/"+k)
			}
		case []any:
			for _, child := range v {
				refs(child, at)
			}
		}
	}
	refs(tree, "#")

	// Walk every request body's schemas, following $refs, and refuse a
	// default anywhere in them.
	seen := map[string]bool{}
	var schema func(s any, at string)
	schema = func(s any, at string) {
		m, ok := s.(map[string]any)
		if !ok {
			return
		}
		if ref, ok := m["$ref"].(string); ok {
			if seen[ref] {
				return
			}
			seen[ref] = true
			target, ok := oaResolve(tree, ref)
			require.True(t, ok, "%s: dangling $ref %q", at, ref)
			schema(target, ref)
			return
		}
		require.NotContains(t, m, "default", "%s: a request schema with a default (state it in the description)", at)
		if props, ok := m["properties"].(map[string]any); ok {
			for name, p := range props {
				schema(p, at+"/properties/"+name)
			}
		}
		for _, k := range []string{"items", "additionalProperties", "not"} {
			schema(m[k], at+"/"+k)
		}
		for _, k := range []string{"allOf", "oneOf", "anyOf"} {
			list, _ := m[k].([]any)
			for _, sub := range list {
				schema(sub, at+"/"+k)
			}
		}
	}
	bodies := 0
	for path, item := range tree["paths"].(map[string]any) {
		for method, op := range item.(map[string]any) {
			o, ok := op.(map[string]any)
			if !ok {
				continue
			}
			body, ok := o["requestBody"].(map[string]any)
			if !ok {
				continue
			}
			content, _ := body["content"].(map[string]any)
			for media, c := range content {
				bodies++
				at := strings.ToUpper(method) + " " + path + " " + media
				schema(c.(map[string]any)["schema"], at)
			}
		}
	}
	require.Greater(t, bodies, 10, "sanity: the walk found the request bodies")
}
