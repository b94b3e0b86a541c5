package generate

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/dbchat/dbchat/internal/sqlguard"
)

// followUp answers a follow-up ("and only for 2024?", "what about
// Germany?", "top 5", "by month instead", "sort by amount", "the average
// instead") by editing the last turn's statement through its parse tree:
// filters are added or replace those on the same column, the grouping
// column or time grain, the order, the limit and the aggregate are
// swapped. The follow-up's words are accounted for as in a standalone
// question; the last statement must be one SELECT over one table (as the
// offline generator writes them), or the follow-up is refused.
func (o *Offline) followUp(ctx context.Context, in Input) (Output, error) {
	last := in.Turns[len(in.Turns)-1]
	tree, sel, t, err := lift(last.SQL, in.Tables)
	if err != nil {
		return Output{}, err
	}
	q := parseQuestion(in.Question)
	b := &builder{q: q, t: t, tables: in.Tables, tableNamed: true}
	for i := range q.toks {
		if n, ok := q.nameAt(i, t.Name); ok {
			q.use(i, i+n)
		}
		if n, ok := q.phrase(i, "what about", "how about", "instead", "only", "just", "now", "then", "also", "but", "rather"); ok {
			q.use(i, i+n)
		}
	}
	e := &edit{b: b, sel: sel}
	if err := e.recognise(ctx, o, in); err != nil {
		return Output{}, err
	}
	if err := e.apply(); err != nil {
		return Output{}, err
	}
	sql, err := pg_query.Deparse(tree)
	if err != nil {
		return Output{}, ErrNoSQL("I could not rewrite the last statement for this follow-up")
	}
	return Output{SQL: sql, Resolved: Resolve(in.Turns, in.Question)}, nil
}

// lift parses the last turn's SQL: one plain SELECT over one catalog table.
func lift(sql string, tables []Table) (*pg_query.ParseResult, *pg_query.SelectStmt, Table, error) {
	refuse := ErrNoSQL("I can refine only a single-table statement; ask the whole question instead")
	tree, err := sqlguard.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 {
		return nil, nil, Table{}, refuse
	}
	sel := tree.Stmts[0].Stmt.GetSelectStmt()
	if sel == nil || sel.Op != pg_query.SetOperation_SETOP_NONE || sel.WithClause != nil || len(sel.FromClause) != 1 ||
		sel.FromClause[0].GetRangeVar() == nil || len(sel.GroupClause) > 1 || sel.HavingClause != nil || len(sel.DistinctClause) > 0 {
		return nil, nil, Table{}, refuse
	}
	name := sel.FromClause[0].GetRangeVar().Relname
	for _, t := range tables {
		if t.Name == name {
			return tree, sel, t, nil
		}
	}
	return nil, nil, Table{}, refuse
}

// edit is what a follow-up changes.
type edit struct {
	b      *builder
	sel    *pg_query.SelectStmt
	group  *Column
	grain  string // month, week, …: group by date_trunc(grain, a date column)
	sortBy *Column
	asc    bool
	dirSet bool // the follow-up said ascending or descending
}

