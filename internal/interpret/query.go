package interpret

import (
	"slices"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// target is one entry of a SELECT list, rendered.
type target struct {
	node    *pg_query.Node
	name    string // the output column's name, as ORDER BY knows it
	text    string
	measure bool // holds an aggregate: "highest first" refers to it
	star    bool
}

// query renders any SELECT: a set operation, VALUES or a plain SELECT,
// then its ORDER BY, LIMIT/OFFSET and WITH.
func (r *renderer) query(s *pg_query.SelectStmt) string {
	if s == nil {
		return r.raw(nil)
	}
	var body string
	var targets []target
	switch {
	case s.GetLarg() != nil || s.GetRarg() != nil:
		body = r.setOp(s)
	case len(s.GetValuesLists()) > 0:
		body = r.values(s.GetValuesLists())
	default:
		r.scopes = append(r.scopes, rangeNames(s.GetFromClause()))
		defer func() { r.scopes = r.scopes[:len(r.scopes)-1] }()
		r.defineWindows(s.GetWindowClause())
		targets = r.targets(s)
		body = r.simple(s, targets)
	}
	return body + r.orderBy(s.GetSortClause(), targets) + r.limit(s) + r.with(s.GetWithClause())
}

// rangeNames are the names a FROM list binds: aliases, or table names.
func rangeNames(from []*pg_query.Node) []string {
	var out []string
	for _, n := range from {
		switch v := n.GetNode().(type) {
		case *pg_query.Node_RangeVar:
			name := v.RangeVar.GetRelname()
			if a := v.RangeVar.GetAlias(); a != nil {
				name = a.GetAliasname()
			}
			out = append(out, name)
		case *pg_query.Node_JoinExpr:
			out = append(out, rangeNames([]*pg_query.Node{v.JoinExpr.GetLarg(), v.JoinExpr.GetRarg()})...)
			if a := v.JoinExpr.GetAlias(); a != nil {
				out = append(out, a.GetAliasname())
			}
		case *pg_query.Node_RangeSubselect:
			out = append(out, v.RangeSubselect.GetAlias().GetAliasname())
		case *pg_query.Node_RangeFunction:
			out = append(out, v.RangeFunction.GetAlias().GetAliasname())
		}
	}
	return out
}

// local reports a qualifier naming the one range item of the SELECT being
// rendered, which says nothing there.
func (r *renderer) local(q string) bool {
	if len(r.scopes) == 0 {
		return false
	}
	scope := r.scopes[len(r.scopes)-1]
	return len(scope) == 1 && scope[0] == q
}

// simple renders a plain SELECT up to its ORDER BY.
func (r *renderer) simple(s *pg_query.SelectStmt, targets []target) string {
	groups := r.groups(s.GetGroupClause(), targets)
	kept := keep(targets, groups)
	distinct := len(s.GetDistinctClause()) > 0 && len(distinctOn(s)) == 0
	if len(groups) > 0 && len(kept) == len(targets) && sameTexts(targets, groups) {
		groups, distinct = nil, true // GROUP BY exactly the selected columns: distinct values
	}
	out := r.head(r.fromList(s.GetFromClause()), kept, groups, distinct, len(s.GetDistinctClause()) == 0)
	if w := s.GetWhereClause(); w != nil {
		out += " where " + r.cond(w)
	}
	if h := s.GetHavingClause(); h != nil {
		out += ", keeping groups where " + r.cond(h)
	}
	if on := distinctOn(s); len(on) > 0 {
		out += ", one row per " + list(r.exprs(on), "and")
	}
	return out
}

// head is the phrase for what is selected, from what, per which groups:
// "count of customers per country", "sum of amount per customer_id for
// orders", "all customers", "name of customers".
// distinct is plain DISTINCT; plain is neither DISTINCT nor DISTINCT ON.
func (r *renderer) head(from string, targets []target, groups []string, distinct, plain bool) string {
	plain = plain && !distinct
	per := ""
	if len(groups) > 0 {
		per = " per " + list(groups, "and")
	}
	switch {
	case from != "" && plain && len(targets) == 1 && targets[0].star && isBareStar(targets[0].node):
		return "all " + from + per
	case from != "" && plain && len(targets) == 1 && isCountStar(targets[0].node):
		return "count of " + from + per
	}
	texts := make([]string, len(targets))
	measure := false
	for i, t := range targets {
		texts[i], measure = t.text, measure || t.measure
		if len(targets) > 1 && topLevelComma(t.text) {
			texts[i] = "(" + t.text + ")"
		}
	}
	what := list(texts, "and")
	if len(texts) == 0 {
		what = "no columns" // SELECT FROM t: one empty row per row
	}
	if distinct {
		what = distinctPhrase(texts)
	}
	if from == "" && len(texts) == 1 && per == "" {
		return "the value " + what
	}
	if from == "" {
		return what + per
	}
	prep := " of "
	if measure {
		prep = " for "
	}
	return what + per + prep + from
}

func distinctPhrase(texts []string) string {
	if len(texts) == 1 {
		return "distinct " + texts[0]
	}
	return "distinct combinations of " + list(texts, "and")
}

// distinctOn returns the expressions of DISTINCT ON (…); plain DISTINCT
// has one empty node.
func distinctOn(s *pg_query.SelectStmt) []*pg_query.Node {
	var out []*pg_query.Node
	for _, n := range s.GetDistinctClause() {
		if n.GetNode() != nil {
			out = append(out, n)
		}
	}
	return out
}

// targets renders the SELECT list.
func (r *renderer) targets(s *pg_query.SelectStmt) []target {
	out := make([]target, 0, len(s.GetTargetList()))
	for _, n := range s.GetTargetList() {
		v := n.GetResTarget().GetVal()
		if v == nil {
			v = n
		}
		name := n.GetResTarget().GetName()
		if name == "" {
			name = colName(v)
		}
		out = append(out, target{node: v, name: name, text: r.expr(v), measure: hasAggregate(v), star: isStar(v)})
	}
	return out
}

// keep drops the targets that are grouping keys, which "per …" already
// names, unless nothing else would be left.
func keep(targets []target, groups []string) []target {
	var out []target
	for _, t := range targets {
		grouped := false
		for _, g := range groups {
			grouped = grouped || (g == t.text && !t.star)
		}
		if !grouped {
			out = append(out, t)
		}
	}
	if len(out) == 0 {
		return targets
	}
	return out
}

// sameTexts reports targets that are exactly the grouping keys, in any
// order.
func sameTexts(targets []target, groups []string) bool {
	if len(targets) != len(groups) {
		return false
	}
	for _, t := range targets {
		if t.star || !slices.Contains(groups, t.text) {
			return false
		}
	}
	return true
}

// groups renders GROUP BY keys; a position refers to the SELECT list.
func (r *renderer) groups(keys []*pg_query.Node, targets []target) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if gs := k.GetGroupingSet(); gs != nil {
			out = append(out, r.groupingSet(gs))
			continue
		}
		out = append(out, r.resolve(k, targets).text)
	}
	return out
}

