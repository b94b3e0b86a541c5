// Package sqlguard is the first layer of the SQL sandbox: it parses caller
// SQL with PostgreSQL's own parser (libpg_query) and admits exactly one plain
// query that reads only the tenant's own tables and calls only allowlisted
// built-in functions. It is an allowlist throughout: node types, functions,
// cast types and relations not named here are rejected. The database layer
// (the dbchat_query role, a read-only transaction, the RLS policy) holds even
// when this layer is wrong; this layer makes the refusal clear and early.
package sqlguard

import (
	"fmt"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Policy says what a statement may reference.
type Policy struct {
	// Schema is the tenant's data schema; qualified names must use it.
	Schema string
	// Tables are the tenant's table names (unqualified).
	Tables map[string]bool
	// Columns are each table's column names, the implicit tenant_id and
	// _row_id included. A name written in field position (alias.name) must
	// be one of them: PostgreSQL reads alias.fname as fname(alias) when the
	// relation has no such column.
	Columns map[string]map[string]bool
}

// Rejection is a statement the sandbox will not run, with the reason.
type Rejection struct{ Reason string }

func (r *Rejection) Error() string { return "sql rejected: " + r.Reason }

func reject(format string, args ...any) *Rejection {
	return &Rejection{Reason: fmt.Sprintf(format, args...)}
}

// Check returns nil when sql is one plain query within p, or a *Rejection.
func Check(sql string, p Policy) error {
	_, err := Inspect(sql, p)
	return err
}

// Inspect is Check that also returns the accepted statement's parse tree,
// so that a caller reading more from it (the sandbox's receipt of the
// tables a statement read) need not parse it again. Callers must not
// change the tree.
func Inspect(sql string, p Policy) (*pg_query.ParseResult, error) {
	if err := plainText(sql); err != nil {
		return nil, err
	}
	tree, err := Parse(sql)
	if err != nil {
		return nil, reject("not valid SQL: %v", err)
	}
	stmts := tree.GetStmts()
	switch {
	case len(stmts) == 0:
		return nil, reject("no statement")
	case len(stmts) > 1:
		return nil, reject("exactly one statement is allowed, got %d", len(stmts))
	}
	sel := stmts[0].GetStmt().GetSelectStmt()
	if sel == nil {
		return nil, reject("only a query (SELECT, WITH … SELECT, VALUES) is allowed, got %s", nodeName(stmts[0].GetStmt()))
	}
	w := walker{policy: p, names: bindNames(sel, p)}
	if err := w.selectStmt(sel, nil); err != nil {
		return nil, err
	}
	return tree, nil
}

// plainText refuses bytes PostgreSQL and the parser could read differently:
// the parser stops at a NUL, the server never sees what follows it, and
// other control characters have no place in a query.
func plainText(sql string) error {
	if !utf8.ValidString(sql) {
		return reject("the SQL is not valid UTF-8")
	}
	for i, r := range sql {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return reject("control character U+%04X at byte %d is not allowed in SQL", r, i)
		}
	}
	return nil
}

// walker visits the tree with the CTE names in scope; names says which
// columns each range name (alias or table) of the statement provides.
type walker struct {
	policy Policy
	names  bindings
}

// selectStmt checks a SELECT with its own WITH scope: a non-recursive CTE
// sees the CTEs before it, a recursive WITH sees all of its CTEs.
func (w walker) selectStmt(s *pg_query.SelectStmt, scope []string) error {
	if s.GetIntoClause() != nil {
		return reject("SELECT INTO creates a table and is not allowed")
	}
	if len(s.GetLockingClause()) > 0 {
		return reject("locking clauses (FOR UPDATE/SHARE) are not allowed")
	}
	if with := s.GetWithClause(); with != nil {
		names := make([]string, 0, len(with.GetCtes()))
		for _, n := range with.GetCtes() {
			if cte := n.GetCommonTableExpr(); cte != nil {
				names = append(names, cte.GetCtename())
			}
		}
		for i, n := range with.GetCtes() {
			cte := n.GetCommonTableExpr()
			if cte == nil {
				return reject("unexpected %s in WITH", nodeName(n))
			}
			visible := names[:i]
			if with.GetRecursive() {
				visible = names
			}
			if err := w.node(cte.ProtoReflect(), append(scope[:len(scope):len(scope)], visible...)); err != nil {
				return err
			}
		}
		scope = append(scope[:len(scope):len(scope)], names...)
	}
	var err error
	s.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() == "with_clause" {
			return true
		}
		err = w.value(fd, v, scope)
		return err == nil
	})
	return err
}

