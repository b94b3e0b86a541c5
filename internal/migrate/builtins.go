package migrate

import (
	"bufio"
	"context"
	_ "embed"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// PostgreSQL lets PUBLIC execute nearly every built-in function and read
// every catalog. For the query role, which runs untrusted SQL for every
// tenant on shared connections, that is far too much: functions that run SQL
// text (ts_stat, query_to_xml), show other sessions (pg_stat_get_*), leak or
// change shared state (setseed, advisory locks, large objects) or give the
// size or existence of objects by name, and catalogs that name every
// tenant's schema, tables, columns and row counts.
//
// So in dbchat's database untrusted SQL gets an allowlist: what PUBLIC could
// do moves to the platform roles (nothing changes for them), and the tenant
// roles that statements run as (through dbchat_sandbox) get EXECUTE on the
// reviewed functions in query_functions.txt only and no catalog at all;
// dbchat_query itself has nothing but membership in the tenant roles. Statements do not need catalog privileges to resolve
// names, and type input/output, sorting and hashing run without EXECUTE
// checks; operators, casts and called functions are checked, which is why
// the list holds the operators and casts of the column types a tenant can
// use. Superusers are unaffected; a non-superuser login that should use
// psql on this database needs one of the platform roles.

// PrivilegesRevision changes whenever the privileged steps that run outside
// the migrations change, so that prepared databases (test templates) are
// rebuilt.
const PrivilegesRevision = 6

// platformRoles receive what PUBLIC could execute or read.
var platformRoles = OwnerRole + ", " + AppRole + ", " + AuditorRole + ", " + OperatorRole + ", " + ProvisionerRole

// QueryFunctions is the reviewed list of functions generated SQL may execute
// (granted to dbchat_sandbox), one regprocedure signature per line ('#'
// starts a comment).
//
//go:embed query_functions.txt
var QueryFunctions string

// restrictBuiltins moves PUBLIC's EXECUTE and SELECT on built-in and
// extension objects to the platform roles and grants the query role its
// allowlist. It is idempotent: a second run finds nothing left for PUBLIC.
func restrictBuiltins(ctx context.Context, tx pgx.Tx) error {
	stmts := []string{
		// Functions of every schema (pg_catalog, information_schema, the
		// extension's) that PUBLIC may execute.
		`DO $$
		DECLARE sigs text;
		BEGIN
			SELECT string_agg(p.oid::regprocedure::text, ', ') INTO sigs FROM pg_catalog.pg_proc p
			WHERE EXISTS (SELECT FROM pg_catalog.aclexplode(coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))) a
			              WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE');
			IF sigs IS NOT NULL THEN
				EXECUTE 'REVOKE EXECUTE ON ROUTINE ' || sigs || ' FROM PUBLIC';
				EXECUTE 'GRANT EXECUTE ON ROUTINE ' || sigs || ' TO ` + platformRoles + `';
			END IF;
		END $$`,
		// Catalog tables and views, and information_schema views.
		`DO $$
		DECLARE rels text;
		BEGIN
			SELECT string_agg(c.oid::regclass::text, ', ') INTO rels FROM pg_catalog.pg_class c
			WHERE c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
			  AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
			  AND EXISTS (SELECT FROM pg_catalog.aclexplode(coalesce(c.relacl, pg_catalog.acldefault('r', c.relowner))) a
			              WHERE a.grantee = 0 AND a.privilege_type = 'SELECT');
			IF rels IS NOT NULL THEN
				EXECUTE 'REVOKE SELECT ON ' || rels || ' FROM PUBLIC';
				EXECUTE 'GRANT SELECT ON ' || rels || ' TO ` + platformRoles + `';
			END IF;
		END $$`,
		// Column grants to PUBLIC (pg_subscription has them).
		`DO $$
		DECLARE r record;
		BEGIN
			FOR r IN SELECT c.oid::regclass AS rel, string_agg(quote_ident(a.attname), ', ') AS cols
			         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
			         WHERE c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
			           AND EXISTS (SELECT FROM pg_catalog.aclexplode(a.attacl) x WHERE x.grantee = 0 AND x.privilege_type = 'SELECT')
			         GROUP BY c.oid
			LOOP
				EXECUTE format('REVOKE SELECT (%s) ON %s FROM PUBLIC', r.cols, r.rel);
				EXECUTE format('GRANT SELECT (%s) ON %s TO ` + platformRoles + `', r.cols, r.rel);
			END LOOP;
		END $$`,
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("restrict built-in functions and catalogs: %w", err)
		}
	}
	if err := grantQueryFunctions(ctx, tx); err != nil {
		return err
	}
	return ensureTenantRoles(ctx, tx)
}

