package sqlguard

import "slices"

// nodeTypes are the parse-tree nodes a plain query may contain. Anything else
// (INSERT, SET, COPY, XML, JSON_TABLE, parameters, TABLESAMPLE, nodes a future
// parser adds, …) is rejected: the list says what is allowed, not what is not.
var nodeTypes = set(
	"ParseResult", "RawStmt", "Node", "List", "String", "Integer", "Float", "Boolean", "BitString",
	"A_Const", "A_Star", "A_Expr", "A_Indirection", "A_Indices", "A_ArrayExpr",
	"SelectStmt", "ResTarget", "ColumnRef", "BoolExpr", "NullTest", "BooleanTest",
	"FuncCall", "TypeCast", "TypeName", "RangeVar", "JoinExpr", "RangeSubselect", "RangeFunction",
	"SubLink", "CaseExpr", "CaseWhen", "CoalesceExpr", "MinMaxExpr", "SortBy", "WindowDef",
	"WithClause", "CommonTableExpr", "CTESearchClause", "CTECycleClause", "Alias", "RowExpr",
	"SQLValueFunction", "GroupingSet", "CollateClause",
)

// functions are the built-ins generated SQL may call: aggregates, window
// functions, math, string, date/time, conditionals, json and type-named casts.
// Nothing here reads files, sleeps, locks, signals, notifies, reads or
// changes settings or roles, runs SQL text or touches large objects. Nor is
// random() here: its generator state belongs to the pooled connection, which
// serves every tenant in turn, so one tenant's draws would tell it another's.
var functions = set(
	// aggregates
	"count", "sum", "avg", "min", "max", "stddev", "stddev_pop", "stddev_samp", "variance", "var_pop",
	"var_samp", "bool_and", "bool_or", "every", "string_agg", "array_agg", "json_agg", "jsonb_agg",
	"json_object_agg", "jsonb_object_agg", "percentile_cont", "percentile_disc", "mode", "corr",
	"covar_pop", "covar_samp", "regr_slope", "regr_intercept", "regr_r2", "regr_count", "bit_and", "bit_or",
	// window
	"row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead",
	"first_value", "last_value", "nth_value",
	// math
	"abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "cbrt", "power", "pow", "exp",
	"ln", "log", "log10", "mod", "div", "pi", "degrees", "radians", "width_bucket", "gcd", "lcm", "scale",
	"sin", "cos", "tan", "asin", "acos", "atan", "atan2",
	// string
	"length", "char_length", "character_length", "octet_length", "bit_length", "lower", "upper", "initcap",
	"btrim", "ltrim", "rtrim", "substr", "substring", "left", "right", "lpad", "rpad", "replace", "reverse",
	"repeat", "split_part", "strpos", "position", "concat", "concat_ws", "format", "md5", "regexp_replace",
	"regexp_match", "regexp_matches", "regexp_split_to_array", "regexp_count", "regexp_like", "starts_with",
	"translate", "ascii", "chr", "to_char", "to_number", "string_to_array", "array_to_string", "unnest",
	"array_length", "cardinality", "array_position", "array_positions", "array_append", "array_prepend",
	"array_cat", "array_remove", "array_upper", "array_lower", "trim", "overlay", "normalize",
	// date and time
	"now", "date_trunc", "date_part", "extract", "age", "make_date", "make_time", "make_timestamp",
	"make_timestamptz", "make_interval", "justify_days", "justify_hours", "justify_interval", "timezone",
	"date_bin", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "to_date", "to_timestamp",
	"isfinite", "generate_series", "overlaps",
	// conditionals and comparison helpers (COALESCE, NULLIF, GREATEST, LEAST are syntax)
	"num_nulls", "num_nonnulls",
	// json
	"to_json", "to_jsonb", "row_to_json", "json_build_object", "jsonb_build_object", "json_build_array",
	"jsonb_build_array", "json_object", "jsonb_object", "json_extract_path", "json_extract_path_text",
	"jsonb_extract_path", "jsonb_extract_path_text", "json_array_elements", "json_array_elements_text",
	"jsonb_array_elements", "jsonb_array_elements_text", "json_each", "json_each_text", "jsonb_each",
	"jsonb_each_text", "json_object_keys", "jsonb_object_keys", "json_typeof", "jsonb_typeof",
	"json_array_length", "jsonb_array_length", "json_strip_nulls", "jsonb_strip_nulls", "jsonb_set",
	"jsonb_insert", "jsonb_pretty", "jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first",
	"jsonb_path_exists", "jsonb_path_match",
	// type-named conversions
	"date", "text", "int4", "int8", "float8", "numeric", "bool",
)

// types are the type names casts may target.
var types = set(
	"int2", "int4", "int8", "smallint", "integer", "int", "bigint", "numeric", "decimal", "float4", "float8",
	"real", "double precision", "text", "varchar", "bpchar", "char", "character varying", "bool", "boolean",
	"date", "time", "timetz", "timestamp", "timestamptz", "interval", "uuid", "json", "jsonb", "bytea",
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// AllowedFunctions lists the function names generated SQL may call, sorted.
// The database grants the query role EXECUTE on these (and on the operators
// and casts of the column types), so the two layers agree.
func AllowedFunctions() []string {
	names := make([]string, 0, len(functions))
	for n := range functions {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
