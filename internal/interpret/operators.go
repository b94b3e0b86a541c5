package interpret

import (
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// comparisons are the words for comparison operators: plain, and when one
// side is a date or time.
var comparisons = map[string][2]string{
	"=":  {"is", "is"},
	"<>": {"is not", "is not"},
	"!=": {"is not", "is not"},
	"<":  {"is less than", "is before"},
	"<=": {"is at most", "is on or before"},
	">":  {"is greater than", "is after"},
	">=": {"is at least", "is on or after"},
}

var arithmetic = map[string]string{
	"+": "plus", "-": "minus", "*": "times", "/": "divided by", "%": "modulo", "^": "to the power of",
	"||": "followed by",
}

// operators are the other binary operators with a phrase.
var operators = map[string]string{
	"~": "matches the regular expression", "~*": "matches, ignoring case, the regular expression",
	"!~": "does not match the regular expression", "!~*": "does not match, ignoring case, the regular expression",
	"@>": "contains", "<@": "is contained in", "&&": "overlaps", "?": "has the key",
	"->": "'s element", "->>": "'s element",
}

// aExpr renders an operator expression.
func (r *renderer) aExpr(a *pg_query.A_Expr) string {
	l, rt, op := a.GetLexpr(), a.GetRexpr(), opName(a.GetName())
	switch a.GetKind() {
	case pg_query.A_Expr_Kind_AEXPR_OP:
		return r.op(a, op)
	case pg_query.A_Expr_Kind_AEXPR_OP_ANY, pg_query.A_Expr_Kind_AEXPR_OP_ALL:
		return r.quantified(a, op)
	case pg_query.A_Expr_Kind_AEXPR_DISTINCT:
		return r.side(l) + " is distinct from " + r.side(rt)
	case pg_query.A_Expr_Kind_AEXPR_NOT_DISTINCT:
		return r.side(l) + " is not distinct from " + r.side(rt)
	case pg_query.A_Expr_Kind_AEXPR_NULLIF:
		return r.side(l) + " (empty when it is " + r.side(rt) + ")"
	case pg_query.A_Expr_Kind_AEXPR_IN:
		return r.in(l, rt, op == "<>")
	case pg_query.A_Expr_Kind_AEXPR_LIKE, pg_query.A_Expr_Kind_AEXPR_ILIKE:
		return r.like(l, rt, op)
	case pg_query.A_Expr_Kind_AEXPR_BETWEEN, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN,
		pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM, pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM:
		return r.between(a)
	}
	return r.raw(&pg_query.Node{Node: &pg_query.Node_AExpr{AExpr: a}})
}

// op renders a binary or prefix operator.
func (r *renderer) op(a *pg_query.A_Expr, op string) string {
	l, rt := a.GetLexpr(), a.GetRexpr()
	if l == nil {
		switch op {
		case "-":
			if c := rt.GetAConst(); c != nil {
				return "-" + constant(c)
			}
			return "minus " + r.operand(rt)
		case "+":
			return r.operand(rt)
		}
		return r.raw(&pg_query.Node{Node: &pg_query.Node_AExpr{AExpr: a}})
	}
	if w, ok := comparisons[op]; ok {
		return r.side(l) + " " + w[dateIndex(l, rt)] + " " + r.side(rt)
	}
	if w, ok := arithmetic[op]; ok {
		return r.operand(l) + " " + w + " " + r.operand(rt)
	}
	if w, ok := operators[op]; ok {
		if strings.HasPrefix(w, "'") {
			return r.operand(l) + w + " " + r.operand(rt)
		}
		return r.operand(l) + " " + w + " " + r.operand(rt)
	}
	return r.raw(&pg_query.Node{Node: &pg_query.Node_AExpr{AExpr: a}})
}

// quantified renders x op ANY (array) and x op ALL (array).
func (r *renderer) quantified(a *pg_query.A_Expr, op string) string {
	q, ok := quantifier(op, a.GetKind() == pg_query.A_Expr_Kind_AEXPR_OP_ANY)
	if !ok {
		return r.raw(&pg_query.Node{Node: &pg_query.Node_AExpr{AExpr: a}})
	}
	return r.side(a.GetLexpr()) + " " + q + " " + r.quantifiedList(a.GetRexpr())
}

// quantifier phrases op ANY and op ALL: "is one of", "is none of",
// "is greater than at least one of", "is greater than every one of".
func quantifier(op string, anyOf bool) (string, bool) {
	w, ok := comparisons[op]
	switch {
	case !ok:
		return "", false
	case op == "=" && anyOf:
		return "is one of", true
	case op == "=":
		return "equals every one of", true
	case anyOf && w[0] == "is not":
		return "differs from at least one of", true
	case w[0] == "is not":
		return "is none of", true
	case anyOf:
		return w[0] + " at least one of", true
	}
	return w[0] + " every one of", true
}

func (r *renderer) quantifiedList(n *pg_query.Node) string {
	if arr := n.GetAArrayExpr(); arr != nil {
		return "(" + strings.Join(r.exprs(arr.GetElements()), ", ") + ")"
	}
	return "the elements of " + r.operand(n)
}

// in renders x IN (a, b) and x NOT IN (a, b).
func (r *renderer) in(l, rt *pg_query.Node, not bool) string {
	items := r.exprs(rt.GetList().GetItems())
	verb := map[bool][2]string{false: {"is", "is one of"}, true: {"is not", "is none of"}}[not]
	if len(items) == 1 {
		return r.side(l) + " " + verb[0] + " " + items[0]
	}
	return r.side(l) + " " + verb[1] + " (" + strings.Join(items, ", ") + ")"
}

// like renders LIKE and ILIKE, reading simple patterns: 'A%' starts with A.
func (r *renderer) like(l, rt *pg_query.Node, op string) string {
	not := strings.HasPrefix(op, "!")
	suffix := ""
	if strings.HasSuffix(op, "*") {
		suffix = " (ignoring case)"
	}
	return r.side(l) + " " + r.pattern(rt, not) + suffix
}

// pattern phrases a LIKE pattern; one with wildcards or escapes inside is
// quoted as a pattern.
func (r *renderer) pattern(n *pg_query.Node, not bool) string {
	verbs := map[bool][5]string{
		false: {"is", "starts with", "ends with", "contains", "matches the pattern"},
		true:  {"is not", "does not start with", "does not end with", "does not contain", "does not match the pattern"},
	}[not]
	s := n.GetAConst().GetSval()
	if s == nil {
		return verbs[4] + " " + r.side(n)
	}
	p := s.GetSval()
	inner := strings.TrimSuffix(strings.TrimPrefix(p, "%"), "%")
	if inner == "" || strings.ContainsAny(inner, `%_\`) {
		return verbs[4] + " " + quote(p)
	}
	lit := "'" + strings.ReplaceAll(inner, "'", "''") + "'"
	switch pre, post := strings.HasPrefix(p, "%"), strings.HasSuffix(p, "%") && len(p) > 1; {
	case pre && post:
		return verbs[3] + " " + lit
	case pre:
		return verbs[2] + " " + lit
	case post:
		return verbs[1] + " " + lit
	}
	return verbs[0] + " " + lit
}

// between renders BETWEEN and its forms (bounds included).
func (r *renderer) between(a *pg_query.A_Expr) string {
	b := a.GetRexpr().GetList().GetItems()
	if len(b) != 2 {
		return r.raw(&pg_query.Node{Node: &pg_query.Node_AExpr{AExpr: a}})
	}
	kind := a.GetKind()
	out := r.side(a.GetLexpr()) + " is between "
	if kind == pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN || kind == pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM {
		out = r.side(a.GetLexpr()) + " is not between "
	}
	out += r.side(b[0]) + " and " + r.side(b[1])
	if kind == pg_query.A_Expr_Kind_AEXPR_BETWEEN_SYM || kind == pg_query.A_Expr_Kind_AEXPR_NOT_BETWEEN_SYM {
		out += " (in either order)"
	}
	return out
}

// dateIndex picks the date words when either side of a comparison is a
// date or time.
func dateIndex(l, r *pg_query.Node) int {
	if isDate(l) || isDate(r) {
		return 1
	}
	return 0
}

var dateTypes = map[string]bool{"date": true, "timestamp": true, "timestamptz": true, "time": true, "timetz": true}

var dateFuncs = map[string]bool{
	"now": true, "date_trunc": true, "make_date": true, "make_timestamp": true, "make_timestamptz": true,
	"to_date": true, "to_timestamp": true, "date": true, "clock_timestamp": true, "statement_timestamp": true,
	"transaction_timestamp": true, "date_bin": true,
}

// isDate reports an expression that is plainly a date or time: a date
// literal, a cast to a date type, a date function, CURRENT_DATE and the
// like, or one of those plus or minus something.
func isDate(n *pg_query.Node) bool {
	switch {
	case n.GetAConst().GetSval() != nil:
		return dateRE.MatchString(n.GetAConst().GetSval().GetSval())
	case n.GetTypeCast() != nil:
		return dateTypes[lastName(n.GetTypeCast().GetTypeName().GetNames())]
	case n.GetFuncCall() != nil:
		return dateFuncs[funcName(n.GetFuncCall())]
	case n.GetSqlvalueFunction() != nil:
		op := n.GetSqlvalueFunction().GetOp()
		return op >= pg_query.SQLValueFunctionOp_SVFOP_CURRENT_DATE && op <= pg_query.SQLValueFunctionOp_SVFOP_LOCALTIMESTAMP_N
	case n.GetAExpr() != nil:
		a := n.GetAExpr()
		op := opName(a.GetName())
		return a.GetKind() == pg_query.A_Expr_Kind_AEXPR_OP && (op == "+" || op == "-") && a.GetLexpr() != nil && isDate(a.GetLexpr())
	}
	return false
}

func isArith(n *pg_query.Node) bool {
	a := n.GetAExpr()
	if a == nil || a.GetKind() != pg_query.A_Expr_Kind_AEXPR_OP {
		return false
	}
	_, ok := arithmetic[opName(a.GetName())]
	return ok
}

// dateRanges finds, among AND's terms, pairs x >= 'start' AND x < 'end'
// where start to end is exactly a year, month or day, and replaces each
// pair with a List node [x, start, end] that boolArgs renders as
// "x is in 2024", "x is in March 2024" or "x is on 2024-03-05".
func dateRanges(args []*pg_query.Node) []*pg_query.Node {
	out := make([]*pg_query.Node, 0, len(args))
	used := make([]bool, len(args))
	for i, a := range args {
		if used[i] {
			continue
		}
		out = append(out, a)
		col, start, ok := bound(a, ">=")
		if !ok {
			continue
		}
		for j := i + 1; j < len(args); j++ {
			col2, end, ok := bound(args[j], "<")
			if ok && !used[j] && sameColumn(col, col2) && period(start, end) != "" {
				used[j] = true
				out[len(out)-1] = &pg_query.Node{Node: &pg_query.Node_List{List: &pg_query.List{Items: []*pg_query.Node{col, a, args[j]}}}}
				break
			}
		}
	}
	return out
}

// bound matches column op 'date literal' (the literal possibly cast to a
// date type) and returns the column and the date.
func bound(n *pg_query.Node, op string) (*pg_query.Node, time.Time, bool) {
	a := n.GetAExpr()
	if a == nil || a.GetKind() != pg_query.A_Expr_Kind_AEXPR_OP || opName(a.GetName()) != op || a.GetLexpr().GetColumnRef() == nil {
		return nil, time.Time{}, false
	}
	v := a.GetRexpr()
	if tc := v.GetTypeCast(); tc != nil && dateTypes[lastName(tc.GetTypeName().GetNames())] {
		v = tc.GetArg()
	}
	t, err := time.Parse(time.DateOnly, v.GetAConst().GetSval().GetSval())
	return a.GetLexpr(), t, err == nil
}

func sameColumn(a, b *pg_query.Node) bool {
	return strings.Join(strs(a.GetColumnRef().GetFields()), ".") == strings.Join(strs(b.GetColumnRef().GetFields()), ".")
}

// period names the span from start to end: "2024", "March 2024",
// "2024-03-05", or "" for any other span.
func period(start, end time.Time) string {
	switch {
	case start.Month() == time.January && start.Day() == 1 && end.Equal(start.AddDate(1, 0, 0)):
		return "in " + start.Format("2006")
	case start.Day() == 1 && end.Equal(start.AddDate(0, 1, 0)):
		return "in " + start.Format("January 2006")
	case end.Equal(start.AddDate(0, 0, 1)):
		return "on " + start.Format(time.DateOnly)
	}
	return ""
}

// dateRange renders a pair found by dateRanges.
func (r *renderer) dateRange(items []*pg_query.Node) string {
	_, start, _ := bound(items[1], ">=")
	_, end, _ := bound(items[2], "<")
	return r.expr(items[0]) + " is " + period(start, end)
}