// ensureTenantRoles gives every tenant its roles (see migrations 00006 and
// 00015: t_<hex> and the members' t_<hex>_m) with their grants: new tenants
// get them from dbchat.create_tenant and their tables' column grants from
// the API; tenants created before the migrations, or restored into a
// cluster without the roles, here. It grants only what is missing, or, for
// the members' column grants, differs from the catalog: a GRANT rewrites its
// catalog row even when it changes nothing (and each rewrite invalidates
// every session's caches), so re-granting everything made a migrate with
// nothing to do grow with tenants × tables (docs/BENCHMARKS.md part 9), while
// a drifted grant is put right all the same.
func ensureTenantRoles(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `DO $$
		DECLARE
			r text;
			g text;
			login text;
			other text;
			tb record;
		BEGIN
			FOR r IN SELECT 't_' || replace(t.id::text, '-', '') FROM dbchat.tenants t
			         UNION SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname ~ '^t_[0-9a-f]{32}$'
			LOOP
				login := dbchat.query_login(substr(r, 3, 32)::uuid);
				IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
					EXECUTE format('CREATE ROLE %I NOLOGIN INHERIT', r);
				END IF;
				IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r || '_m') THEN
					EXECUTE format('CREATE ROLE %I NOLOGIN INHERIT', r || '_m');
				END IF;
				FOREACH g IN ARRAY ARRAY[r, r || '_m'] LOOP
					IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members
					               WHERE roleid = '`+SandboxRole+`'::regrole AND member = g::regrole) THEN
						EXECUTE format('GRANT `+SandboxRole+` TO %I', g);
					END IF;
					IF NOT EXISTS (SELECT FROM pg_catalog.pg_auth_members
					               WHERE roleid = g::regrole AND member = login::regrole) THEN
						EXECUTE format('GRANT %I TO %I', g, login);
					END IF;
					-- Only the tenant's own login may become it (a change of
					-- DBCHAT_QUERY_SHARDS moves tenants between logins).
					FOR other IN SELECT u.rolname::text FROM pg_catalog.pg_auth_members am
					             JOIN pg_catalog.pg_roles u ON u.oid = am.member
					             WHERE am.roleid = g::regrole AND u.rolname ~ '^`+QueryRole+`(_[0-9]+)?$' AND u.rolname <> login
					LOOP
						EXECUTE format('REVOKE %I FROM %I', g, other);
					END LOOP;
				END LOOP;
				IF to_regnamespace(r) IS NOT NULL AND NOT has_schema_privilege(r, r, 'USAGE') THEN
					EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', r, r);
				END IF;
			END LOOP;
			-- Each tenant role reads every table of its schema: what GRANT
			-- ... ON ALL TABLES IN SCHEMA grants, from one pass over pg_class
			-- (that statement scans all of pg_class per schema, so migrate
			-- grew with tenants × tables), for the tables it cannot read at
			-- all yet; the catalog's tables are then read by column (below).
			FOR tb IN SELECT n.nspname::text AS s, string_agg(c.oid::regclass::text, ', ') AS rels
			         FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
			         WHERE n.nspname ~ '^t_[0-9a-f]{32}$' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
			           AND NOT has_any_column_privilege(n.nspname, c.oid, 'SELECT')
			         GROUP BY n.nspname
			LOOP
				EXECUTE format('GRANT SELECT ON %s TO %I', tb.rels, tb.s);
			END LOOP;
			-- The column grants, made from the catalog as the tenant
			-- (dbchat.grant_member_columns, migration 00035), for the tables
			-- whose grants differ from what it makes: the admins' role
			-- SELECT on every column and nothing on the table (a grant on
			-- the table reads the system columns too); the members' SELECT
			-- on each column that is not restricted, nothing else, and
			-- USAGE on the schema.
			FOR tb IN SELECT dt.tenant_id, dt.id FROM dbchat.database_tables dt
			         CROSS JOIN LATERAL (SELECT 't_' || replace(dt.tenant_id::text, '-', '') AS s) n
			         CROSS JOIN LATERAL (SELECT to_regclass(format('%I.%I', n.s, dt.name)) AS rel,
			                                    to_regrole(n.s) AS r, to_regrole(n.s || '_m') AS m) x
			         WHERE x.rel IS NOT NULL
			           AND (EXISTS (SELECT FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) p
			                        WHERE c.oid = x.rel AND p.grantee = x.r)
			             OR EXISTS (SELECT FROM pg_catalog.pg_attribute a
			                        WHERE a.attrelid = x.rel AND a.attnum > 0 AND NOT a.attisdropped
			                          AND NOT EXISTS (SELECT FROM pg_catalog.aclexplode(a.attacl) p
			                                          WHERE p.grantee = x.r AND p.privilege_type = 'SELECT'))
			             OR NOT has_schema_privilege(x.m, n.s, 'USAGE')
			             OR EXISTS (SELECT FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) p
			                        WHERE c.oid = x.rel AND p.grantee = x.m)
			             OR EXISTS (SELECT FROM pg_catalog.pg_attribute a
			                        WHERE a.attrelid = x.rel AND a.attnum > 0 AND NOT a.attisdropped
			                          AND EXISTS (SELECT FROM pg_catalog.aclexplode(a.attacl) p
			                                      WHERE p.grantee = x.m AND p.privilege_type = 'SELECT')
			                            = EXISTS (SELECT FROM dbchat.database_columns dc
			                                      WHERE dc.tenant_id = dt.tenant_id AND dc.table_id = dt.id
			                                        AND dc.name = a.attname AND dc.restricted))
			             OR EXISTS (SELECT FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) p
			                        WHERE a.attrelid = x.rel AND p.grantee = x.m AND p.privilege_type <> 'SELECT'))
			LOOP
				PERFORM set_config('app.tenant_id', tb.tenant_id::text, true);
				PERFORM dbchat.grant_member_columns(tb.id);
			END LOOP;
			PERFORM set_config('app.tenant_id', '', true);
		END $$`)
	if err != nil {
		return fmt.Errorf("tenant roles: %w", err)
	}
	return nil
}