// groupingSet renders ROLLUP, CUBE and GROUPING SETS.
func (r *renderer) groupingSet(gs *pg_query.GroupingSet) string {
	items := r.exprs(gs.GetContent())
	switch gs.GetKind() {
	case pg_query.GroupingSetKind_GROUPING_SET_EMPTY:
		return "everything together"
	case pg_query.GroupingSetKind_GROUPING_SET_SIMPLE:
		return list(items, "and")
	case pg_query.GroupingSetKind_GROUPING_SET_ROLLUP:
		return list(items, "and") + " with subtotals and a grand total (rollup)"
	case pg_query.GroupingSetKind_GROUPING_SET_CUBE:
		return list(items, "and") + " with subtotals for every combination (cube)"
	case pg_query.GroupingSetKind_GROUPING_SET_SETS:
		for i, it := range items {
			items[i] = "(" + it + ")"
		}
		return "each of the groupings " + list(items, "and")
	}
	return r.raw(nil)
}

// resolve reads an ORDER BY or GROUP BY key: a position (1, 2, …) or, in
// ORDER BY, an output name refers to the SELECT list.
func (r *renderer) resolve(k *pg_query.Node, targets []target) target {
	if c := k.GetAConst(); c != nil && c.GetIval() != nil {
		i := int(c.GetIval().GetIval())
		if i >= 1 && i <= len(targets) && !anyStar(targets[:i]) {
			return targets[i-1]
		}
		return target{text: "column " + strconv.Itoa(i)}
	}
	return target{node: k, text: r.expr(k), measure: hasAggregate(k)}
}