var grains = map[string]string{"day": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year"}

// recognise reads the follow-up: shape words, a new grouping or time
// grain, a new order, conditions and values; every word must be used.
func (e *edit) recognise(ctx context.Context, o *Offline, in Input) error {
	b, q := e.b, e.b.q
	for i := range q.toks {
		if n, ok := q.phrase(i, "sort by", "order by", "sorted by", "ordered by"); ok {
			if c, m, ok := b.columnAt(i + n); ok {
				e.sortBy = &c
				q.use(i, i+n+m)
				if k, ok := q.phrase(i+n+m, "ascending", "asc", "lowest first", "descending", "desc", "highest first"); ok {
					e.asc = k == 1 && (q.word(i+n+m) == "ascending" || q.word(i+n+m) == "asc") || q.word(i+n+m) == "lowest"
					e.dirSet = true
					q.use(i+n+m, i+n+m+k)
				}
			}
		}
		if n, ok := q.phrase(i, "by", "per", "for each", "each"); ok {
			if g, found := grains[singular(q.word(i+n))]; found && q.free(i+n) {
				e.grain = g
				q.use(i, i+n+1)
			} else if c, m, ok := b.columnAt(i + n); ok {
				e.group = &c
				q.use(i, i+n+m)
			}
		}
	}
	b.shape()
	for _, step := range []func() error{b.comparisons, b.dates, b.nullTests, b.booleans} {
		if err := step(); err != nil {
			return err
		}
	}
	spans := b.valueSpans()
	b.applyValues(spans, o.placeValues(ctx, b.t, candidates(spans), in.FindValues))
	if b.sup != nil {
		return ErrNoSQL(fmt.Sprintf("I could not use %q in a follow-up; ask the whole question instead", q.toks[b.sup.at].raw))
	}
	if b.agg != "" {
		if err := b.aggColumn(); err != nil {
			return err
		}
	}
	if b.rank != nil && b.rank.col != nil && b.rank.col.Name == "" {
		if err := b.rankColumn(); err != nil {
			return err
		}
	}
	b.whereSQL = b.whereClause()
	return b.unaccounted()
}

// apply edits the statement's parse tree.
func (e *edit) apply() error {
	if err := e.filters(); err != nil {
		return err
	}
	if err := e.aggregate(); err != nil {
		return err
	}
	if err := e.regroup(); err != nil {
		return err
	}
	return e.order()
}

// filters: each new condition replaces the statement's conditions on the
// same column ("what about Germany?" after "… in France") and is added
// to the rest.
func (e *edit) filters() error {
	if len(e.b.conds) == 0 {
		return nil
	}
	kept := conjuncts(e.sel.WhereClause)
	additive := e.b.q.word(0) == "and" || e.b.q.word(0) == "or" || e.b.q.word(0) == "also"
	var either []string // "and NL" after "in GB": either value
	for _, c := range e.b.conds {
		if additive && c.eq {
			for _, old := range kept {
				if refs := columnRefs(old); len(refs) == 1 && refs[0] == c.column {
					text, err := deparseExpr(old)
					if err != nil {
						return err
					}
					either = append(either, text)
				}
			}
		}
		kept = dropOn(kept, c.column)
	}
	clause := e.b.whereClause()
	if len(either) > 0 {
		clause = " WHERE (" + strings.Join(either, " OR ") + " OR " + strings.TrimPrefix(clause, " WHERE ") + ")"
	}
	where, err := fragment("SELECT 1 FROM t" + clause)
	if err != nil {
		return err
	}
	kept = append(kept, conjuncts(where.WhereClause)...)
	switch len(kept) {
	case 1:
		e.sel.WhereClause = kept[0]
	default:
		e.sel.WhereClause = pg_query.MakeBoolExprNode(pg_query.BoolExprType_AND_EXPR, kept, -1)
	}
	return nil
}

// aggregate swaps the aggregate ("the average instead").
func (e *edit) aggregate() error {
	b := e.b
	if b.agg == "" {
		return nil
	}
	if len(e.sel.TargetList) == 0 || aggregateAt(e.sel) < 0 {
		return ErrNoSQL("the last answer has no count, sum or average to change; ask the whole question instead")
	}
	expr, alias := b.aggExpr()
	t, err := fragment("SELECT " + expr + " AS " + alias)
	if err != nil {
		return err
	}
	i := aggregateAt(e.sel)
	e.sel.TargetList[i] = t.TargetList[0]
	for _, s := range e.sel.SortClause { // ORDER BY the old alias: the new one
		if sb := s.GetSortBy(); sb != nil && len(columnRefs(sb.Node)) == 1 && i == len(e.sel.TargetList)-1 && len(e.sel.GroupClause) == 1 {
			if refs := columnRefs(sb.Node); refs[0] != groupName(e.sel) {
				sb.Node = pg_query.MakeColumnRefNode([]*pg_query.Node{pg_query.MakeStrNode(unquote(alias))}, -1)
			}
		}
	}
	return nil
}

// regroup changes the grouping column or time grain ("by month instead").
func (e *edit) regroup() error {
	if e.group == nil && e.grain == "" {
		return nil
	}
	ai := aggregateAt(e.sel)
	if ai < 0 {
		return ErrNoSQL("the last answer has nothing computed per group; ask the whole question instead")
	}
	agg := e.sel.TargetList[ai]
	var sql string
	if e.grain != "" {
		col, err := e.b.subject(len(e.b.q.toks), "date", e.grain)
		if err != nil {
			return err
		}
		expr := "date_trunc(" + literal(e.grain) + ", " + ident(col.Name) + ")"
		sql = "SELECT " + expr + " AS " + ident(e.grain) + " GROUP BY 1 ORDER BY 1"
	} else {
		g := ident(e.group.Name)
		sql = "SELECT " + g + " GROUP BY " + g + " ORDER BY " + g
	}
	t, err := fragment(sql)
	if err != nil {
		return err
	}
	e.sel.TargetList = []*pg_query.Node{t.TargetList[0], agg}
	e.sel.GroupClause = t.GroupClause
	if e.grain != "" {
		e.sel.SortClause = t.SortClause // periods in time order
	} else {
		alias := agg.GetResTarget().Name
		o, err := fragment("SELECT 1 ORDER BY " + ident(alias) + " DESC, " + ident(e.group.Name))
		if err != nil {
			return err
		}
		e.sel.SortClause = o.SortClause
	}
	return nil
}

// order applies "sort by X" and "top N".
func (e *edit) order() error {
	b := e.b
	if e.sortBy == nil && b.rank != nil && b.rank.col != nil && b.rank.col.Name != "" && aggregateAt(e.sel) < 0 {
		e.sortBy, e.asc, e.dirSet = b.rank.col, !b.rank.desc, true
	}
	if e.sortBy != nil && !e.dirSet { // names and groups A to Z, measures and dates highest first
		k := kind(e.sortBy.Type)
		e.asc = isID(e.sortBy.Name) || k != "numeric" && k != "date" ||
			len(e.sel.GroupClause) == 1 && groupName(e.sel) == e.sortBy.Name
	}
	if e.sortBy != nil {
		key := ident(e.sortBy.Name)
		if ai := aggregateAt(e.sel); ai >= 0 && len(e.sel.GroupClause) == 1 && groupName(e.sel) != e.sortBy.Name {
			key = ident(e.sel.TargetList[ai].GetResTarget().Name) // the measure per group
		}
		dir := " DESC NULLS LAST"
		if e.asc {
			dir = " ASC NULLS LAST"
		}
		o, err := fragment("SELECT 1 ORDER BY " + key + dir)
		if err != nil {
			return err
		}
		e.sel.SortClause = o.SortClause
	}
	if b.rank != nil {
		if len(e.sel.SortClause) == 0 {
			return ErrNoSQL("the last answer has no order, so 'top' has no meaning; say what to sort by")
		}
		e.sel.LimitCount = pg_query.MakeAConstIntNode(int64(b.rank.limit), -1)
		e.sel.LimitOption = pg_query.LimitOption_LIMIT_OPTION_COUNT
	}
	return nil
}

// aggExpr is the aggregate's expression and alias, as sql writes them.
func (b *builder) aggExpr() (string, string) {
	if b.agg == "count" {
		return "count(*)", "count"
	}
	return b.agg + "(" + ident(b.aggCol.Name) + ")", ident(b.agg + "_" + b.aggCol.Name)
}

// fragment parses SQL the edit is assembled from (never user text: only
// identifiers and literals quoted by ident and literal).
func fragment(sql string) (*pg_query.SelectStmt, error) {
	tree, err := pg_query.Parse(sql)
	if err != nil || len(tree.Stmts) != 1 || tree.Stmts[0].Stmt.GetSelectStmt() == nil {
		return nil, ErrNoSQL("I could not rewrite the last statement for this follow-up")
	}
	return tree.Stmts[0].Stmt.GetSelectStmt(), nil
}

// deparseExpr writes one condition of the last statement back as SQL.
func deparseExpr(n *pg_query.Node) (string, error) {
	one := pg_query.MakeResTargetNodeWithVal(pg_query.MakeAConstIntNode(1, -1), -1)
	tree := &pg_query.ParseResult{Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{Node: &pg_query.Node_SelectStmt{
		SelectStmt: &pg_query.SelectStmt{TargetList: []*pg_query.Node{one}, WhereClause: n}}}}}}
	sql, err := pg_query.Deparse(tree)
	if err != nil || !strings.HasPrefix(sql, "SELECT 1 WHERE ") {
		return "", ErrNoSQL("I could not rewrite the last statement for this follow-up")
	}
	return strings.TrimPrefix(sql, "SELECT 1 WHERE "), nil
}

