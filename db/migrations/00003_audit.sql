-- Isolation you can audit. The schema `audit` holds plain views over the
-- system catalogs that let a DBA (psql, as dbchat_auditor) or `dbchat audit`
-- check the isolation rules of docs/SECURITY.md without trusting our word:
--
--   audit.rls_coverage  every platform and tenant data table, with a verdict
--   audit.policies      every policy, in readable form
--   audit.roles         the dbchat roles, their attributes and memberships
--   audit.grants        who may do what on which relation, function, schema
--   audit.findings      one row per problem found by the lints; a clean
--                       database has none
--
-- The views read catalogs only, never a tenant row, and run with the
-- caller's rights (security_invoker): every catalog they read is readable by
-- any role, so dbchat_auditor sees exactly what a superuser sees. The lints
-- live here, in SQL, so psql and `dbchat audit` report the same thing.
--
-- "Tenant tables" are the tables (and partitioned tables) of the platform
-- schema dbchat and of every tenant data schema t_<hex>. Their tenant column
-- is tenant_id, except dbchat.tenants, which is keyed by id.

-- +goose Up
CREATE SCHEMA audit;
COMMENT ON SCHEMA audit IS
    'dbchat isolation audit: views over the catalogs (no tenant rows). Start with SELECT * FROM audit.findings; (zero rows = clean).';

CREATE VIEW audit.policies WITH (security_invoker = true) AS
SELECT n.nspname::text AS schema,
       c.relname::text AS table_name,
       p.polname::text AS policy,
       CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END AS kind,
       CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                     WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
       ARRAY(SELECT CASE WHEN r.oid = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r.oid)::text END
             FROM unnest(p.polroles) AS r (oid) ORDER BY 1) AS roles,
       pg_get_expr(p.polqual, p.polrelid) AS using_expr,
       pg_get_expr(p.polwithcheck, p.polrelid) AS with_check_expr,
       obj_description(p.oid, 'pg_policy') AS comment
FROM pg_catalog.pg_policy p
JOIN pg_catalog.pg_class c ON c.oid = p.polrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY 1, 2, 3;
COMMENT ON VIEW audit.policies IS
    'Every row-level security policy: table, PERMISSIVE/RESTRICTIVE, command, roles, USING and WITH CHECK as PostgreSQL prints them.';

CREATE VIEW audit.roles WITH (security_invoker = true) AS
SELECT r.rolname::text AS role,
       r.rolsuper AS superuser,
       r.rolbypassrls AS bypassrls,
       r.rolcanlogin AS login,
       r.rolinherit AS inherit,
       r.rolcreaterole AS createrole,
       r.rolcreatedb AS createdb,
       r.rolreplication AS replication,
       r.rolconnlimit AS connection_limit,
       ARRAY(SELECT g.rolname::text FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1) AS member_of,
       ARRAY(SELECT u.rolname::text FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles u ON u.oid = m.member
             WHERE m.roleid = r.oid ORDER BY 1) AS members,
       coalesce(r.rolconfig, '{}') AS settings,
       (SELECT count(*) FROM pg_catalog.pg_class c WHERE c.relowner = r.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')) AS owned_relations,
       (SELECT count(*) FROM pg_catalog.pg_proc p WHERE p.proowner = r.oid) AS owned_functions,
       (SELECT count(*) FROM pg_catalog.pg_namespace n WHERE n.nspowner = r.oid) AS owned_schemas
FROM pg_catalog.pg_roles r
WHERE r.rolname LIKE 'dbchat\_%'
ORDER BY 1;
COMMENT ON VIEW audit.roles IS
    'The dbchat_* roles: superuser, BYPASSRLS, LOGIN, INHERIT, memberships both ways, role settings and what each owns. Only dbchat_operator may have BYPASSRLS; none may be superuser.';

CREATE VIEW audit.grants WITH (security_invoker = true) AS
WITH objects AS (
    -- Relations in the dbchat schemas, the tenant data schemas and audit.
    SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                          WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence' ELSE 'table' END AS object_type,
           n.nspname::text AS schema, format('%I.%I', n.nspname, c.relname) AS object, NULL::text AS column_name,
           c.relowner AS owner,
           coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND (n.nspname IN ('dbchat', 'dbchat_ops', 'dbchat_migrations', 'audit') OR n.nspname LIKE 't\_%')
    UNION ALL
    -- Column-level grants on those relations.
    SELECT 'column', n.nspname::text, format('%I.%I', n.nspname, c.relname), a.attname::text, c.relowner, a.attacl
    FROM pg_catalog.pg_attribute a
    JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
      AND (n.nspname IN ('dbchat', 'dbchat_ops', 'dbchat_migrations', 'audit') OR n.nspname LIKE 't\_%')
    UNION ALL
    -- Functions in those schemas.
    SELECT 'function', n.nspname::text,
           format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), NULL,
           p.proowner, coalesce(p.proacl, acldefault('f', p.proowner))
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname IN ('dbchat', 'dbchat_ops', 'dbchat_migrations', 'audit') OR n.nspname LIKE 't\_%'
    UNION ALL
    -- The built-in functions and views `dbchat migrate` hardens (revoked from PUBLIC).
    SELECT 'function', 'pg_catalog', format('pg_catalog.%I(%s)', p.proname, pg_get_function_identity_arguments(p.oid)), NULL,
           p.proowner, coalesce(p.proacl, acldefault('f', p.proowner))
    FROM pg_catalog.pg_proc p
    WHERE p.oid IN (SELECT to_regprocedure(s) FROM unnest(ARRAY[
        'pg_catalog.set_config(text,text,boolean)',
        'pg_catalog.pg_advisory_lock(bigint)', 'pg_catalog.pg_advisory_lock(integer,integer)',
        'pg_catalog.pg_advisory_lock_shared(bigint)', 'pg_catalog.pg_advisory_lock_shared(integer,integer)',
        'pg_catalog.pg_try_advisory_lock(bigint)', 'pg_catalog.pg_try_advisory_lock(integer,integer)',
        'pg_catalog.pg_try_advisory_lock_shared(bigint)', 'pg_catalog.pg_try_advisory_lock_shared(integer,integer)',
        'pg_catalog.pg_notify(text,text)', 'pg_catalog.pg_cancel_backend(integer)',
        'pg_catalog.pg_terminate_backend(integer,bigint)', 'pg_catalog.pg_stat_get_activity(integer)']) AS s)
    UNION ALL
    SELECT 'view', 'pg_catalog', 'pg_catalog.pg_stat_activity', NULL, c.relowner,
           coalesce(c.relacl, acldefault('r', c.relowner))
    FROM pg_catalog.pg_class c WHERE c.oid = to_regclass('pg_catalog.pg_stat_activity')
    UNION ALL
    -- The schemas themselves (USAGE, CREATE).
    SELECT 'schema', n.nspname::text, quote_ident(n.nspname), NULL, n.nspowner, coalesce(n.nspacl, acldefault('n', n.nspowner))
    FROM pg_catalog.pg_namespace n
    WHERE n.nspname IN ('dbchat', 'dbchat_ops', 'dbchat_migrations', 'audit', 'public') OR n.nspname LIKE 't\_%'
    UNION ALL
    -- This database (CONNECT, CREATE, TEMPORARY).
    SELECT 'database', NULL, quote_ident(d.datname), NULL, d.datdba, coalesce(d.datacl, acldefault('d', d.datdba))
    FROM pg_catalog.pg_database d WHERE d.datname = current_database()
)
SELECT o.object_type,
       o.schema,
       o.object,
       o.column_name,
       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END AS grantee,
       a.privilege_type AS privilege,
       a.is_grantable AS grantable,
       a.grantee = o.owner AS is_owner,
       pg_get_userbyid(a.grantor)::text AS grantor
