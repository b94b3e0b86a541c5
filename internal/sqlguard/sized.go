package sqlguard

import (
	"regexp"
	"strconv"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// MaxBuiltBytes bounds the value one call of a function that makes a value
// longer than its arguments (repeat, lpad, rpad, format's widths) may build.
//
// A backend holds such a value whole in memory, and PostgreSQL bounds it
// only at 1 GB: SELECT length(repeat('a', 1e9)), four times in one row,
// took one sandbox backend to 4.9 GB, and a tenant holds several sandbox
// connections at once, so a few statements could make the server's kernel
// kill PostgreSQL, every tenant's. work_mem, temp_file_limit and the
// statement timeout do not bound an expression's result. So the guard
// admits these calls only when it can bound what they build from the
// statement's text: a constant length, and for repeat a constant string
// or a small count. 1 MiB is far beyond padding an id or drawing a bar.
const MaxBuiltBytes = 1 << 20

// sized refuses a call of name whose result the statement does not bound
// (see MaxBuiltBytes).
func sized(name string, args []*pg_query.Node) error {
	switch name {
	case "repeat":
		if len(args) != 2 {
			return nil // PostgreSQL refuses it
		}
		n, ok := intConst(args[1])
		if !ok {
			return reject("repeat() needs a constant count: what it builds is held in memory whole")
		}
		unit := 1_000 // a column's value: at most a short one is repeated often
		if s, ok := stringConst(args[0]); ok {
			unit = max(len(s), 1)
		}
		if n*unit > MaxBuiltBytes {
			return reject("repeat() would build over %d bytes", MaxBuiltBytes)
		}
	case "lpad", "rpad":
		if len(args) < 2 {
			return nil
		}
		n, ok := intConst(args[1])
		if !ok {
			return reject("%s() needs a constant length: what it builds is held in memory whole", name)
		}
		if n*4 > MaxBuiltBytes { // up to 4 bytes a character
			return reject("%s() would build over %d bytes", name, MaxBuiltBytes)
		}
	case "format":
		if len(args) == 0 {
			return nil
		}
		f, ok := stringConst(args[0])
		if !ok {
			return reject("format() needs a constant format string")
		}
		for _, m := range formatWidth.FindAllStringSubmatch(f, -1) {
			if m[1] == "*" {
				return reject("format() widths must be written in the format string, not taken from an argument")
			}
			if w, err := strconv.Atoi(m[1]); err != nil || w*4 > MaxBuiltBytes {
				return reject("format() would build over %d bytes", MaxBuiltBytes)
			}
		}
	}
	return nil
}

// formatWidth finds the width of each format() specifier (%[position$][flags][width]type).
var formatWidth = regexp.MustCompile(`%(?:\d+\$)?-*(\*(?:\d+\$)?|\d+)`)

// intConst is an integer constant argument (-5 included: the parser folds
// the sign into the constant); a count or length out of int range is not
// one.
func intConst(n *pg_query.Node) (int, bool) {
	c := n.GetAConst()
	if c == nil || c.GetIsnull() || c.GetIval() == nil {
		return 0, false
	}
	return int(c.GetIval().GetIval()), true
}

// stringConst is a string constant argument.
func stringConst(n *pg_query.Node) (string, bool) {
	c := n.GetAConst()
	if c == nil || c.GetIsnull() || c.GetSval() == nil {
		return "", false
	}
	return c.GetSval().GetSval(), true
}

// paddedType refuses a char(n) longer than MaxBuiltBytes allows: a cast to
// it pads its value with spaces to n characters, so 'x'::char(10485760)
// builds 10 MB, as often as the statement writes it.
func paddedType(name string, typmods []*pg_query.Node) error {
	if name != "bpchar" && name != "char" && name != "character" {
		return nil
	}
	for _, m := range typmods {
		if n, ok := intConst(m); ok && n*4 > MaxBuiltBytes {
			return reject("%s(%d) would build over %d bytes", name, n, MaxBuiltBytes)
		}
	}
	return nil
}