// conjuncts splits a WHERE clause at its top-level ANDs.
func conjuncts(n *pg_query.Node) []*pg_query.Node {
	if n == nil {
		return nil
	}
	if be := n.GetBoolExpr(); be != nil && be.Boolop == pg_query.BoolExprType_AND_EXPR {
		return be.Args
	}
	return []*pg_query.Node{n}
}

// dropOn removes the conditions that read column.
func dropOn(conds []*pg_query.Node, column string) []*pg_query.Node {
	var out []*pg_query.Node
	for _, c := range conds {
		reads := false
		for _, r := range columnRefs(c) {
			reads = reads || r == column
		}
		if !reads {
			out = append(out, c)
		}
	}
	return out
}

// aggregateAt is the index of the select list's aggregate call, or -1.
func aggregateAt(sel *pg_query.SelectStmt) int {
	for i, t := range sel.TargetList {
		if rt := t.GetResTarget(); rt != nil && rt.Val.GetFuncCall() != nil {
			if f := rt.Val.GetFuncCall(); len(f.Funcname) == 1 && isAggregate(f.Funcname[0].GetString_().GetSval()) {
				return i
			}
		}
	}
	return -1
}

func isAggregate(name string) bool {
	switch name {
	case "count", "sum", "avg", "min", "max":
		return true
	}
	return false
}

// groupName is the column a one-column GROUP BY names, or "".
func groupName(sel *pg_query.SelectStmt) string {
	if refs := columnRefs(sel.GroupClause[0]); len(refs) == 1 {
		return refs[0]
	}
	return ""
}

// columnRefs lists the column names a node reads, anywhere inside it.
func columnRefs(n *pg_query.Node) []string {
	var out []string
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		if cr, ok := m.Interface().(*pg_query.ColumnRef); ok && len(cr.Fields) > 0 {
			if s := cr.Fields[len(cr.Fields)-1].GetString_(); s != nil {
				out = append(out, s.Sval)
			}
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := 0; i < v.List().Len(); i++ {
					walk(v.List().Get(i).Message())
				}
			case fd.Message() != nil && !fd.IsMap():
				walk(v.Message())
			}
			return true
		})
	}
	if n != nil {
		walk(n.ProtoReflect())
	}
	return out
}

func unquote(s string) string {
	if u, err := strconv.Unquote(s); err == nil {
		return u
	}
	return s
}
