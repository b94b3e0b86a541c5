package interpret

import (
	"regexp"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/dbchat/dbchat/internal/sqlguard"
)

// expr renders a value expression.
func (r *renderer) expr(n *pg_query.Node) string {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_ColumnRef:
		return r.column(v.ColumnRef)
	case *pg_query.Node_AConst:
		return constant(v.AConst)
	case *pg_query.Node_AStar:
		return "all columns"
	case *pg_query.Node_AExpr:
		return r.aExpr(v.AExpr)
	case *pg_query.Node_BoolExpr:
		return r.boolExpr(v.BoolExpr, false)
	case *pg_query.Node_NullTest:
		return r.nullTest(v.NullTest)
	case *pg_query.Node_BooleanTest:
		return r.booleanTest(v.BooleanTest)
	case *pg_query.Node_FuncCall:
		return r.funcCall(v.FuncCall)
	case *pg_query.Node_TypeCast:
		return r.cast(v.TypeCast)
	case *pg_query.Node_SubLink:
		return r.subLink(v.SubLink)
	case *pg_query.Node_String_:
		return v.String_.GetSval()
	}
	return r.other(n)
}

// other renders the less common expressions.
func (r *renderer) other(n *pg_query.Node) string {
	switch v := n.GetNode().(type) {
	case *pg_query.Node_CaseExpr:
		return r.caseExpr(v.CaseExpr)
	case *pg_query.Node_CoalesceExpr:
		return r.coalesce(v.CoalesceExpr.GetArgs())
	case *pg_query.Node_MinMaxExpr:
		return r.minMax(v.MinMaxExpr)
	case *pg_query.Node_AArrayExpr:
		return "the list (" + strings.Join(r.exprs(v.AArrayExpr.GetElements()), ", ") + ")"
	case *pg_query.Node_RowExpr:
		return "(" + strings.Join(r.exprs(v.RowExpr.GetArgs()), ", ") + ")"
	case *pg_query.Node_AIndirection:
		return r.indirection(v.AIndirection)
	case *pg_query.Node_SqlvalueFunction:
		return r.sqlValue(n)
	case *pg_query.Node_CollateClause:
		return r.operand(v.CollateClause.GetArg()) + " (collation " + strings.Join(strs(v.CollateClause.GetCollname()), ".") + ")"
	}
	return r.raw(n)
}

// column renders a column reference; see names for qualifiers.
func (r *renderer) column(c *pg_query.ColumnRef) string {
	f := c.GetFields()
	parts := make([]string, len(f))
	for i, p := range f {
		parts[i] = p.GetString_().GetSval()
		if p.GetAStar() != nil {
			parts[i] = "*"
		}
	}
	if len(parts) == 3 {
		parts = parts[1:] // schema.table.column
	}
	switch len(parts) {
	case 1:
		return strings.Replace(parts[0], "*", "all columns", 1)
	case 2:
		q := r.names.qualifier(parts[0])
		if r.local(parts[0]) {
			q = ""
		}
		switch {
		case parts[1] == "*" && q == "":
			return "all columns"
		case parts[1] == "*":
			return "all columns of " + q
		case q == "":
			return parts[1]
		}
		return q + "." + parts[1]
	}
	return r.raw(&pg_query.Node{Node: &pg_query.Node_ColumnRef{ColumnRef: c}})
}

// constant renders a literal: numbers and booleans as written, a date or
// timestamp bare, other text in single quotes.
func constant(c *pg_query.A_Const) string {
	switch {
	case c.GetIsnull():
		return "null"
	case c.GetIval() != nil:
		return strconv.FormatInt(int64(c.GetIval().GetIval()), 10)
	case c.GetFval() != nil:
		return c.GetFval().GetFval()
	case c.GetBoolval() != nil:
		return strconv.FormatBool(c.GetBoolval().GetBoolval())
	case c.GetSval() != nil:
		return quote(c.GetSval().GetSval())
	case c.GetBsval() != nil:
		return bits(c.GetBsval().GetBsval())
	}
	return "0" // an integer constant 0 has no value set
}

