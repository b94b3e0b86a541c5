package interpret

import (
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// aggregates are phrases for aggregate functions of one argument.
var aggregates = map[string]string{
	"count": "count of %s", "sum": "sum of %s", "avg": "average of %s", "min": "minimum of %s",
	"max": "maximum of %s", "stddev": "standard deviation of %s", "stddev_samp": "standard deviation of %s",
	"stddev_pop": "population standard deviation of %s", "variance": "variance of %s",
	"var_samp": "variance of %s", "var_pop": "population variance of %s",
	"bool_and": "whether every %s is true", "every": "whether every %s is true", "bool_or": "whether any %s is true",
	"array_agg": "list of %s", "json_agg": "JSON list of %s", "jsonb_agg": "JSON list of %s",
	"bit_and": "bitwise AND of %s", "bit_or": "bitwise OR of %s",
}

// otherAggregates have no one-argument phrase; they are written as calls.
var otherAggregates = map[string]bool{
	"string_agg": true, "json_object_agg": true, "jsonb_object_agg": true, "percentile_cont": true,
	"percentile_disc": true, "mode": true, "corr": true, "covar_pop": true, "covar_samp": true,
	"regr_slope": true, "regr_intercept": true, "regr_r2": true, "regr_count": true,
}

// scalars are phrases for functions of one argument.
var scalars = map[string]string{
	"lower": "lower-case %s", "upper": "upper-case %s", "initcap": "%s with initial capitals",
	"length": "length of %s", "char_length": "length of %s", "character_length": "length of %s",
	"abs": "absolute value of %s", "ceil": "%s rounded up", "ceiling": "%s rounded up",
	"floor": "%s rounded down", "round": "%s rounded", "trunc": "%s truncated", "sqrt": "square root of %s",
	"trim": "%s without surrounding spaces", "btrim": "%s without surrounding spaces",
	"ltrim": "%s without leading spaces", "rtrim": "%s without trailing spaces",
	"date": "%s as date", "text": "%s as text", "age": "age of %s", "reverse": "%s reversed",
	"md5": "MD5 hash of %s", "cardinality": "number of elements of %s", "json_typeof": "JSON type of %s",
	"jsonb_typeof": "JSON type of %s", "to_json": "%s as JSON", "to_jsonb": "%s as JSON",
	"lag": "previous row's %s", "lead": "next row's %s", "first_value": "first %s", "last_value": "last %s",
}

// windowFuncs are phrases for window functions; lag, lead and the
// *_value functions of one argument have phrases in scalars.
var windowFuncs = map[string]string{
	"row_number": "row number", "rank": "rank", "dense_rank": "dense rank", "percent_rank": "percent rank",
	"cume_dist": "cumulative distribution",
}

// funcCall renders a function call, with DISTINCT, ORDER BY, FILTER,
// WITHIN GROUP and OVER.
func (r *renderer) funcCall(f *pg_query.FuncCall) string {
	name := funcName(f)
	var s string
	switch {
	case f.GetAggWithinGroup():
		s = r.withinGroup(name, f)
	case aggregates[name] != "" || otherAggregates[name]:
		s = r.aggregate(name, f)
	default:
		s = r.scalar(name, r.operands(f.GetArgs()), f.GetArgs())
	}
	if flt := f.GetAggFilter(); flt != nil {
		s += " (only rows where " + r.cond(flt) + ")"
	}
	if w := f.GetOver(); w != nil {
		s = r.windowed(s, w, aggregates[name] != "" || otherAggregates[name])
	}
	return s
}

// aggregate renders count(*), sum(DISTINCT x), string_agg(x, ', ' ORDER
// BY y) and the like.
func (r *renderer) aggregate(name string, f *pg_query.FuncCall) string {
	args := r.operands(f.GetArgs())
	var s string
	switch {
	case f.GetAggStar() || countsRows(f):
		s = name + " of rows"
	case name == "count" && !f.GetAggDistinct() && len(args) == 1:
		s = "count of non-empty " + args[0]
	case aggregates[name] != "" && len(args) == 1:
		arg := args[0]
		if f.GetAggDistinct() {
			arg = "distinct " + arg
		}
		s = fmt.Sprintf(aggregates[name], arg)
	case name == "string_agg" && len(args) == 2 && !f.GetAggDistinct():
		s = "list of " + args[0] + " separated by " + args[1]
	default:
		s = r.call(name, args, f.GetAggDistinct())
	}
	if order := f.GetAggOrder(); len(order) > 0 {
		s += " (in order of " + r.sortList(order) + ")"
	}
	return s
}

// withinGroup renders ordered-set aggregates: percentile_cont(0.5) WITHIN
// GROUP (ORDER BY x) is the interpolated 0.5 percentile of x.
func (r *renderer) withinGroup(name string, f *pg_query.FuncCall) string {
	order := f.GetAggOrder()
	sb := order[0:min(1, len(order))]
	if len(sb) == 0 || sb[0].GetSortBy() == nil || len(order) > 1 {
		return r.call(name, r.operands(f.GetArgs()), false) + " within group (" + r.raw(nil) + ")"
	}
	of := r.operand(sb[0].GetSortBy().GetNode())
	if sb[0].GetSortBy().GetSortbyDir() == pg_query.SortByDir_SORTBY_DESC {
		of += " counted from the highest"
	}
	args := r.operands(f.GetArgs())
	switch {
	case name == "mode" && len(args) == 0:
		return "most frequent " + of
	case name == "percentile_cont" && len(args) == 1:
		return "percentile " + args[0] + " of " + of + " (interpolated)"
	case name == "percentile_disc" && len(args) == 1:
		return "percentile " + args[0] + " of " + of
	}
	return r.call(name, args, false) + " within the group ordered by " + of
}

// scalar renders a plain function call: a phrase where there is one, else
// name(args), which is exact. nodes, when given, are the arguments
// unrendered (for units such as date_trunc's 'month').
func (r *renderer) scalar(name string, args []string, nodes []*pg_query.Node) string {
	switch n := len(args); {
	case n == 1 && scalars[name] != "":
		return fmt.Sprintf(scalars[name], args[0])
	case n == 0 && windowFuncs[name] != "":
		return windowFuncs[name]
	case n == 0 && (name == "now" || name == "transaction_timestamp" || name == "statement_timestamp"):
		return "now"
	case n == 2 && name == "date_trunc" && unit(nodes) != "":
		return args[1] + " truncated to the " + unit(nodes)
	case n == 2 && (name == "extract" || name == "date_part") && unit(nodes) != "":
		return unit(nodes) + " of " + args[1]
	case n == 2 && name == "round":
		return args[0] + " rounded to " + args[1] + " decimal places"
	case n == 2 && name == "to_char":
		return args[0] + " formatted as " + args[1]
	case n == 2 && name == "age":
		return "time from " + args[1] + " to " + args[0]
	case n >= 2 && name == "concat":
		return strings.Join(args, " followed by ")
	}
	return r.call(name, args, false)
}

// unit is the text of a date unit given as the first argument ('month').
func unit(nodes []*pg_query.Node) string {
	if len(nodes) == 0 {
		return ""
	}
	return nodes[0].GetAConst().GetSval().GetSval()
}

// call writes name(args).
func (r *renderer) call(name string, args []string, distinct bool) string {
	d := ""
	if distinct {
		d = "distinct "
	}
	return name + "(" + d + strings.Join(args, ", ") + ")"
}

func (r *renderer) operands(nodes []*pg_query.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = r.operand(n)
	}
	return out
}

