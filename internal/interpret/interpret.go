// Package interpret says in plain English what a SQL statement computes, so
// that every answer of /v1/ask carries a summary of the statement that
// actually ran ("Count of customers where country is 'US'"), whoever wrote
// it: the offline generator, an LLM or a trained pair.
//
// The summary is produced deterministically from PostgreSQL's own parse
// tree (libpg_query through pg_query_go), never by a model. A renderer walks
// the tree: the target list, FROM (tables, joins, subqueries, functions),
// WHERE, GROUP BY, HAVING, ORDER BY, LIMIT/OFFSET, set operations and WITH
// each have a phrase, and every expression the SQL sandbox admits
// (internal/sqlguard's allowlist) has a rendering: comparisons, IS NULL,
// IN, BETWEEN, LIKE/ILIKE, aggregates with DISTINCT and FILTER, window
// functions, CASE, casts, date functions, subqueries. An allowlisted
// function without a phrase of its own is written as a call, f(a, b),
// which is exact.
//
// The rule is to be vague rather than wrong. A part the renderer has no
// phrase for is shown as its SQL in backquotes, and the summary ends with
// "(partly a query this summary cannot fully describe)"; a statement it
// cannot read at all (not one query, or not SQL) is described only as
// "A query this summary cannot fully describe". Describe never panics and
// never returns empty text.
package interpret

import (
	"strings"
	"unicode"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/dbchat/dbchat/internal/sqlguard"
)

// Undescribed is the whole summary of a statement the renderer cannot read,
// and, as a suffix, marks a summary with a part it could not describe.
const Undescribed = "a query this summary cannot fully describe"

// maxLen bounds a summary, in bytes; a longer one is cut at a word and
// marked as partial.
const maxLen = 1000

// Describe returns a short English summary of what sql computes. It never
// panics and never returns "".
func Describe(sql string) string {
	tree, err := sqlguard.Parse(sql)
	if err != nil {
		return capitalize(Undescribed)
	}
	return DescribeTree(tree)
}

// DescribeTree is Describe for a statement parsed already (the sandbox's
// accepted tree), which it only reads.
func DescribeTree(tree *pg_query.ParseResult) (text string) {
	defer func() {
		if p := recover(); p != nil && onPanic != nil {
			onPanic(p)
		}
		if strings.TrimSpace(text) == "" {
			text = capitalize(Undescribed)
		}
	}()
	if len(tree.GetStmts()) != 1 {
		return capitalize(Undescribed)
	}
	sel := tree.GetStmts()[0].GetStmt().GetSelectStmt()
	if sel == nil {
		return capitalize(Undescribed)
	}
	r := newRenderer(sel)
	return r.finish(r.query(sel))
}

// onPanic, when set (by tests), is told about a panic Describe recovered
// from, so that the fuzz test finds them.
var onPanic func(any)

// renderer holds what the whole statement tells about its names, and
// whether any part of it was left undescribed.
type renderer struct {
	names   names
	windows map[string]*pg_query.WindowDef // WINDOW clause definitions by name
	scopes  [][]string                     // range names of the SELECTs being rendered
	partial bool
}

func newRenderer(sel *pg_query.SelectStmt) *renderer {
	return &renderer{names: collectNames(sel)}
}

// finish capitalises the summary, bounds its length and marks it partial.
func (r *renderer) finish(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxLen {
		s = cut(s, maxLen)
		r.partial = true
	}
	if r.partial {
		s += " (partly " + Undescribed + ")"
	}
	if w := firstWord(s); r.names.idents[w] && (strings.ToLower(w) != w || strings.ContainsAny(s[len(w):min(len(s), len(w)+1)], ".(")) {
		return s // a qualified or mixed-case name, or a call, keeps its case
	}
	return capitalize(s)
}

// firstWord is the leading identifier of s.
func firstWord(s string) string {
	end := strings.IndexFunc(s, func(c rune) bool { return !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '_' && c != '$' })
	if end < 0 {
		return s
	}
	return s[:end]
}

// raw renders a node with no phrase of its own as its SQL in backquotes,
// and marks the summary partial.
func (r *renderer) raw(n *pg_query.Node) string {
	r.partial = true
	if n == nil {
		return "…"
	}
	out, err := pg_query.Deparse(&pg_query.ParseResult{Stmts: []*pg_query.RawStmt{{Stmt: &pg_query.Node{
		Node: &pg_query.Node_SelectStmt{SelectStmt: &pg_query.SelectStmt{
			TargetList: []*pg_query.Node{{Node: &pg_query.Node_ResTarget{ResTarget: &pg_query.ResTarget{Val: n}}}},
		}}}}}})
	out, ok := strings.CutPrefix(out, "SELECT ")
	if err != nil || !ok || out == "" {
		return "…"
	}
	return "`" + out + "`"
}

// list joins items as English does: "a", "a and b", "a, b and c".
func list(items []string, conj string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + conj + " " + items[len(items)-1]
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[n:]
}

// cut shortens s to at most n bytes at a space, with an ellipsis.
func cut(s string, n int) string {
	s = s[:n]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	if i := strings.LastIndexByte(s, ' '); i > n/2 {
		s = s[:i]
	}
	return s + " …"
}