// node checks one message and everything beneath it.
func (w walker) node(m protoreflect.Message, scope []string) error {
	name := string(m.Descriptor().Name())
	if !nodeTypes[name] {
		return reject("%s is not allowed in a query", describe(name))
	}
	switch n := m.Interface().(type) {
	case *pg_query.SelectStmt:
		return w.selectStmt(n, scope)
	case *pg_query.RangeVar:
		return w.relation(n, scope)
	case *pg_query.FuncCall:
		if err := function(n); err != nil {
			return err
		}
	case *pg_query.TypeName:
		if err := typeName(n); err != nil {
			return err
		}
	case *pg_query.A_Expr:
		if err := operator(n.GetName()); err != nil {
			return err
		}
	case *pg_query.SubLink:
		if err := operator(n.GetOperName()); err != nil {
			return err
		}
	case *pg_query.SortBy:
		if err := operator(n.GetUseOp()); err != nil {
			return err
		}
	case *pg_query.CollateClause:
		if err := collation(n); err != nil {
			return err
		}
	case *pg_query.ColumnRef:
		if err := w.columnRef(n); err != nil {
			return err
		}
	case *pg_query.A_Indirection:
		if err := fieldSelection(n); err != nil {
			return err
		}
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		err = w.value(fd, v, scope)
		return err == nil
	})
	return err
}

func (w walker) value(fd protoreflect.FieldDescriptor, v protoreflect.Value, scope []string) error {
	if fd.Kind() != protoreflect.MessageKind {
		return nil
	}
	if fd.IsList() {
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			if err := w.node(l.Get(i).Message(), scope); err != nil {
				return err
			}
		}
		return nil
	}
	return w.node(v.Message(), scope)
}

// relation admits a CTE in scope or one of the tenant's tables, unqualified
// or qualified with the tenant's schema. Everything else (catalogs,
// information_schema, platform tables, other schemas) is refused, including
// unqualified catalog names, which pg_catalog would otherwise resolve.
func (w walker) relation(r *pg_query.RangeVar, scope []string) error {
	rel := r.GetRelname()
	if r.GetCatalogname() != "" {
		return reject("cross-database reference %s.%s.%s is not allowed", r.GetCatalogname(), r.GetSchemaname(), rel)
	}
	switch schema := r.GetSchemaname(); {
	case schema == "":
		for _, name := range scope {
			if name == rel {
				return nil
			}
		}
		if w.policy.Tables[rel] {
			return nil
		}
		return reject("relation %q is not one of your tables", rel)
	case schema == w.policy.Schema && w.policy.Tables[rel]:
		return nil
	default:
		return reject("relation %s.%s is outside your tables", schema, rel)
	}
}

func function(f *pg_query.FuncCall) error {
	schema, name := qualified(f.GetFuncname())
	if schema != "" && schema != "pg_catalog" {
		return reject("function %s.%s is not allowed", schema, name)
	}
	if !functions[name] {
		return reject("function %s() is not on the allowlist", name)
	}
	return sized(name, f.GetArgs())
}

func typeName(t *pg_query.TypeName) error {
	schema, name := qualified(t.GetNames())
	if schema != "" && schema != "pg_catalog" || !types[name] {
		return reject("type %s is not allowed", strings.TrimPrefix(schema+"."+name, "."))
	}
	return paddedType(name, t.GetTypmods())
}

// operator refuses operators qualified with a schema other than pg_catalog,
// wherever an operator name appears (a OPERATOR(s.op) b, OPERATOR(s.op) ANY,
// ORDER BY … USING): s.op could name a user-defined function, and the error
// for another tenant's schema would tell whether it exists.
func operator(name []*pg_query.Node) error {
	if schema, op := qualified(name); schema != "" && schema != "pg_catalog" {
		return reject("operator %s.%s is not allowed", schema, op)
	}
	return nil
}

// collation admits built-in collations only (unqualified or pg_catalog).
func collation(c *pg_query.CollateClause) error {
	if schema, name := qualified(c.GetCollname()); schema != "" && schema != "pg_catalog" {
		return reject("collation %s.%s is not allowed", schema, name)
	}
	return nil
}

// qualified splits a name list (String nodes) into schema and name.
func qualified(parts []*pg_query.Node) (schema, name string) {
	var s []string
	for _, p := range parts {
		s = append(s, p.GetString_().GetSval())
	}
	switch len(s) {
	case 0:
		return "", ""
	case 1:
		return "", s[0]
	}
	return strings.Join(s[:len(s)-1], "."), s[len(s)-1]
}

func nodeName(n *pg_query.Node) string {
	if n == nil || n.GetNode() == nil {
		return "an empty statement"
	}
	m := n.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("node")
	if fd := m.WhichOneof(od); fd != nil {
		return describe(string(fd.Message().Name()))
	}
	return "an unknown statement"
}

// describe names a node type for humans: InsertStmt → INSERT statement.
func describe(name string) string {
	if d, ok := descriptions[name]; ok {
		return d
	}
	if s, ok := strings.CutSuffix(name, "Stmt"); ok {
		return strings.ToUpper(s) + " statement"
	}
	return name
}

var descriptions = map[string]string{
	"VariableSetStmt":  "SET/RESET",
	"VariableShowStmt": "SHOW",
	"TransactionStmt":  "transaction control (BEGIN/COMMIT/ROLLBACK/SAVEPOINT)",
	"InsertStmt":       "INSERT (data-modifying statement)",
	"UpdateStmt":       "UPDATE (data-modifying statement)",
	"DeleteStmt":       "DELETE (data-modifying statement)",
	"MergeStmt":        "MERGE (data-modifying statement)",
	"ParamRef":         "a $n parameter",
	"RangeTableSample": "TABLESAMPLE",
	"XmlExpr":          "an XML expression",
}