FROM objects o
CROSS JOIN LATERAL aclexplode(o.acl) AS a (grantor, grantee, privilege_type, is_grantable)
ORDER BY o.object_type, o.object, o.column_name NULLS FIRST, 5, 6;
COMMENT ON VIEW audit.grants IS
    'Privileges, one row per grantee and privilege, on the relations, columns, functions and schemas of dbchat, dbchat_ops, dbchat_migrations, audit and every t_* schema, on this database, and on the built-in functions dbchat migrate revokes from PUBLIC. is_owner marks the owner''s implicit rights.';

CREATE VIEW audit.findings WITH (security_invoker = true) AS
WITH RECURSIVE
tenant_tables AS (
    SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
           format('%I.%I', n.nspname, c.relname) AS qname,
           CASE WHEN n.nspname = 'dbchat' AND c.relname = 'tenants' THEN 'id' ELSE 'tenant_id' END AS tcol,
           (SELECT a.attnum FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = c.oid AND NOT a.attisdropped AND a.attnum > 0
              AND a.attname = CASE WHEN n.nspname = 'dbchat' AND c.relname = 'tenants' THEN 'id' ELSE 'tenant_id' END) AS tattnum
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND (n.nspname = 'dbchat' OR n.nspname LIKE 't\_%')
),
pols AS (
    SELECT p.oid, p.polrelid, p.polname, p.polpermissive, p.polcmd, p.polroles, t.qname, t.tcol,
           pg_get_expr(p.polqual, p.polrelid) AS qual,
           pg_get_expr(p.polwithcheck, p.polrelid) AS wcheck,
           CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                         WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS cmd
    FROM pg_catalog.pg_policy p JOIN tenant_tables t ON t.oid = p.polrelid
),
-- Relations, schemas and functions that are not the system's or an extension's.
user_relations AS (
    SELECT c.oid, c.relkind, c.relowner, n.nspname, format('%I.%I', n.nspname, c.relname) AS qname,
           CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                          WHEN 'f' THEN 'foreign table' WHEN 'S' THEN 'sequence' ELSE 'table' END AS kind
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
),
user_schemas AS (
    SELECT n.oid, n.nspname, n.nspowner FROM pg_catalog.pg_namespace n
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
),
user_functions AS (
    SELECT p.oid, p.proowner, p.prosecdef, p.proconfig, p.proacl, n.nspname,
           format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) AS qname
    FROM pg_catalog.pg_proc p JOIN user_schemas n ON n.oid = p.pronamespace
    WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
),
-- Views and materialized views that read a tenant table directly.
over_tenant AS (
    SELECT DISTINCT v.oid, v.qname, v.kind, v.relkind, t.qname AS tname
    FROM user_relations v
    JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = v.oid
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass
    JOIN tenant_tables t ON t.oid = d.refobjid
    WHERE v.relkind IN ('v', 'm') AND d.refobjid <> v.oid
),
roles AS (
    SELECT r.oid, r.rolname::text AS rolname, r.rolsuper, r.rolbypassrls, r.rolcanlogin
    FROM pg_catalog.pg_roles r WHERE r.rolname LIKE 'dbchat\_%'
),
app AS (SELECT * FROM roles WHERE rolname = 'dbchat_app'),
query AS (SELECT * FROM roles WHERE rolname = 'dbchat_query'),
-- Privilege lints skip a superuser, which holds every privilege: role_superuser
-- or runtime_role_superuser already reports it.
app_nosuper AS (SELECT * FROM app WHERE NOT rolsuper),
query_nosuper AS (SELECT * FROM query WHERE NOT rolsuper),
-- Policy expressions with every scalar subquery cut out, innermost
-- parentheses first: a current_setting left over is evaluated per row.
exprs AS (
    SELECT oid, qname, polname, 'USING' AS clause, qual AS expr FROM pols WHERE qual IS NOT NULL
    UNION ALL
    SELECT oid, qname, polname, 'WITH CHECK', wcheck FROM pols WHERE wcheck IS NOT NULL
),
stripped (oid, qname, polname, clause, expr, s, depth) AS (
    SELECT oid, qname, polname, clause, expr, expr, 0 FROM exprs
    UNION ALL
    SELECT oid, qname, polname, clause, expr,
           regexp_replace(regexp_replace(s, '\(\s*SELECT\s[^()]*\)', ' <subquery> ', 'gi'), '\(([^()]*)\)', '[\1]', 'g'),
           depth + 1
    FROM stripped WHERE s ~ '[()]' AND depth < 64
),
per_row AS (
    SELECT DISTINCT ON (oid, clause) oid, qname, polname, clause, expr, s
    FROM stripped ORDER BY oid, clause, depth DESC
),
hardened (sig) AS (
    VALUES ('pg_catalog.pg_advisory_lock(bigint)'), ('pg_catalog.pg_advisory_lock(integer, integer)'),
           ('pg_catalog.pg_advisory_lock_shared(bigint)'), ('pg_catalog.pg_advisory_lock_shared(integer, integer)'),
           ('pg_catalog.pg_try_advisory_lock(bigint)'), ('pg_catalog.pg_try_advisory_lock(integer, integer)'),
           ('pg_catalog.pg_try_advisory_lock_shared(bigint)'), ('pg_catalog.pg_try_advisory_lock_shared(integer, integer)'),
           ('pg_catalog.pg_notify(text, text)'), ('pg_catalog.pg_cancel_backend(integer)'),
           ('pg_catalog.pg_terminate_backend(integer, bigint)'), ('pg_catalog.pg_stat_get_activity(integer)')
),
found (lint, level, object_type, object, detail, remedy) AS (
    -- RLS state of each tenant table.
    SELECT 'rls_disabled_in_tenant_table', 'ERROR', 'table', t.qname,
           'row-level security is disabled and there is no policy: every role with a grant sees and writes every tenant''s rows',
           format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY; ALTER TABLE %1$s FORCE ROW LEVEL SECURITY; CREATE POLICY tenant_isolation ON %1$s USING (%2$I = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::uuid)) WITH CHECK (%2$I = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::uuid));', t.qname, t.tcol)
    FROM tenant_tables t
    WHERE NOT t.relrowsecurity AND NOT EXISTS (SELECT FROM pols p WHERE p.polrelid = t.oid)
    UNION ALL
    SELECT 'policy_exists_rls_disabled', 'ERROR', 'table', t.qname,
           format('policies %s exist but row-level security is disabled, so none of them applies', (SELECT string_agg(quote_ident(p.polname), ', ' ORDER BY p.polname) FROM pols p WHERE p.polrelid = t.oid)),
           format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY; ALTER TABLE %1$s FORCE ROW LEVEL SECURITY;', t.qname)
    FROM tenant_tables t
    WHERE NOT t.relrowsecurity AND EXISTS (SELECT FROM pols p WHERE p.polrelid = t.oid)
    UNION ALL
    SELECT 'rls_not_forced', 'ERROR', 'table', t.qname,
           'row-level security is enabled but not forced: the table owner (dbchat_owner, which runs migrations and the SECURITY DEFINER functions) bypasses the policies',
           format('ALTER TABLE %s FORCE ROW LEVEL SECURITY;', t.qname)
    FROM tenant_tables t
    WHERE t.relrowsecurity AND NOT t.relforcerowsecurity
    UNION ALL
    SELECT 'rls_enabled_no_policy', 'WARN', 'table', t.qname,
           'row-level security is enabled but the table has no policy: nobody can read or write it (default deny), so it is either unused or protected some other way',
           format('CREATE POLICY tenant_isolation ON %s USING (%I = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::uuid)) WITH CHECK (same);', t.qname, t.tcol)
    FROM tenant_tables t
    WHERE t.relrowsecurity AND NOT EXISTS (SELECT FROM pols p WHERE p.polrelid = t.oid)

    -- The policies themselves.
    UNION ALL
    SELECT 'permissive_policy_always_true', 'ERROR', 'table', p.qname,
           format('permissive policy %I (%s) has %s: it admits every tenant''s rows, and permissive policies are ORed, so it voids the others',
                  p.polname, p.cmd,
                  concat_ws(' and ', CASE WHEN p.qual ~* '^[\s(]*true[\s)]*$' THEN 'USING (true)' END,
                                     CASE WHEN p.wcheck ~* '^[\s(]*true[\s)]*$' THEN 'WITH CHECK (true)' END)),
           format('DROP POLICY %I ON %s; (or rewrite it to compare %I with app.tenant_id)', p.polname, p.qname, p.tcol)
    FROM pols p
    WHERE p.polpermissive AND (p.qual ~* '^[\s(]*true[\s)]*$' OR p.wcheck ~* '^[\s(]*true[\s)]*$')
    UNION ALL
    SELECT 'policy_not_tenant_scoped', 'ERROR', 'table', p.qname,
           format('permissive policy %I (%s) does not compare %I with current_setting(''app.tenant_id''): %s',
                  p.polname, p.cmd, p.tcol, concat_ws(' / ', 'USING ' || p.qual, 'WITH CHECK ' || p.wcheck)),
           format('ALTER POLICY %I ON %s USING (%I = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::uuid)) WITH CHECK (same);', p.polname, p.qname, p.tcol)
    FROM pols p
    WHERE p.polpermissive
      AND NOT (coalesce(p.qual ~* '^[\s(]*true[\s)]*$', false) OR coalesce(p.wcheck ~* '^[\s(]*true[\s)]*$', false))
      AND (   (p.qual IS NOT NULL AND NOT (p.qual ~ 'current_setting\(''app\.tenant_id''' AND p.qual ~ ('\m' || p.tcol || '\M')))
           OR (p.wcheck IS NOT NULL AND NOT (p.wcheck ~ 'current_setting\(''app\.tenant_id''' AND p.wcheck ~ ('\m' || p.tcol || '\M'))))
    UNION ALL
    SELECT 'policy_without_with_check', 'WARN', 'table', p.qname,
           format('permissive policy %I (%s) has no WITH CHECK: %s', p.polname, p.cmd,
                  CASE WHEN p.polcmd = 'a' THEN 'an INSERT policy without WITH CHECK admits no row'
                       ELSE 'PostgreSQL reuses USING for writes, but the rule is to spell out what a write may carry' END),
           format('ALTER POLICY %I ON %s WITH CHECK (%I = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::uuid));', p.polname, p.qname, p.tcol)
    FROM pols p
    WHERE p.polpermissive AND p.polcmd IN ('*', 'a', 'w') AND p.wcheck IS NULL
    UNION ALL
    SELECT 'policy_reads_setting_per_row', 'WARN', 'table', r.qname,
           format('policy %I reads current_setting() per row in %s (%s): wrap it in a scalar subquery so it is evaluated once per statement and the comparison can use an index',
                  r.polname, r.clause, r.expr),
           format('ALTER POLICY %I ON %s ... (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::uuid) ...;', r.polname, r.qname)
    FROM per_row r
    WHERE r.s ~* 'current_setting'
    UNION ALL
    SELECT 'multiple_permissive_policies', 'WARN', 'table', p1.qname,
           format('permissive policies %I (%s) and %I (%s) apply to the same command and roles: permissive policies are ORed, so each must be as strict as the other',
                  p1.polname, p1.cmd, p2.polname, p2.cmd),
           'keep one permissive tenant_isolation policy per table; express further restrictions AS RESTRICTIVE'
    FROM pols p1
    JOIN pols p2 ON p2.polrelid = p1.polrelid AND p2.oid > p1.oid
    WHERE p1.polpermissive AND p2.polpermissive
      AND (p1.polcmd = p2.polcmd OR p1.polcmd = '*' OR p2.polcmd = '*')
      AND (0 = ANY (p1.polroles) OR 0 = ANY (p2.polroles) OR p1.polroles && p2.polroles)

    -- Relations RLS does not protect.
    UNION ALL
    SELECT 'view_without_security_invoker', 'ERROR', 'view', o.qname,
           format('view reads the tenant table %s with its owner''s rights (no security_invoker): the caller''s grants and, for an owner that bypasses RLS, the policy do not apply', string_agg(o.tname, ', ' ORDER BY o.tname)),
           format('ALTER VIEW %s SET (security_invoker = true);', o.qname)
    FROM over_tenant o
    JOIN pg_catalog.pg_class c ON c.oid = o.oid
    WHERE o.relkind = 'v'
      AND NOT coalesce((SELECT bool_or(opt.option_value::boolean) FROM pg_options_to_table(c.reloptions) opt
                        WHERE opt.option_name = 'security_invoker'), false)
    GROUP BY o.qname
    UNION ALL
    SELECT 'materialized_view_tenant_data', 'ERROR', 'materialized view', r.qname,
           CASE WHEN EXISTS (SELECT FROM over_tenant o WHERE o.oid = r.oid)
                THEN format('materialized view copies tenant rows from %s; row-level security does not apply to materialized views', (SELECT string_agg(o.tname, ', ' ORDER BY o.tname) FROM over_tenant o WHERE o.oid = r.oid))
                ELSE 'materialized view in a tenant schema; row-level security does not apply to materialized views' END,
           format('DROP MATERIALIZED VIEW %s; (use a view WITH (security_invoker = true), or a table with the tenant_isolation policy)', r.qname)
    FROM user_relations r
    WHERE r.relkind = 'm'
      AND (r.nspname = 'dbchat' OR r.nspname LIKE 't\_%' OR EXISTS (SELECT FROM over_tenant o WHERE o.oid = r.oid))
    UNION ALL
    SELECT 'foreign_table_tenant_data', 'ERROR', 'foreign table', r.qname,
           'foreign table in a tenant schema; row-level security does not apply to foreign tables',
           format('DROP FOREIGN TABLE %s; (keep tenant data in tables with the tenant_isolation policy)', r.qname)
    FROM user_relations r
    WHERE r.relkind = 'f' AND (r.nspname = 'dbchat' OR r.nspname LIKE 't\_%')

    -- SECURITY DEFINER functions.
    UNION ALL
    SELECT 'security_definer_search_path_mutable', 'ERROR', 'function', f.qname,
           'SECURITY DEFINER function without a pinned search_path: a caller can put its own objects first on the path and run them with the owner''s rights',
           format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;', f.qname)
    FROM user_functions f
    WHERE f.prosecdef
      AND NOT EXISTS (SELECT FROM unnest(f.proconfig) AS cfg (setting) WHERE cfg.setting LIKE 'search\_path=%')
    UNION ALL
    SELECT 'security_definer_executable_by_public', 'ERROR', 'function', f.qname,
           'SECURITY DEFINER function executable by PUBLIC: every role, dbchat_query included, can run it with the owner''s rights',
           format('REVOKE ALL ON FUNCTION %s FROM PUBLIC; GRANT EXECUTE ON FUNCTION %1$s TO dbchat_app;', f.qname)
    FROM user_functions f
    WHERE f.prosecdef
      AND EXISTS (SELECT FROM aclexplode(coalesce(f.proacl, acldefault('f', f.proowner))) a
                  WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')

    -- Roles.
    UNION ALL
    SELECT 'role_missing', 'ERROR', 'role', expected.name,
           'a dbchat role is missing',
           'run `dbchat migrate`'
    FROM (VALUES ('dbchat_owner'), ('dbchat_app'), ('dbchat_query'), ('dbchat_auditor'), ('dbchat_operator')) AS expected (name)
    WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = expected.name)
    UNION ALL
    SELECT 'runtime_role_superuser', 'ERROR', 'role', a.rolname,
           'the runtime role is a superuser: row-level security never applies to it',
           'ALTER ROLE dbchat_app NOSUPERUSER; (or run `dbchat migrate`, which re-applies the attributes)'
    FROM app a WHERE a.rolsuper
    UNION ALL
    SELECT 'runtime_role_bypassrls', 'ERROR', 'role', a.rolname,
           'the runtime role has BYPASSRLS: every tenant policy is skipped for it',
           'ALTER ROLE dbchat_app NOBYPASSRLS; (or run `dbchat migrate`)'
    FROM app a WHERE a.rolbypassrls
    UNION ALL
    SELECT 'runtime_role_owns_objects', 'ERROR', o.object_type, o.object,
           format('owned by the runtime role dbchat_app: an owner bypasses non-forced policies, can ALTER or DROP the object and turn RLS off'),
           format('ALTER %s %s OWNER TO dbchat_owner;', upper(o.object_type), o.object)
    FROM app a
    JOIN (SELECT r.relowner AS owner, r.kind AS object_type, r.qname AS object FROM user_relations r
          UNION ALL SELECT f.proowner, 'function', f.qname FROM user_functions f
          UNION ALL SELECT s.nspowner, 'schema', quote_ident(s.nspname) FROM user_schemas s) o ON o.owner = a.oid
    UNION ALL
    SELECT 'runtime_role_can_create', 'ERROR', o.object_type, o.object,
           format('the runtime role dbchat_app may CREATE in this %s: it could create tables it owns, without row-level security', o.object_type),
           format('REVOKE CREATE ON %s %s FROM dbchat_app;', upper(o.object_type), o.object)
    FROM app_nosuper a
    JOIN (SELECT s.oid, 'schema' AS object_type, quote_ident(s.nspname) AS object, false AS is_db FROM user_schemas s
          UNION ALL SELECT d.oid, 'database', quote_ident(d.datname), true FROM pg_catalog.pg_database d WHERE d.datname = current_database()) o
      ON CASE WHEN o.is_db THEN has_database_privilege(a.oid, o.oid, 'CREATE') ELSE has_schema_privilege(a.oid, o.oid, 'CREATE') END
    UNION ALL
    SELECT 'login_role_membership', 'ERROR', 'role', r.rolname,
           format('%s is a member of %s and can SET ROLE to it (and use its privileges%s)', r.rolname, g.rolname,
                  CASE WHEN g.rolbypassrls OR g.rolsuper THEN ', which bypass row-level security' ELSE '' END),
           format('REVOKE %I FROM %I;', g.rolname, r.rolname)
    FROM roles r
    JOIN pg_catalog.pg_auth_members m ON m.member = r.oid
    JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
    WHERE r.rolname IN ('dbchat_app', 'dbchat_query')
       OR (r.rolname = 'dbchat_auditor'
           AND (g.rolname LIKE 'dbchat\_%' OR g.rolsuper OR g.rolbypassrls OR g.rolname IN ('pg_read_all_data', 'pg_write_all_data')))
    UNION ALL
    SELECT 'query_role_can_write', 'ERROR', o.object_type, o.object,
           format('the query role dbchat_query (untrusted SQL) may %s', o.what),
           o.remedy
    FROM query_nosuper q
    JOIN LATERAL (
        SELECT r.kind AS object_type, r.qname AS object, 'write to it (INSERT, UPDATE, DELETE or TRUNCATE)' AS what,
               format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM dbchat_query;', r.qname) AS remedy
        FROM user_relations r
        WHERE CASE WHEN r.relkind <> 'S'
                   THEN has_table_privilege(q.oid, r.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
                        OR has_any_column_privilege(q.oid, r.oid, 'INSERT, UPDATE') END
        UNION ALL
        SELECT 'sequence', r.qname, 'advance it (USAGE or UPDATE)', format('REVOKE ALL ON SEQUENCE %s FROM dbchat_query;', r.qname)
        FROM user_relations r
        WHERE CASE WHEN r.relkind = 'S' THEN has_sequence_privilege(q.oid, r.oid, 'USAGE, UPDATE') END
        UNION ALL
        SELECT 'schema', quote_ident(s.nspname), 'create objects in it', format('REVOKE CREATE ON SCHEMA %I FROM dbchat_query;', s.nspname)
        FROM user_schemas s WHERE has_schema_privilege(q.oid, s.oid, 'CREATE')
        UNION ALL
        SELECT 'database', quote_ident(d.datname), 'create schemas or temporary tables in it',
               format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM dbchat_query, PUBLIC;', d.datname)
        FROM pg_catalog.pg_database d
        WHERE d.datname = current_database() AND has_database_privilege(q.oid, d.oid, 'CREATE, TEMPORARY')
    ) o ON true
    UNION ALL
    SELECT 'query_role_reads_platform_tables', 'ERROR', r.kind, r.qname,
           'the query role dbchat_query (untrusted SQL) may read this platform relation; it may read tenant data tables only',
           format('REVOKE ALL ON %s FROM dbchat_query;', r.qname)
    FROM query_nosuper q
    JOIN user_relations r ON r.nspname IN ('dbchat', 'dbchat_ops', 'dbchat_migrations', 'audit')
     AND CASE WHEN r.relkind <> 'S' THEN has_any_column_privilege(q.oid, r.oid, 'SELECT') END
    UNION ALL
    SELECT 'query_role_can_set_config', 'ERROR', 'function', 'pg_catalog.set_config(text, text, boolean)',
           'the query role dbchat_query may execute set_config(): a SELECT could change app.tenant_id or role mid-statement',
           'REVOKE EXECUTE ON FUNCTION pg_catalog.set_config(text, text, boolean) FROM PUBLIC, dbchat_query; (or run `dbchat migrate`)'
    FROM query_nosuper q
    WHERE has_function_privilege(q.oid, 'pg_catalog.set_config(text,text,boolean)', 'EXECUTE')
    UNION ALL
    SELECT 'query_role_can_call_hardened_function', 'WARN', 'function', h.sig,
           'the query role dbchat_query may execute a function dbchat migrate revokes from PUBLIC (advisory locks outlive the statement, notify and signal other sessions, or show other sessions'' SQL)',
           format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, dbchat_query; (or run `dbchat migrate`)', h.sig)
    FROM query_nosuper q
    JOIN hardened h ON to_regprocedure(h.sig) IS NOT NULL AND has_function_privilege(q.oid, to_regprocedure(h.sig), 'EXECUTE')
    UNION ALL
    SELECT 'query_role_can_call_hardened_function', 'WARN', 'view', 'pg_catalog.pg_stat_activity',
           'the query role dbchat_query may read pg_stat_activity: one tenant would see the SQL text of another''s concurrent statement',
           'REVOKE SELECT ON pg_catalog.pg_stat_activity FROM PUBLIC, dbchat_query; (or run `dbchat migrate`)'
    FROM query_nosuper q
    WHERE has_table_privilege(q.oid, 'pg_catalog.pg_stat_activity', 'SELECT')
    UNION ALL
    SELECT 'auditor_reads_tenant_rows', 'ERROR', 'table', t.qname,
           'dbchat_auditor may read this tenant table; the auditor reads catalogs and audit views only',
           format('REVOKE ALL ON %s FROM dbchat_auditor;', t.qname)
    FROM roles r
    JOIN tenant_tables t ON has_any_column_privilege(r.oid, t.oid, 'SELECT')
    WHERE r.rolname = 'dbchat_auditor' AND NOT r.rolsuper
    UNION ALL
    SELECT 'role_superuser', 'ERROR', 'role', r.rolname,
           'a dbchat role is a superuser: row-level security never applies to it',
           format('ALTER ROLE %I NOSUPERUSER; (or run `dbchat migrate`)', r.rolname)
    FROM roles r WHERE r.rolsuper AND r.rolname <> 'dbchat_app'
    UNION ALL
    SELECT 'role_bypassrls', 'ERROR', 'role', r.rolname,
           'a dbchat role other than dbchat_operator has BYPASSRLS: every tenant policy is skipped for it',
           format('ALTER ROLE %I NOBYPASSRLS; (or run `dbchat migrate`)', r.rolname)
    FROM roles r WHERE r.rolbypassrls AND r.rolname NOT IN ('dbchat_app', 'dbchat_operator')
    UNION ALL
    SELECT 'operator_role_can_login', 'ERROR', 'role', r.rolname,
           'dbchat_operator (BYPASSRLS) can log in: anyone with its password reads every tenant',
           'ALTER ROLE dbchat_operator NOLOGIN; (or run `dbchat migrate`)'
    FROM roles r WHERE r.rolname = 'dbchat_operator' AND r.rolcanlogin
    UNION ALL
    SELECT 'operator_role_owns_objects', 'ERROR', o.object_type, o.object,
           'owned by dbchat_operator (BYPASSRLS), which must own only the schema dbchat_ops and dbchat_ops.list_tenants(): as the owner, this object runs or reads with RLS bypassed',
           format('ALTER %s %s OWNER TO dbchat_owner;', upper(o.object_type), o.object)
    FROM roles r
    JOIN (SELECT c.relowner AS owner, ur.kind AS object_type, ur.qname AS object
          FROM pg_catalog.pg_class c JOIN user_relations ur ON ur.oid = c.oid
          UNION ALL SELECT f.proowner, 'function', f.qname FROM user_functions f
          WHERE f.qname <> 'dbchat_ops.list_tenants()'
          UNION ALL SELECT s.nspowner, 'schema', quote_ident(s.nspname) FROM user_schemas s WHERE s.nspname <> 'dbchat_ops'
          UNION ALL SELECT d.datdba, 'database', quote_ident(d.datname) FROM pg_catalog.pg_database d) o ON o.owner = r.oid
    WHERE r.rolname = 'dbchat_operator'

    -- Keys: tenant_id everywhere.
    UNION ALL
    SELECT 'tenant_table_without_tenant_id', 'ERROR', 'table', t.qname,
           CASE WHEN a.attnum IS NULL THEN format('tenant table without a %I column: no policy can scope its rows to a tenant', t.tcol)
                ELSE format('%I is %s%s, not uuid NOT NULL', t.tcol, format_type(a.atttypid, a.atttypmod),
                            CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' (nullable)' END) END,
           format('ALTER TABLE %s ADD COLUMN %I uuid NOT NULL DEFAULT nullif(current_setting(''app.tenant_id'', true), '''')::uuid; (or move the table out of the tenant schemas)', t.qname, t.tcol)
    FROM tenant_tables t
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = t.tattnum
    WHERE a.attnum IS NULL OR a.atttypid <> 'uuid'::regtype OR NOT a.attnotnull
    UNION ALL
    SELECT 'unique_key_without_tenant_id', 'ERROR', 'table', t.qname,
           format('unique index %I does not include %I: its uniqueness check spans tenants, so an insert learns whether another tenant has the value (%s)',
                  ic.relname, t.tcol, pg_get_indexdef(i.indexrelid)),
           format('replace it with a key that leads with %I, e.g. UNIQUE (%1$I, ...)', t.tcol)
    FROM tenant_tables t
    JOIN pg_catalog.pg_index i ON i.indrelid = t.oid AND i.indisunique
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    WHERE t.tattnum IS NOT NULL
      AND NOT (t.tattnum = ANY (i.indkey::int2[]))
      -- The documented exception: slugs are global names chosen by the operator.
      AND NOT (t.nspname = 'dbchat' AND t.relname = 'tenants' AND ic.relname = 'tenants_slug_key')
    UNION ALL
    SELECT 'foreign_key_without_tenant_id', 'ERROR', 'table', t.qname,
           format('foreign key %I references %s without pairing %I with its %I: a row can point at another tenant''s row, and the key check reads across tenants (%s)',
                  con.conname, rt.qname, t.tcol, rt.tcol, pg_get_constraintdef(con.oid)),
           format('ALTER TABLE %s DROP CONSTRAINT %I, ADD FOREIGN KEY (%I, ...) REFERENCES %s (%I, ...);', t.qname, con.conname, t.tcol, rt.qname, rt.tcol)
    FROM tenant_tables t
    JOIN pg_catalog.pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
    JOIN tenant_tables rt ON rt.oid = con.confrelid
    WHERE t.tattnum IS NOT NULL AND rt.tattnum IS NOT NULL
      AND NOT EXISTS (SELECT FROM generate_subscripts(con.conkey, 1) k
                      WHERE con.conkey[k] = t.tattnum AND con.confkey[k] = rt.tattnum)
)
SELECT lint, level, object_type, object, detail, remedy
FROM found
ORDER BY CASE level WHEN 'ERROR' THEN 0 WHEN 'WARN' THEN 1 ELSE 2 END, lint, object, detail;
COMMENT ON VIEW audit.findings IS
    'One row per isolation problem found by the lints (lint, level ERROR/WARN, object, detail, remedy). A clean database returns zero rows. docs/SECURITY.md lists the lints.';

CREATE VIEW audit.rls_coverage WITH (security_invoker = true) AS
WITH tenant_tables AS (
    SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
           format('%I.%I', n.nspname, c.relname) AS qname,
           CASE WHEN n.nspname = 'dbchat' AND c.relname = 'tenants' THEN 'id' ELSE 'tenant_id' END AS tcol
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND (n.nspname = 'dbchat' OR n.nspname LIKE 't\_%')
),
problems AS (
    SELECT f.object, f.lint, f.level, f.detail FROM audit.findings f WHERE f.object_type = 'table'
)
SELECT t.nspname::text AS schema,
       t.relname::text AS table_name,
       CASE WHEN t.nspname = 'dbchat' THEN 'platform' ELSE 'tenant data' END AS kind,
       t.relrowsecurity AS rls_enabled,
       t.relforcerowsecurity AS rls_forced,
       ARRAY(SELECT p.polname::text FROM pg_catalog.pg_policy p WHERE p.polrelid = t.oid ORDER BY 1) AS policies,
       CASE WHEN EXISTS (SELECT FROM problems p WHERE p.object = t.qname AND p.lint = 'tenant_table_without_tenant_id')
            THEN NULL ELSE t.tcol END AS tenant_column,
       NOT EXISTS (SELECT FROM problems p WHERE p.object = t.qname AND p.lint = 'tenant_table_without_tenant_id') AS has_tenant_id,
       NOT EXISTS (SELECT FROM problems p WHERE p.object = t.qname AND p.lint IN ('unique_key_without_tenant_id', 'tenant_table_without_tenant_id')) AS keys_include_tenant_id,
       NOT EXISTS (SELECT FROM problems p WHERE p.object = t.qname AND p.lint IN ('foreign_key_without_tenant_id', 'tenant_table_without_tenant_id')) AS foreign_keys_include_tenant_id,
       CASE WHEN EXISTS (SELECT FROM problems p WHERE p.object = t.qname AND p.level = 'ERROR') THEN 'fail'
            WHEN EXISTS (SELECT FROM problems p WHERE p.object = t.qname) THEN 'warn'
            ELSE 'ok' END AS verdict,
       coalesce((SELECT string_agg(p.lint || ': ' || p.detail, '; ' ORDER BY p.level, p.lint, p.detail) FROM problems p WHERE p.object = t.qname),
                'RLS enabled and forced; policy ' || (SELECT string_agg(quote_ident(p.polname), ', ' ORDER BY p.polname) FROM pg_catalog.pg_policy p WHERE p.polrelid = t.oid)
                || ' compares ' || t.tcol || ' with app.tenant_id once per statement; '
                || CASE WHEN t.nspname = 'dbchat' AND t.relname = 'tenants'
                        THEN 'keyed by id; the global slug key (tenants_slug_key) is the documented exception'
                        ELSE 'keys and foreign keys include tenant_id' END) AS reason
FROM tenant_tables t
ORDER BY CASE WHEN t.nspname = 'dbchat' THEN 0 ELSE 1 END, 1, 2;
COMMENT ON VIEW audit.rls_coverage IS
    'Every table of the platform schema dbchat and of every tenant data schema t_*: RLS enabled and forced, its policies, the tenant column, whether keys and foreign keys include it, and a verdict (ok/warn/fail) with the reason, taken from audit.findings.';

-- Readers: the auditor (psql, `dbchat audit`) and the runtime role, which
-- serves GET /v1/admin/audit behind the operator token. Both could read the
-- same catalogs directly; the views add no privilege, and neither role gets
-- any tenant row through them.
REVOKE ALL ON SCHEMA audit FROM PUBLIC;
GRANT USAGE ON SCHEMA audit TO dbchat_auditor, dbchat_app;
GRANT SELECT ON audit.policies, audit.roles, audit.grants, audit.findings, audit.rls_coverage TO dbchat_auditor, dbchat_app;

-- +goose Down
DROP SCHEMA audit CASCADE;