// orderBy renders ORDER BY: "highest first" when the key is the one
// aggregate selected, else "ordered by x descending, then by y".
func (r *renderer) orderBy(keys []*pg_query.Node, targets []target) string {
	if len(keys) == 0 {
		return ""
	}
	measure := soleMeasure(targets)
	parts := make([]string, 0, len(keys))
	for i, k := range keys {
		p := r.sortKey(k, targets, measure)
		if strings.HasPrefix(p, "by ") {
			p = map[bool]string{true: "ordered ", false: "then "}[i == 0] + p
		} else if i > 0 {
			p = "then " + p
		}
		parts = append(parts, p)
	}
	return ", " + strings.Join(parts, ", ")
}

// sortKey renders one ORDER BY key.
func (r *renderer) sortKey(k *pg_query.Node, targets []target, measure string) string {
	sb := k.GetSortBy()
	if sb == nil {
		return "by " + r.raw(k)
	}
	t := r.resolveOrder(sb.GetNode(), targets)
	desc, ok := r.descending(sb)
	if !ok {
		return "by " + r.raw(k)
	}
	var p string
	switch {
	case measure != "" && t.text == measure && desc:
		p = "highest first"
	case measure != "" && t.text == measure:
		p = "lowest first"
	case desc:
		p = "by " + t.text + " descending"
	default:
		p = "by " + t.text
	}
	return p + nullsOrder(sb, desc)
}

// resolveOrder is resolve, plus output names: ORDER BY total sorts by the
// target named total.
func (r *renderer) resolveOrder(k *pg_query.Node, targets []target) target {
	if f := k.GetColumnRef().GetFields(); len(f) == 1 && f[0].GetString_() != nil {
		for _, t := range targets {
			if t.name != "" && t.name == f[0].GetString_().GetSval() {
				return t
			}
		}
	}
	return r.resolve(k, targets)
}

// descending reads a key's direction; USING < and > are ASC and DESC.
func (r *renderer) descending(sb *pg_query.SortBy) (desc, ok bool) {
	switch sb.GetSortbyDir() {
	case pg_query.SortByDir_SORTBY_DESC:
		return true, true
	case pg_query.SortByDir_SORTBY_USING:
		switch opName(sb.GetUseOp()) {
		case "<":
			return false, true
		case ">":
			return true, true
		}
		return false, false
	}
	return false, true
}

// nullsOrder mentions NULLS FIRST/LAST only where it is not the default
// (NULLs sort as the highest values).
func nullsOrder(sb *pg_query.SortBy, desc bool) string {
	switch sb.GetSortbyNulls() {
	case pg_query.SortByNulls_SORTBY_NULLS_FIRST:
		if !desc {
			return " (empty values first)"
		}
	case pg_query.SortByNulls_SORTBY_NULLS_LAST:
		if desc {
			return " (empty values last)"
		}
	}
	return ""
}

// limit renders LIMIT/FETCH and OFFSET.
func (r *renderer) limit(s *pg_query.SelectStmt) string {
	out := ""
	if n := s.GetLimitCount(); n != nil && !isNull(n) {
		if len(s.GetSortClause()) > 0 {
			out = ", top " + r.expr(n)
		} else {
			out = ", at most " + r.expr(n) + " rows"
			if c := n.GetAConst(); c != nil && c.GetIval() != nil && c.GetIval().GetIval() == 1 {
				out = ", at most 1 row"
			}
		}
		if s.GetLimitOption() == pg_query.LimitOption_LIMIT_OPTION_WITH_TIES {
			out += " (with ties)"
		}
	}
	if n := s.GetLimitOffset(); n != nil && !isNull(n) {
		out += ", skipping the first " + r.expr(n)
	}
	return out
}

