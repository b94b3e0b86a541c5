package interpret

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// fromList renders FROM: one item, or "combinations of a and b" for a
// comma list (a cross product, which WHERE usually narrows).
func (r *renderer) fromList(items []*pg_query.Node) string {
	out := make([]string, len(items))
	for i, n := range items {
		out[i] = r.fromItem(n)
	}
	if len(out) > 1 {
		return "combinations of " + list(out, "and")
	}
	return list(out, "and")
}

// fromItem renders a table, join, subquery or function in FROM.
func (r *renderer) fromItem(n *pg_query.Node) string {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_RangeVar:
		name := v.RangeVar.GetRelname()
		if a := v.RangeVar.GetAlias(); r.names.keepsAlias(a.GetAliasname()) {
			return name + " (as " + aliasText(a) + ")"
		}
		return name
	case *pg_query.Node_JoinExpr:
		return r.join(v.JoinExpr)
	case *pg_query.Node_RangeSubselect:
		return "(" + r.query(v.RangeSubselect.GetSubquery().GetSelectStmt()) + ")" + r.alias(v.RangeSubselect.GetAlias())
	case *pg_query.Node_RangeFunction:
		return r.rangeFunction(v.RangeFunction)
	}
	return r.raw(n)
}

// alias introduces a subquery's or function's alias when column
// references use it, or when it names the columns.
func (r *renderer) alias(a *pg_query.Alias) string {
	if a == nil || !r.names.keepsAlias(a.GetAliasname()) && len(a.GetColnames()) == 0 {
		return ""
	}
	return " (as " + aliasText(a) + ")"
}

func aliasText(a *pg_query.Alias) string {
	if cols := strs(a.GetColnames()); len(cols) > 0 {
		return a.GetAliasname() + "(" + strings.Join(cols, ", ") + ")"
	}
	return a.GetAliasname()
}

// rangeFunction renders a function in FROM: "rows of generate_series(1, 3)".
func (r *renderer) rangeFunction(f *pg_query.RangeFunction) string {
	var calls []string
	for _, item := range f.GetFunctions() {
		parts := item.GetList().GetItems()
		if len(parts) == 0 {
			calls = append(calls, r.raw(item))
			continue
		}
		calls = append(calls, r.expr(parts[0]))
	}
	out := "rows of " + list(calls, "and")
	if f.GetOrdinality() {
		out += ", numbered"
	}
	if len(f.GetColdeflist()) > 0 {
		r.partial = true
	}
	return out + r.alias(f.GetAlias())
}

var joins = map[pg_query.JoinType]string{
	pg_query.JoinType_JOIN_INNER: "joined with",
	pg_query.JoinType_JOIN_LEFT:  "left-joined with",
	pg_query.JoinType_JOIN_RIGHT: "right-joined with",
	pg_query.JoinType_JOIN_FULL:  "fully joined with",
}

// join renders "a joined with b on …"; a join without a condition is a
// cross product.
func (r *renderer) join(j *pg_query.JoinExpr) string {
	l, rt := r.fromItem(j.GetLarg()), r.fromItem(j.GetRarg())
	if j.GetRarg().GetJoinExpr() != nil {
		rt = "(" + rt + ")"
	}
	kind, ok := joins[j.GetJointype()]
	if !ok {
		return r.raw(nil)
	}
	var out string
	switch {
	case j.GetIsNatural():
		out = l + " " + kind + " " + rt + " on all same-named columns"
	case len(j.GetUsingClause()) > 0:
		out = l + " " + kind + " " + rt + " on the same " + list(strs(j.GetUsingClause()), "and")
	case j.GetQuals() != nil:
		out = l + " " + kind + " " + rt + " on " + r.cond(j.GetQuals())
	default:
		out = "combinations of " + l + " and " + rt
	}
	if a := j.GetAlias(); a != nil {
		out = "(" + out + ")" + r.alias(a)
	}
	return out
}

// strs returns the values of String nodes.
func strs(nodes []*pg_query.Node) []string {
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.GetString_().GetSval())
	}
	return out
}