// sortList renders ORDER BY keys inside an aggregate or window.
func (r *renderer) sortList(keys []*pg_query.Node) string {
	out := make([]string, len(keys))
	for i, k := range keys {
		sb := k.GetSortBy()
		desc, ok := r.descending(sb)
		switch {
		case sb == nil || !ok:
			out[i] = r.raw(k)
		case desc:
			out[i] = r.expr(sb.GetNode()) + " descending" + nullsOrder(sb, desc)
		default:
			out[i] = r.expr(sb.GetNode()) + nullsOrder(sb, desc)
		}
	}
	return list(out, "then")
}

// frameNonDefault is FRAMEOPTION_NONDEFAULT: the window has a frame clause.
const frameNonDefault = 1

// windowed renders f(…) OVER (PARTITION BY p ORDER BY o): "row number
// (within each p, in order of o)"; an aggregate over an ordered window is
// a running one.
func (r *renderer) windowed(s string, w *pg_query.WindowDef, aggregate bool) string {
	w = r.window(w)
	if w == nil {
		return s + " over " + r.raw(nil)
	}
	var parts []string
	if p := w.GetPartitionClause(); len(p) > 0 {
		parts = append(parts, "within each "+list(r.exprs(p), "and"))
	}
	if o := w.GetOrderClause(); len(o) > 0 {
		parts = append(parts, "in order of "+r.sortList(o))
		if aggregate && w.GetFrameOptions()&frameNonDefault == 0 {
			s = "running " + s
		}
	}
	if w.GetFrameOptions()&frameNonDefault != 0 {
		parts = append(parts, "over a window frame "+r.raw(nil))
	}
	if len(parts) == 0 {
		return s + " over all rows"
	}
	return s + " (" + strings.Join(parts, ", ") + ")"
}

