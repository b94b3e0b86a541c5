package interpret

import (
	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// names is what the statement's range items (tables, subqueries, functions
// in FROM) tell about the qualifiers of its column references: with one
// range item a qualifier says nothing and is dropped; an alias of a table
// read once is replaced by the table's name; any other qualifier is kept,
// and the FROM phrase then introduces it ("items (as i)").
type names struct {
	ranges int               // range items in the whole statement
	tables map[string]int    // how often each table (or CTE) name is read
	alias  map[string]string // alias → table name; "" when not one table
	idents map[string]bool   // every name written in the statement
}

// collectNames counts the range items of the whole statement.
func collectNames(sel *pg_query.SelectStmt) names {
	n := names{tables: map[string]int{}, alias: map[string]string{}, idents: map[string]bool{}}
	visit(sel.ProtoReflect(), func(m protoreflect.Message) {
		switch v := m.Interface().(type) {
		case *pg_query.ColumnRef:
			for _, f := range strs(v.GetFields()) {
				n.idents[f] = true
			}
		case *pg_query.FuncCall:
			if name := funcName(v); aggregates[name] == "" && scalars[name] == "" && windowFuncs[name] == "" {
				n.idents[name] = true // written as a call
			}
		case *pg_query.Alias:
			n.idents[v.GetAliasname()] = true
		case *pg_query.CommonTableExpr:
			n.idents[v.GetCtename()] = true
		case *pg_query.RangeVar:
			n.ranges++
			n.tables[v.GetRelname()]++
			n.idents[v.GetRelname()] = true
			if a := v.GetAlias().GetAliasname(); a != "" && a != v.GetRelname() {
				n.bind(a, v.GetRelname())
			}
		case *pg_query.RangeSubselect:
			n.ranges++
			n.bind(v.GetAlias().GetAliasname(), "")
		case *pg_query.RangeFunction:
			n.ranges++
			n.bind(v.GetAlias().GetAliasname(), "")
		}
	})
	return n
}

// bind records alias a for table rel; an alias bound twice to different
// things stands for no one table.
func (n names) bind(a, rel string) {
	if a == "" {
		return
	}
	if prev, ok := n.alias[a]; ok && prev != rel {
		rel = ""
	}
	n.alias[a] = rel
}

// qualifier is how a column reference's qualifier q is written: "" (drop
// it), a table's name, or q itself.
func (n names) qualifier(q string) string {
	if n.ranges <= 1 {
		return ""
	}
	if rel := n.alias[q]; rel != "" && n.tables[rel] == 1 {
		return rel
	}
	return q
}

// keepsAlias reports whether alias a is written in column references, so
// the FROM phrase must introduce it.
func (n names) keepsAlias(a string) bool {
	return a != "" && n.qualifier(a) == a
}

// visit calls fn for m and every message beneath it.
func visit(m protoreflect.Message, fn func(protoreflect.Message)) {
	fn(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if !fd.IsList() {
			visit(v.Message(), fn)
			return true
		}
		l := v.List()
		for i := 0; i < l.Len(); i++ {
			visit(l.Get(i).Message(), fn)
		}
		return true
	})
}