// bits renders a bit-string literal, stored as b101 or x1F.
func bits(s string) string {
	switch {
	case strings.HasPrefix(s, "b"):
		return "the bits " + s[1:]
	case strings.HasPrefix(s, "x"):
		return "the hexadecimal bits " + s[1:]
	}
	return "the bits " + s
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$`)

func quote(s string) string {
	if dateRE.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// operand renders n as a part of a larger phrase, in parentheses when it
// is itself an operation: "sum of (amount times 2)".
func (r *renderer) operand(n *pg_query.Node) string {
	s := r.expr(n)
	switch n.GetNode().(type) {
	case *pg_query.Node_AExpr, *pg_query.Node_BoolExpr, *pg_query.Node_NullTest, *pg_query.Node_BooleanTest:
		if !isNegative(n) {
			return "(" + s + ")"
		}
	}
	return s
}

// side renders an operand of a comparison: arithmetic reads without
// parentheses ("amount times 2 is greater than 100").
func (r *renderer) side(n *pg_query.Node) string {
	if isArith(n) {
		return r.expr(n)
	}
	return r.operand(n)
}

// cond renders a condition: a bare boolean column reads "x is true".
func (r *renderer) cond(n *pg_query.Node) string {
	switch {
	case n.GetColumnRef() != nil:
		return r.expr(n) + " is true"
	case n.GetBoolExpr() != nil:
		return r.boolExpr(n.GetBoolExpr(), true)
	}
	return r.expr(n)
}

// boolExpr renders AND, OR and NOT; inCond says the value is a condition
// (WHERE, ON, HAVING, FILTER), where NOT x means "x is false".
func (r *renderer) boolExpr(b *pg_query.BoolExpr, inCond bool) string {
	args := b.GetArgs()
	switch b.GetBoolop() {
	case pg_query.BoolExprType_NOT_EXPR:
		if len(args) == 1 {
			return r.not(args[0], inCond)
		}
	case pg_query.BoolExprType_AND_EXPR:
		return strings.Join(r.boolArgs(dateRanges(args), b.GetBoolop(), inCond), " and ")
	case pg_query.BoolExprType_OR_EXPR:
		return strings.Join(r.boolArgs(args, b.GetBoolop(), inCond), " or ")
	}
	return r.raw(&pg_query.Node{Node: &pg_query.Node_BoolExpr{BoolExpr: b}})
}

// boolArgs renders the terms of AND or OR, parenthesising a nested OR
// in AND and AND in OR.
func (r *renderer) boolArgs(args []*pg_query.Node, op pg_query.BoolExprType, inCond bool) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if dr := a.GetList(); dr != nil { // a date range, see dateRanges
			out[i] = r.dateRange(dr.GetItems())
			continue
		}
		out[i] = r.term(a, inCond)
		if b := a.GetBoolExpr(); b != nil && b.GetBoolop() != op && b.GetBoolop() != pg_query.BoolExprType_NOT_EXPR {
			out[i] = "(" + out[i] + ")"
		}
	}
	return out
}

func (r *renderer) term(n *pg_query.Node, inCond bool) string {
	if inCond {
		return r.cond(n)
	}
	return r.expr(n)
}

// not renders NOT x, in the positive form where one reads better.
func (r *renderer) not(n *pg_query.Node, inCond bool) string {
	if s := n.GetSubLink(); s != nil {
		switch {
		case s.GetSubLinkType() == pg_query.SubLinkType_EXISTS_SUBLINK:
			return "there is no row in " + r.rowsOf(s.GetSubselect().GetSelectStmt())
		case s.GetSubLinkType() == pg_query.SubLinkType_ANY_SUBLINK && len(s.GetOperName()) == 0:
			return r.side(s.GetTestexpr()) + " is not in (" + r.query(s.GetSubselect().GetSelectStmt()) + ")"
		}
	}
	if inCond && n.GetColumnRef() != nil {
		return r.expr(n) + " is false"
	}
	if n.GetColumnRef() != nil {
		return "not " + r.expr(n)
	}
	// Inside NOT an unknown is not false: no "is true" rewriting there.
	return "not (" + r.expr(n) + ")"
}

func (r *renderer) nullTest(t *pg_query.NullTest) string {
	if t.GetNulltesttype() == pg_query.NullTestType_IS_NOT_NULL {
		return r.side(t.GetArg()) + " is not empty"
	}
	return r.side(t.GetArg()) + " is empty"
}

var boolTests = map[pg_query.BoolTestType]string{
	pg_query.BoolTestType_IS_TRUE:        "is true",
	pg_query.BoolTestType_IS_NOT_TRUE:    "is not true",
	pg_query.BoolTestType_IS_FALSE:       "is false",
	pg_query.BoolTestType_IS_NOT_FALSE:   "is not false",
	pg_query.BoolTestType_IS_UNKNOWN:     "is unknown",
	pg_query.BoolTestType_IS_NOT_UNKNOWN: "is not unknown",
}

func (r *renderer) booleanTest(t *pg_query.BooleanTest) string {
	if w, ok := boolTests[t.GetBooltesttype()]; ok {
		return r.side(t.GetArg()) + " " + w
	}
	return r.raw(&pg_query.Node{Node: &pg_query.Node_BooleanTest{BooleanTest: t}})
}

// caseExpr renders CASE as "('a' if c1, else 'b' if c2, else 'c')".
func (r *renderer) caseExpr(c *pg_query.CaseExpr) string {
	var parts []string
	for _, n := range c.GetArgs() {
		w := n.GetCaseWhen()
		if w == nil {
			return r.raw(n)
		}
		test := r.cond(w.GetExpr())
		if c.GetArg() != nil {
			test = r.side(c.GetArg()) + " is " + r.side(w.GetExpr())
		}
		parts = append(parts, r.expr(w.GetResult())+" if "+test)
	}
	last := "empty"
	if d := c.GetDefresult(); d != nil {
		last = r.expr(d)
	}
	return "(" + strings.Join(append(parts, last), ", else ") + ")"
}

func (r *renderer) coalesce(args []*pg_query.Node) string {
	items := r.exprs(args)
	if len(items) == 2 {
		return items[0] + " (or " + items[1] + " when empty)"
	}
	return "the first non-empty of " + list(items, "and")
}

func (r *renderer) minMax(m *pg_query.MinMaxExpr) string {
	items := r.exprs(m.GetArgs())
	word := map[bool][2]string{true: {"greater", "greatest"}, false: {"lesser", "least"}}[m.GetOp() == pg_query.MinMaxOp_IS_GREATEST]
	if len(items) == 2 {
		return "the " + word[0] + " of " + list(items, "and")
	}
	return "the " + word[1] + " of " + list(items, "and")
}

// indirection renders subscripts and field selection; the sandbox admits
// (x).f only for an allowlisted function f, which it calls: f(x).
func (r *renderer) indirection(a *pg_query.A_Indirection) string {
	out := r.operand(a.GetArg())
	for _, n := range a.GetIndirection() {
		switch {
		case n.GetAIndices() != nil && !n.GetAIndices().GetIsSlice():
			out = "element " + r.expr(n.GetAIndices().GetUidx()) + " of " + out
		case n.GetAIndices() != nil:
			out = "elements " + r.bound(n.GetAIndices().GetLidx(), "first") + " to " + r.bound(n.GetAIndices().GetUidx(), "last") + " of " + out
		case n.GetString_() != nil && allowed[n.GetString_().GetSval()]:
			out = r.scalar(n.GetString_().GetSval(), []string{out}, nil)
		default:
			return r.raw(&pg_query.Node{Node: &pg_query.Node_AIndirection{AIndirection: a}})
		}
	}
	return out
}

func (r *renderer) bound(n *pg_query.Node, open string) string {
	if n == nil {
		return "the " + open
	}
	return r.expr(n)
}

// allowed are the functions the sandbox admits (internal/sqlguard).
var allowed = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range sqlguard.AllowedFunctions() {
		m[f] = true
	}
	return m
}()

var sqlValues = map[pg_query.SQLValueFunctionOp]string{
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE:        "today",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME:        "the current time",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIME_N:      "the current time",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP:   "now",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_TIMESTAMP_N: "now",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME:           "the current local time",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIME_N:         "the current local time",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP:      "now (local time)",
	pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N:    "now (local time)",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_ROLE:        "the current role",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_USER:        "the current user",
	pg_query.SQLValueFunctionOp_SVFOP_USER:                "the current user",
	pg_query.SQLValueFunctionOp_SVFOP_SESSION_USER:        "the session user",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_CATALOG:     "the current database",
	pg_query.SQLValueFunctionOp_SVFOP_CURRENT_SCHEMA:      "the current schema",
}

func (r *renderer) sqlValue(n *pg_query.Node) string {
	if s, ok := sqlValues[n.GetSqlvalueFunction().GetOp()]; ok {
		return s
	}
	return r.raw(n)
}

func isNull(n *pg_query.Node) bool { return n.GetAConst().GetIsnull() }

// isNegative reports a negative number, which needs no parentheses.
func isNegative(n *pg_query.Node) bool {
	a := n.GetAExpr()
	return a != nil && a.GetLexpr() == nil && opName(a.GetName()) == "-" && a.GetRexpr().GetAConst() != nil
}

func isStar(n *pg_query.Node) bool {
	f := n.GetColumnRef().GetFields()
	return len(f) > 0 && f[len(f)-1].GetAStar() != nil
}

func isBareStar(n *pg_query.Node) bool { return isStar(n) && len(n.GetColumnRef().GetFields()) == 1 }

// opName is an operator's name without its schema.
func opName(name []*pg_query.Node) string { return lastName(name) }

func lastName(name []*pg_query.Node) string {
	if len(name) == 0 {
		return ""
	}
	return name[len(name)-1].GetString_().GetSval()
}