// window resolves OVER w and OVER (w ORDER BY …) against the WINDOW
// clause; nil when the name is not defined.
func (r *renderer) window(w *pg_query.WindowDef) *pg_query.WindowDef {
	ref := w.GetRefname()
	if ref == "" && len(w.GetPartitionClause()) == 0 && len(w.GetOrderClause()) == 0 && w.GetFrameOptions()&frameNonDefault == 0 {
		ref = w.GetName()
	}
	if ref == "" {
		return w
	}
	base, ok := r.windows[ref]
	if !ok {
		return nil
	}
	merged := &pg_query.WindowDef{PartitionClause: base.GetPartitionClause(), OrderClause: w.GetOrderClause(), FrameOptions: w.GetFrameOptions()}
	if len(merged.OrderClause) == 0 {
		merged.OrderClause = base.GetOrderClause()
	}
	if merged.FrameOptions&frameNonDefault == 0 {
		merged.FrameOptions = base.GetFrameOptions()
	}
	return merged
}

// defineWindows records a WINDOW clause's definitions.
func (r *renderer) defineWindows(defs []*pg_query.Node) {
	for _, d := range defs {
		if w := d.GetWindowDef(); w != nil && w.GetName() != "" {
			if r.windows == nil {
				r.windows = map[string]*pg_query.WindowDef{}
			}
			r.windows[w.GetName()] = w
		}
	}
}

// typeNames are the friendly names of PostgreSQL's internal type names.
var typeNames = map[string]string{
	"int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real", "float8": "double precision",
	"bpchar": "char", "bool": "boolean", "timestamptz": "timestamp with time zone", "timetz": "time with time zone",
}

// cast renders x::type: a date literal cast to a date type is just the
// date, an interval literal just its text ("30 days").
func (r *renderer) cast(tc *pg_query.TypeCast) string {
	t, name := r.typeName(tc.GetTypeName())
	if s := tc.GetArg().GetAConst().GetSval(); s != nil {
		v := s.GetSval()
		switch {
		case dateTypes[name] && dateRE.MatchString(v):
			return v
		case name == "interval" && len(tc.GetTypeName().GetTypmods()) == 0:
			return v
		case name == "interval": // INTERVAL '1' DAY: the unit is a bit mask
			return r.raw(&pg_query.Node{Node: &pg_query.Node_TypeCast{TypeCast: tc}})
		case name == "text" || name == "varchar":
			return quote(v)
		}
	}
	return r.operand(tc.GetArg()) + " as " + t
}

// typeName renders a type with its modifiers, and returns its base name.
func (r *renderer) typeName(t *pg_query.TypeName) (string, string) {
	name := lastName(t.GetNames())
	out := name
	if friendly, ok := typeNames[name]; ok {
		out = friendly
	}
	if mods := t.GetTypmods(); len(mods) > 0 {
		out += "(" + strings.Join(r.exprs(mods), ", ") + ")"
	}
	if len(t.GetArrayBounds()) > 0 {
		out += " array"
	}
	return out, name
}

