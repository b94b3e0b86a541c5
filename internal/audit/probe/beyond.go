package probe

import "strings"

// Reach is one attack on what lies around another tenant's rows: names,
// counts, sizes, other sessions' SQL, locks, shared session state, and the
// existence of objects. Every one must be refused, by the SQL parser and,
// with the parser off, by the database (the tenant role's privileges).
type Reach struct {
	Class string // the threat class in docs/SECURITY.md
	SQL   string
}

// BeyondRows returns the attacks with the victim's schema filled in for %S.
// The sandbox red-team tests and `dbchat audit --probe` run the same list.
func BeyondRows(victimSchema string) []Reach {
	list := []Reach{
		// 1. Function calls written as field selection.
		{"field-selection call", `SELECT ('app.tenant_id'::text).current_setting`},
		{"field-selection call", `SELECT (1).pg_sleep`},
		{"field-selection call", `SELECT c.record_out FROM (SELECT 1 AS a) c`},
		{"field-selection call", `SELECT (1::oid).pg_get_functiondef`},
		{"field-selection call", `SELECT (42::bigint).pg_advisory_xact_lock`},
		{"field-selection call", `SELECT (0::oid).lo_create`},
		// 2. SQL text run by a function; catalogs, statistics, sizes.
		{"catalog names and counts", `SELECT ('select array_to_tsvector(array_agg(DISTINCT table_schema||''.''||table_name||''.''||column_name)) from information_schema.columns where table_schema like ''t_%'''::text).ts_stat`},
		{"catalog names and counts", `SELECT * FROM ts_stat('select array_to_tsvector(array_agg(nspname::text)) from pg_namespace')`},
		{"catalog names and counts", `SELECT query_to_xml('select nspname from pg_namespace', true, true, '')`},
		{"catalog names and counts", `SELECT nspname FROM pg_namespace`},
		{"catalog names and counts", `SELECT relname, reltuples FROM pg_class`},
		{"catalog names and counts", `SELECT relname, n_live_tup FROM pg_stat_user_tables`},
		{"catalog names and counts", `SELECT table_schema, table_name, column_name FROM information_schema.columns`},
		{"catalog names and counts", `SELECT pg_relation_size(to_regclass('%S.secrets'))`},
		{"catalog names and counts", `SELECT ('%S.secrets'::text).to_regclass`},
		// 3. Other sessions' SQL text.
		{"other sessions' SQL", `SELECT (b).pg_stat_get_backend_activity FROM generate_series(1, 64) b`},
		{"other sessions' SQL", `SELECT pg_stat_get_backend_activity(b) FROM generate_series(1, 64) b`},
		{"other sessions' SQL", `SELECT query FROM pg_stat_activity`},
		// 4. Locks on another tenant's tables.
		{"locks on other tenants' tables", `SELECT count(*) FROM %S.secrets, generate_series(1, 10000000) g`},
		{"locks on other tenants' tables", `SELECT ('select array_to_tsvector(array_agg(v)) from %S.secrets'::text).ts_stat`},
		// 5. Shared session state.
		{"session state", `SELECT (0.42::float8).setseed`},
		{"session state", `SELECT setseed(0.42)`},
		{"session state", `SELECT random()`}, // one generator per pooled connection, shared by its tenants
		// 6. Schema names outside relations (and the existence oracle).
		{"schema names", `SELECT 'a' COLLATE %S."C"`},
		{"schema names", `SELECT 1 ORDER BY 1 USING OPERATOR(%S.<)`},
		{"schema names", `SELECT 1 WHERE 1 OPERATOR(%S.=) ANY (ARRAY[1])`},
		{"schema names", `SELECT 1::%S.t`},
		{"schema names", `SELECT * FROM %S.secrets`},
		// 7. A NUL byte: the parser would stop where the server does not.
		{"control bytes", "SELECT 1\x00; SELECT * FROM %S.secrets"},
	}
	for i := range list {
		list[i].SQL = strings.ReplaceAll(list[i].SQL, "%S", victimSchema)
	}
	return list
}