// with renders the CTEs after the query that uses them:
// "count of big (big is all orders where amount is greater than 100)".
func (r *renderer) with(w *pg_query.WithClause) string {
	if w == nil {
		return ""
	}
	parts := make([]string, 0, len(w.GetCtes()))
	for _, n := range w.GetCtes() {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			parts = append(parts, r.raw(n))
			continue
		}
		parts = append(parts, r.cte(cte, w.GetRecursive()))
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

func (r *renderer) cte(cte *pg_query.CommonTableExpr, recursive bool) string {
	name := cte.GetCtename()
	if cols := strs(cte.GetAliascolnames()); len(cols) > 0 {
		name += "(" + strings.Join(cols, ", ") + ")"
	}
	if cte.GetSearchClause() != nil || cte.GetCycleClause() != nil {
		r.partial = true
	}
	body := r.query(cte.GetCtequery().GetSelectStmt())
	if recursive {
		return name + " is, recursively, " + body
	}
	return name + " is " + body
}

// setOp renders UNION, INTERSECT and EXCEPT.
func (r *renderer) setOp(s *pg_query.SelectStmt) string {
	l, rt := r.setSide(s.GetLarg()), r.setSide(s.GetRarg())
	dup := ""
	if s.GetAll() {
		dup = " (keeping duplicates)"
	}
	switch s.GetOp() {
	case pg_query.SetOperation_SETOP_UNION:
		if s.GetAll() {
			return l + ", together with " + rt
		}
		return l + ", together with " + rt + ", without duplicates"
	case pg_query.SetOperation_SETOP_INTERSECT:
		return "rows both in " + l + " and in " + rt + dup
	case pg_query.SetOperation_SETOP_EXCEPT:
		return l + ", except rows in " + rt + dup
	}
	return r.raw(nil)
}

// setSide renders an operand of a set operation, in parentheses when it is
// itself one, or is sorted or limited.
func (r *renderer) setSide(s *pg_query.SelectStmt) string {
	q := r.query(s)
	if s.GetLarg() != nil || len(s.GetSortClause()) > 0 || s.GetLimitCount() != nil || s.GetWithClause() != nil {
		return "(" + q + ")"
	}
	return q
}

// values renders VALUES (…), (…).
func (r *renderer) values(rows []*pg_query.Node) string {
	out := make([]string, len(rows))
	for i, row := range rows {
		out[i] = "(" + strings.Join(r.exprs(row.GetList().GetItems()), ", ") + ")"
	}
	if len(out) == 1 {
		return "the row " + out[0]
	}
	return "the rows " + list(out, "and")
}

// exprs renders each node.
func (r *renderer) exprs(nodes []*pg_query.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = r.expr(n)
	}
	return out
}

func soleMeasure(targets []target) string {
	found := ""
	for _, t := range targets {
		if t.measure {
			if found != "" {
				return ""
			}
			found = t.text
		}
	}
	return found
}

func anyStar(targets []target) bool {
	for _, t := range targets {
		if t.star {
			return true
		}
	}
	return false
}

// colName is the name PostgreSQL gives an unnamed target, for the forms
// that have one; "" otherwise.
func colName(n *pg_query.Node) string {
	switch {
	case n.GetColumnRef() != nil:
		f := n.GetColumnRef().GetFields()
		return f[len(f)-1].GetString_().GetSval()
	case n.GetFuncCall() != nil:
		return funcName(n.GetFuncCall())
	case n.GetTypeCast() != nil:
		if name := colName(n.GetTypeCast().GetArg()); name != "" {
			return name
		}
		return lastName(n.GetTypeCast().GetTypeName().GetNames())
	case n.GetCaseExpr() != nil:
		return "case"
	case n.GetCoalesceExpr() != nil:
		return "coalesce"
	}
	return ""
}

// topLevelComma reports a ", " in s outside parentheses and quotes, which
// would blur a list of targets.
func topLevelComma(s string) bool {
	depth, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == ',' && depth == 0 && strings.HasPrefix(s[i:], ", "):
			return true
		}
	}
	return false
}
