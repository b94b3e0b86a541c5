package sqlguard

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// PostgreSQL reads a one-argument function call written as field selection:
// (expr).fname and alias.fname call fname(expr) and fname(alias.*) when the
// relation has no column fname. The parser sees a column reference there, not
// a function call, so names in field position are checked here: each must be
// a column the qualifier really provides, or an allowlisted function (which
// could as well be called the usual way).

// bindings maps each range name of a statement (a table's name or alias, a
// CTE, a subquery's or function's alias) to the column sets it may stand
// for. A nil set means "not known", which admits no field.
type bindings map[string][]map[string]bool

// bindNames collects the range names of the whole statement. A name bound
// twice (in different scopes) must provide the field in every binding.
func bindNames(sel *pg_query.SelectStmt, p Policy) bindings {
	b := bindings{}
	ctes := map[string]*pg_query.CommonTableExpr{}
	visit(sel.ProtoReflect(), func(m protoreflect.Message) {
		if cte, ok := m.Interface().(*pg_query.CommonTableExpr); ok {
			ctes[cte.GetCtename()] = cte
		}
	})
	inf := inferrer{policy: p, ctes: ctes, seen: map[string]bool{}}
	visit(sel.ProtoReflect(), func(m protoreflect.Message) {
		switch n := m.Interface().(type) {
		case *pg_query.RangeVar:
			name := n.GetRelname()
			if a := n.GetAlias(); a != nil {
				name = a.GetAliasname()
			}
			b[name] = append(b[name], inf.rangeVar(n))
			// Outside the CTE's scope the same name is the tenant's table:
			// the field must be a column of both.
			if _, cte := ctes[n.GetRelname()]; cte && n.GetSchemaname() == "" && p.Tables[n.GetRelname()] {
				b[name] = append(b[name], p.Columns[n.GetRelname()])
			}
		case *pg_query.RangeSubselect:
			if a := n.GetAlias(); a != nil {
				cols := inf.withAliasColumns(inf.query(n.GetSubquery().GetSelectStmt()), a)
				b[a.GetAliasname()] = append(b[a.GetAliasname()], cols)
			}
		case *pg_query.RangeFunction:
			if a := n.GetAlias(); a != nil {
				b[a.GetAliasname()] = append(b[a.GetAliasname()], functionColumns(n, a))
			}
		case *pg_query.JoinExpr:
			if a := n.GetAlias(); a != nil {
				b[a.GetAliasname()] = append(b[a.GetAliasname()], nil)
			}
		}
	})
	return b
}

// provides reports whether every binding of name has the column field.
func (b bindings) provides(name, field string) bool {
	sets := b[name]
	for _, cols := range sets {
		if !cols[field] {
			return false
		}
	}
	return len(sets) > 0
}

// systemColumns are the columns PostgreSQL gives every table besides its
// own (no table may have a column of these names). They are refused: xmin
// and xmax are transaction ids, which count every tenant's writes between
// two of a tenant's own (a tenant could count another's questions), and
// tableoid is an object id, which counts every tenant's new tables; ctid,
// cmin and cmax go with them, as nothing a question asks needs them.
var systemColumns = map[string]bool{"tableoid": true, "xmin": true, "cmin": true, "xmax": true, "cmax": true, "ctid": true}

// columnRef checks a.b, schema.table.column and their star forms.
func (w walker) columnRef(c *pg_query.ColumnRef) error {
	var names []string
	for _, f := range c.GetFields() {
		if s := f.GetString_(); s != nil {
			names = append(names, s.GetSval())
		} else {
			names = append(names, "*")
		}
	}
	if last := names[len(names)-1]; systemColumns[last] {
		return reject("the system column %s is not allowed: it reads the cluster's transaction and object counters, which other tenants move", last)
	}
	switch {
	case len(names) < 2:
		return nil // an unqualified name is never read as a function call
	case len(names) == 3 && names[0] == w.policy.Schema && w.policy.Tables[names[1]]:
		names = names[1:] // schema.table.column: check table.column below
	case len(names) >= 3:
		return reject("%s is not allowed: write table.column (field selection on a column is not supported)", joinNames(names))
	}
	qual, field := names[0], names[1]
	if field == "*" || functions[field] || w.names.provides(qual, field) {
		return nil
	}
	return reject("%s.%s is not a column of %s (a function call written as field selection is not allowed)", qual, field, qual)
}

// fieldSelection refuses (expr).name unless name is an allowlisted function:
// the parser cannot know expr's columns. (expr).* and subscripts are fine.
func fieldSelection(a *pg_query.A_Indirection) error {
	for _, n := range a.GetIndirection() {
		if s := n.GetString_(); s != nil && !functions[s.GetSval()] {
			return reject("field selection (…).%s is not allowed: select the column directly", s.GetSval())
		}
	}
	return nil
}

// inferrer works out the output column names of CTEs and subqueries, as
// PostgreSQL names them, well enough to admit alias.column on derived
// tables. Where it cannot tell, it returns nil (unknown).
type inferrer struct {
	policy Policy
	ctes   map[string]*pg_query.CommonTableExpr
	seen   map[string]bool // CTEs being inferred (recursive WITH)
}

