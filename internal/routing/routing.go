// Package routing reads the sqlc queries of queries/*.sql with PostgreSQL's
// own parser (libpg_query) and tells how each would be routed if the
// tenant-scoped platform tables were distributed by tenant_id (Citus; see
// docs/SCALING.md). Its test is the check that keeps every query routable
// by one tenant; the package only classifies.
//
// A query is routable by its own text ("filter") when every reference to a
// tenant-scoped table is pinned to one tenant: a tenant_id = <value>
// equality (a parameter, a constant, a setting: anything without a column),
// a tenant_id = tenant_id equality with a pinned reference (a co-located
// join), or, for the target of an INSERT, a tenant_id left to its column
// default, which reads app.tenant_id. Anything else runs "under the policy
// alone": PostgreSQL's tenant_isolation policy scopes it, but a
// distributed planner sees no tenant in its text.
package routing

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Query is one sqlc query of a queries/*.sql file.
type Query struct {
	Name string // sqlc's name (-- name: X :kind)
	File string // the file's base name
	SQL  string
}

var nameLine = regexp.MustCompile(`(?m)^-- name: (\w+) :\w+`)

// Load reads every *.sql file of dir and splits it into its sqlc queries.
func Load(dir string) ([]Query, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.sql"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Query
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		text := string(b)
		locs := nameLine.FindAllStringSubmatchIndex(text, -1)
		for i, l := range locs {
			end := len(text)
			if i+1 < len(locs) {
				end = locs[i+1][0]
			}
			out = append(out, Query{Name: text[l[2]:l[3]], File: filepath.Base(f), SQL: text[l[1]:end]})
		}
	}
	return out, nil
}

// Schema is what the classification needs to know about the database.
type Schema struct {
	// Scoped holds the tenant-scoped tables ("dbchat.users"): those a
	// deployment on Citus distributes by tenant_id.
	Scoped map[string]bool
	// TenantDefault holds the scoped tables whose tenant_id defaults to
	// the transaction's app.tenant_id.
	TenantDefault map[string]bool
}

// Route is how one query would be routed.
type Route struct {
	// Tables are the tenant-scoped tables the query reads or writes.
	Tables []string
	// Unpinned are the references (alias or table) no tenant_id equality
	// pins to one tenant; empty means the text routes it ("filter").
	Unpinned []string
	// Functions are the schema-qualified functions it calls, e.g.
	// dbchat_ops.list_tenants.
	Functions []string
	// Catalogs are the pg_catalog relations it reads.
	Catalogs []string
}

// Routable reports whether the query's own text pins every tenant-scoped
// reference to one tenant.
func (r Route) Routable() bool { return len(r.Unpinned) == 0 }

type ref struct {
	key   string // alias, or the table's name
	table string // schema.table
}

// Classify parses sql (sqlc's sqlc.arg() and $n are ordinary function calls
// and parameters to the parser) and classifies it against s.
func Classify(sql string, s Schema) (Route, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return Route{}, err
	}
	var (
		route  Route
		refs   []ref
		equals [][2]*pg_query.Node
		insert []*pg_query.InsertStmt
		onConf []string // INSERT targets with ON CONFLICT (excluded.* is the target)
		target = map[*pg_query.RangeVar]bool{}
	)
	for _, st := range tree.GetStmts() {
		walk(st.ProtoReflect(), func(m protoreflect.Message) {
			switch n := m.Interface().(type) {
			case *pg_query.RangeVar:
				schema, name := n.GetSchemaname(), n.GetRelname()
				if schema == "" {
					// A CTE, or an unqualified name; the platform tables
					// are always named with their schema in queries/.
					schema = "dbchat"
				}
				q := schema + "." + name
				switch {
				case schema == "pg_catalog":
					route.Catalogs = appendOnce(route.Catalogs, q)
				case s.Scoped[q]:
					key := refKey(n, target[n])
					refs = append(refs, ref{key: key, table: q})
					route.Tables = appendOnce(route.Tables, q)
				}
			case *pg_query.FuncCall:
				if names := funcName(n); len(names) == 2 && names[0] != "pg_catalog" && names[0] != "sqlc" {
					route.Functions = appendOnce(route.Functions, names[0]+"."+names[1])
				}
			case *pg_query.A_Expr:
				if n.GetKind() == pg_query.A_Expr_Kind_AEXPR_OP && len(n.GetName()) == 1 && n.GetName()[0].GetString_().GetSval() == "=" {
					equals = append(equals, [2]*pg_query.Node{n.GetLexpr(), n.GetRexpr()})
				}
			case *pg_query.InsertStmt:
				insert = append(insert, n)
				target[n.GetRelation()] = true
				if n.GetOnConflictClause() != nil {
					onConf = append(onConf, n.GetRelation().GetSchemaname()+"."+n.GetRelation().GetRelname())
				}
			}
		})
	}
	// Union-find over reference keys; a set is pinned when any member is.
	parent := map[string]string{}
	var find func(string) string
	find = func(k string) string {
		if p, ok := parent[k]; ok && p != k {
			r := find(p)
			parent[k] = r
			return r
		}
		parent[k] = k
		return k
	}
	union := func(a, b string) { parent[find(a)] = find(b) }
	pinned := map[string]bool{}
	keyOf := func(qual string) []string {
		if qual != "" {
			return []string{qual}
		}
		// An unqualified tenant_id is unambiguous only with one reference.
		if len(refs) == 1 {
			return []string{refs[0].key}
		}
		return nil
	}
	for _, e := range equals {
		lq, lok := tenantColumn(e[0])
		rq, rok := tenantColumn(e[1])
		switch {
		case lok && rok:
			for _, a := range keyOf(lq) {
				for _, b := range keyOf(rq) {
					union(a, b)
				}
			}
		case lok && isValue(e[1]):
			for _, k := range keyOf(lq) {
				pinned[k] = true
			}
		case rok && isValue(e[0]):
			for _, k := range keyOf(rq) {
				pinned[k] = true
			}
		}
	}
	for _, in := range insert {
		rv := in.GetRelation()
		q := rv.GetSchemaname() + "." + rv.GetRelname()
		if !s.Scoped[q] {
			continue
		}
		key := refKey(rv, true)
		named := false
		for _, c := range in.GetCols() {
			if c.GetResTarget().GetName() == "tenant_id" {
				named = true
			}
		}
		// The tenant_id of every inserted row is app.tenant_id: the
		// column's default (and the policy's WITH CHECK) decide it.
		if !named && s.TenantDefault[q] {
			pinned[key] = true
		}
		for _, t := range onConf {
			if t == q {
				union("excluded", key)
			}
		}
	}
	for k := range pinned {
		pinned[find(k)] = true
	}
	for _, r := range refs {
		if !pinned[find(r.key)] {
			route.Unpinned = appendOnce(route.Unpinned, fmt.Sprintf("%s (%s)", r.key, r.table))
		}
	}
	return route, nil
}

// refKey names a reference for the pinning: its alias, else its table's
// name, except that an INSERT's target without an alias gets a key of its
// own, so that the rows it inserts (pinned by the default) do not pin a
// read of the same table.
func refKey(rv *pg_query.RangeVar, insertTarget bool) string {
	if a := rv.GetAlias().GetAliasname(); a != "" {
		return a
	}
	if insertTarget {
		return "INSERT INTO " + rv.GetRelname()
	}
	return rv.GetRelname()
}

// tenantColumn reports whether n is a column reference to tenant_id, and
// its qualifier ("" when unqualified).
func tenantColumn(n *pg_query.Node) (string, bool) {
	for n.GetTypeCast() != nil {
		n = n.GetTypeCast().GetArg()
	}
	c := n.GetColumnRef()
	if c == nil {
		return "", false
	}
	f := c.GetFields()
	if len(f) == 0 || f[len(f)-1].GetString_().GetSval() != "tenant_id" {
		return "", false
	}
	if len(f) >= 2 {
		return f[len(f)-2].GetString_().GetSval(), true
	}
	return "", true
}

// isValue reports whether n refers to no column: a parameter, constant,
// function of those, or a subquery over none (the policy's own form,
// (SELECT nullif(current_setting('app.tenant_id', true), ”)::uuid)).
func isValue(n *pg_query.Node) bool {
	value := true
	var visit func(m protoreflect.Message)
	visit = func(m protoreflect.Message) {
		switch x := m.Interface().(type) {
		case *pg_query.ColumnRef, *pg_query.RangeVar:
			value = false
			return
		case *pg_query.FuncCall:
			// sqlc.arg(name) is a parameter: its argument names it.
			if f := funcName(x); len(f) == 2 && f[0] == "sqlc" {
				return
			}
		}
		children(m, visit)
	}
	visit(n.ProtoReflect())
	return value
}

func funcName(f *pg_query.FuncCall) []string {
	var out []string
	for _, n := range f.GetFuncname() {
		out = append(out, n.GetString_().GetSval())
	}
	return out
}

func appendOnce(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// walk calls fn for m and every message beneath it.
func walk(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	children(m, func(c protoreflect.Message) { walk(c, fn) })
}

// children calls fn for each message directly beneath m.
func children(m protoreflect.Message, fn func(protoreflect.Message)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				fn(l.Get(i).Message())
			}
			return true
		}
		fn(v.Message())
		return true
	})
}

// Describe is a one-line summary of r for a test failure.
func (r Route) Describe() string {
	parts := []string{"tables " + strings.Join(r.Tables, ", ")}
	if len(r.Unpinned) > 0 {
		parts = append(parts, "not pinned to one tenant: "+strings.Join(r.Unpinned, ", "))
	}
	if len(r.Functions) > 0 {
		parts = append(parts, "calls "+strings.Join(r.Functions, ", "))
	}
	if len(r.Catalogs) > 0 {
		parts = append(parts, "reads "+strings.Join(r.Catalogs, ", "))
	}
	return strings.Join(parts, "; ")
}