// subLink renders a subquery used as a value or a test.
func (r *renderer) subLink(s *pg_query.SubLink) string {
	q := "(" + r.query(s.GetSubselect().GetSelectStmt()) + ")"
	op := opName(s.GetOperName())
	switch s.GetSubLinkType() {
	case pg_query.SubLinkType_EXISTS_SUBLINK:
		return "there is a row in " + r.rowsOf(s.GetSubselect().GetSelectStmt())
	case pg_query.SubLinkType_EXPR_SUBLINK:
		return q
	case pg_query.SubLinkType_ARRAY_SUBLINK:
		return "the list of " + q
	case pg_query.SubLinkType_ANY_SUBLINK, pg_query.SubLinkType_ALL_SUBLINK:
		anyOf := s.GetSubLinkType() == pg_query.SubLinkType_ANY_SUBLINK
		switch {
		case anyOf && (op == "" || op == "="):
			return r.side(s.GetTestexpr()) + " is in " + q
		case !anyOf && (op == "<>" || op == "!="):
			return r.side(s.GetTestexpr()) + " is not in " + q
		}
		if w, ok := quantifier(op, anyOf); ok {
			return r.side(s.GetTestexpr()) + " " + w + " " + q
		}
	}
	return r.raw(&pg_query.Node{Node: &pg_query.Node_SubLink{SubLink: s}})
}

// rowsOf renders the rows EXISTS tests, without the SELECT list that it
// ignores: "(employees where …)".
func (r *renderer) rowsOf(s *pg_query.SelectStmt) string {
	plain := s.GetLarg() == nil && len(s.GetValuesLists()) == 0 && len(s.GetFromClause()) > 0 &&
		len(s.GetGroupClause()) == 0 && s.GetHavingClause() == nil && s.GetLimitCount() == nil &&
		s.GetLimitOffset() == nil && s.GetWithClause() == nil && len(s.GetDistinctClause()) == 0 && plainTargets(s)
	if !plain {
		return "(" + r.query(s) + ")"
	}
	r.scopes = append(r.scopes, rangeNames(s.GetFromClause()))
	defer func() { r.scopes = r.scopes[:len(r.scopes)-1] }()
	out := r.fromList(s.GetFromClause())
	if w := s.GetWhereClause(); w != nil {
		out += " where " + r.cond(w)
	}
	return "(" + out + ")"
}

// plainTargets reports a SELECT list of constants and columns only, which
// cannot change how many rows there are (an aggregate or a set-returning
// function could).
func plainTargets(s *pg_query.SelectStmt) bool {
	for _, t := range s.GetTargetList() {
		v := t.GetResTarget().GetVal()
		if v.GetAConst() == nil && v.GetColumnRef() == nil {
			return false
		}
	}
	return true
}

// funcName is a function's name without its schema.
func funcName(f *pg_query.FuncCall) string { return strings.ToLower(lastName(f.GetFuncname())) }

// hasAggregate reports an aggregate call in n outside subqueries and
// windows: a value computed per group.
func hasAggregate(n *pg_query.Node) bool {
	if n == nil {
		return false
	}
	found := false
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		switch v := m.Interface().(type) {
		case *pg_query.SelectStmt:
			return
		case *pg_query.FuncCall:
			name := funcName(v)
			if v.GetOver() == nil && (aggregates[name] != "" || otherAggregates[name]) {
				found = true
			}
		}
		m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
			switch {
			case fd.Kind() != protoreflect.MessageKind:
			case fd.IsList():
				for i := 0; i < val.List().Len(); i++ {
					walk(val.List().Get(i).Message())
				}
			default:
				walk(val.Message())
			}
			return !found
		})
	}
	walk(n.ProtoReflect())
	return found
}

func isCountStar(n *pg_query.Node) bool {
	f := n.GetFuncCall()
	return f != nil && funcName(f) == "count" && (f.GetAggStar() || countsRows(f)) && f.GetAggFilter() == nil && f.GetOver() == nil
}

// countsRows reports count(1) and the like: a constant that is never
// NULL counts every row, as count(*) does.
func countsRows(f *pg_query.FuncCall) bool {
	args := f.GetArgs()
	if funcName(f) != "count" || f.GetAggDistinct() || len(args) != 1 {
		return false
	}
	c := args[0].GetAConst()
	return c != nil && !c.GetIsnull()
}
