package sqlguard

import (
	"fmt"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// MaxNesting bounds the tokens of a statement that can open a level of its
// parse tree: everything but names, constants, parameters, commas and
// closing brackets (see Parse).
const MaxNesting = 10_000

// Parse is pg_query.Parse for SQL from outside the code: every caller that
// parses a tenant's, a generator's or a training pair's SQL goes through it.
//
// libpg_query turns the parse tree into protobuf in C, recursing once per
// level of the tree, on the calling thread's stack, and a statement nested
// deep enough overflows that stack: SELECT 1+1+…+1 with 25,000 terms (50 KB,
// under /v1/sql's 100 KB) crashed the server with SIGSEGV (a cgo crash
// cannot be recovered). A level of the tree needs at least one token of its
// own (an operator, a keyword, an opening bracket), so counting those
// tokens first, with the scanner (a flat list, no recursion), bounds the
// depth: 10,000 of them is at most about 30,000 protobuf levels, against
// about 47,000 that overflowed an 8 MB stack, and far beyond any statement
// a person or a model writes (a list of values, IN (1, 2, …), counts
// nothing). Deeper than 10,000 protobuf levels the Go side refuses anyway
// (proto: exceeded maximum recursion depth).
func Parse(sql string) (*pg_query.ParseResult, error) {
	scan, err := pg_query.Scan(sql)
	if err != nil {
		// A statement the scanner refuses, the parser refuses too, at the
		// same token and before building any tree: its error is the one to
		// report.
		return pg_query.Parse(sql)
	}
	n := 0
	for _, t := range scan.GetTokens() {
		switch t.GetToken() {
		case pg_query.Token_IDENT, pg_query.Token_UIDENT, pg_query.Token_ICONST, pg_query.Token_FCONST,
			pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST,
			pg_query.Token_PARAM, pg_query.Token_ASCII_44, pg_query.Token_ASCII_41, pg_query.Token_ASCII_93:
		default:
			n++
		}
	}
	if n > MaxNesting {
		return nil, fmt.Errorf("too complex to parse safely: %d operators, keywords and brackets, at most %d", n, MaxNesting)
	}
	return pg_query.Parse(sql)
}