// grantQueryFunctions makes dbchat_sandbox's EXECUTE set exactly the
// reviewed list: listed functions this server has are granted, anything else
// granted to it (or to dbchat_query) directly is revoked.
func grantQueryFunctions(ctx context.Context, conn pgx.Tx) error {
	sigs := ParseFunctionList(QueryFunctions)
	_, err := conn.Exec(ctx, `DO $$
		DECLARE extra text;
		BEGIN
			SELECT string_agg(p.oid::regprocedure::text, ', ') INTO extra FROM pg_catalog.pg_proc p
			WHERE EXISTS (SELECT FROM pg_catalog.aclexplode(p.proacl) a
			              WHERE a.grantee IN ('`+QueryRole+`'::regrole, '`+SandboxRole+`'::regrole) AND a.privilege_type = 'EXECUTE');
			IF extra IS NOT NULL THEN
				EXECUTE 'REVOKE EXECUTE ON ROUTINE ' || extra || ' FROM `+QueryRole+`, `+SandboxRole+`';
			END IF;
		END $$`)
	if err != nil {
		return fmt.Errorf("reset %s's functions: %w", SandboxRole, err)
	}
	var have []string
	rows, err := conn.Query(ctx, `SELECT to_regprocedure(s)::text FROM unnest($1::text[]) s WHERE to_regprocedure(s) IS NOT NULL`, sigs)
	if err != nil {
		return err
	}
	if have, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return err
	}
	if len(have) == 0 {
		return nil
	}
	if _, err := conn.Exec(ctx, `GRANT EXECUTE ON ROUTINE `+strings.Join(have, ", ")+` TO `+SandboxRole); err != nil {
		return fmt.Errorf("grant %s its functions: %w", SandboxRole, err)
	}
	// The audit compares what untrusted SQL may execute with this list.
	if _, err := conn.Exec(ctx, `DELETE FROM dbchat_migrations.sandbox_functions`); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `INSERT INTO dbchat_migrations.sandbox_functions (fn) SELECT to_regprocedure(s) FROM unnest($1::text[]) s`, have)
	return err
}

// ParseFunctionList reads query_functions.txt: one signature a line, blank
// lines and '#' comments skipped.
func ParseFunctionList(text string) []string {
	var sigs []string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sigs = append(sigs, line)
	}
	return sigs
}