func (in inferrer) rangeVar(r *pg_query.RangeVar) map[string]bool {
	name := r.GetRelname()
	if cte, ok := in.ctes[name]; ok && r.GetSchemaname() == "" {
		if in.seen[name] {
			return nil
		}
		in.seen[name] = true
		defer delete(in.seen, name)
		cols := in.query(cte.GetCtequery().GetSelectStmt())
		if len(cte.GetAliascolnames()) > 0 {
			cols = stringSet(cte.GetAliascolnames())
		}
		return cols
	}
	if !in.policy.Tables[name] {
		return nil
	}
	return in.policy.Columns[name]
}

// withAliasColumns applies AS x(a, b): the listed names replace the first
// columns, which with a known column count we cannot match; list only.
func (in inferrer) withAliasColumns(cols map[string]bool, a *pg_query.Alias) map[string]bool {
	if len(a.GetColnames()) > 0 {
		return stringSet(a.GetColnames())
	}
	return cols
}

// query returns a SELECT's output column names, or nil when unknown.
func (in inferrer) query(s *pg_query.SelectStmt) map[string]bool {
	if s == nil {
		return nil
	}
	if s.GetOp() != pg_query.SetOperation_SETOP_NONE {
		return in.query(s.GetLarg())
	}
	if len(s.GetValuesLists()) > 0 {
		return nil
	}
	cols := map[string]bool{}
	for _, t := range s.GetTargetList() {
		rt := t.GetResTarget()
		if rt.GetName() != "" {
			cols[rt.GetName()] = true
			continue
		}
		if ref := rt.GetVal().GetColumnRef(); ref != nil && isStar(ref) {
			star := in.star(s, ref)
			if star == nil {
				return nil
			}
			for c := range star {
				cols[c] = true
			}
			continue
		}
		if name := colName(rt.GetVal()); name != "" {
			cols[name] = true
		}
	}
	return cols
}

// star expands * or alias.* over the FROM items of s.
func (in inferrer) star(s *pg_query.SelectStmt, ref *pg_query.ColumnRef) map[string]bool {
	qual := ""
	if f := ref.GetFields(); len(f) == 2 {
		qual = f[0].GetString_().GetSval()
	} else if len(f) != 1 {
		return nil
	}
	out := map[string]bool{}
	for _, from := range s.GetFromClause() {
		rv := from.GetRangeVar()
		if rv == nil {
			return nil // joins, subqueries and functions in a star: unknown
		}
		name := rv.GetRelname()
		if rv.GetAlias() != nil {
			name = rv.GetAlias().GetAliasname()
		}
		if qual != "" && qual != name {
			continue
		}
		cols := in.rangeVar(rv)
		if cols == nil {
			return nil
		}
		for c := range cols {
			out[c] = true
		}
	}
	return out
}

// functionColumns are the columns a function in FROM provides: its column
// aliases, or the alias itself (a scalar function's one column) and the
// names the allowlisted set-returning functions give their columns.
func functionColumns(r *pg_query.RangeFunction, a *pg_query.Alias) map[string]bool {
	if len(a.GetColnames()) > 0 {
		return stringSet(a.GetColnames())
	}
	cols := map[string]bool{a.GetAliasname(): true, "key": true, "value": true}
	if r.GetOrdinality() {
		cols["ordinality"] = true
	}
	return cols
}

// colName is the name PostgreSQL gives an unnamed target (FigureColname),
// for the forms generated SQL uses; "" when it would be ?column?.
func colName(n *pg_query.Node) string {
	switch {
	case n.GetColumnRef() != nil:
		f := n.GetColumnRef().GetFields()
		return f[len(f)-1].GetString_().GetSval()
	case n.GetFuncCall() != nil:
		_, name := qualified(n.GetFuncCall().GetFuncname())
		return name
	case n.GetTypeCast() != nil:
		if name := colName(n.GetTypeCast().GetArg()); name != "" {
			return name
		}
		_, name := qualified(n.GetTypeCast().GetTypeName().GetNames())
		return name
	case n.GetAIndirection() != nil:
		ind := n.GetAIndirection().GetIndirection()
		return ind[len(ind)-1].GetString_().GetSval()
	case n.GetCaseExpr() != nil:
		return "case"
	case n.GetCoalesceExpr() != nil:
		return "coalesce"
	}
	return ""
}

func isStar(c *pg_query.ColumnRef) bool {
	f := c.GetFields()
	return len(f) > 0 && f[len(f)-1].GetAStar() != nil
}

func stringSet(nodes []*pg_query.Node) map[string]bool {
	m := map[string]bool{}
	for _, n := range nodes {
		m[n.GetString_().GetSval()] = true
	}
	return m
}

func joinNames(names []string) string {
	out := names[0]
	for _, n := range names[1:] {
		out += "." + n
	}
	return out
}

// visit calls fn for m and every message beneath it.
func visit(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				visit(l.Get(i).Message(), fn)
			}
			return true
		}
		visit(v.Message(), fn)
		return true
	})
}
