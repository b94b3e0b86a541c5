-- The audit at 10,000 tenants (issue 18, "Data tables at scale"):
-- `dbchat audit` took 35 s there, 21 times its time at 1,000 tenants.
--
-- 1. over_tenant (views over tenant tables) joined every rewrite
--    dependency of the database with tenant_tables, which the planner read
--    once per dependency: 560 × 50,000 comparisons, a quarter of the lints.
--    It now looks each table up by oid.
-- 2. tenant_role_reaches_other_schema named and sorted all of the ACLs'
--    million entries before keeping the few it reports; it now compares
--    oids first (tenant_reach).
-- 3. audit.rls_coverage computes every lint again to give each table its
--    verdict, so a report that read both views ran the lints twice.
--    audit.rls_coverage_rows(findings jsonb) takes the findings already read
--    (audit.findings as a JSON array); the view, and rls_coverage_rows(),
--    compute them as before.
-- The findings are 00032's, row for row (TestAuditAt10kKeepsItsFindings).

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit.findings_rows()
    RETURNS TABLE (lint text, level text, object_type text, object text, detail text, remedy text)
    LANGUAGE sql STABLE
    SET jit = off
    SET search_path = "$user", public, extensions
AS $body$
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
                         WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS cmd,
           -- A claim policy calls dbchat.claim or dbchat.claim_array (pg_depend).
           EXISTS (SELECT FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc f ON f.oid = d.refobjid
                   WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = p.oid
                     AND d.refclassid = 'pg_catalog.pg_proc'::regclass
                     AND f.pronamespace = 'dbchat'::regnamespace AND f.proname IN ('claim', 'claim_array')) AS is_claim,
           -- The columns of its table the policy reads (pg_depend), tenant_id aside.
           ARRAY(SELECT a.attname::text FROM pg_catalog.pg_depend d
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                 WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = p.oid
                   AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = p.polrelid
                   AND d.refobjsubid > 0 AND NOT a.attisdropped AND a.attnum <> coalesce(t.tattnum, 0)
                 ORDER BY 1) AS cols
    FROM pg_catalog.pg_policy p JOIN tenant_tables t ON t.oid = p.polrelid
),
-- End-user policies: claim policies, and any other policy that reads the
-- end user's settings (app.user_id, app.role, app.claims).
end_user_pols AS (
    SELECT * FROM pols
    WHERE is_claim OR concat_ws(' ', qual, wcheck) ~ 'current_setting\(''app\.(user_id|role|claims)'''
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
-- The views and materialized views among them, apart (00022): over_tenant
-- joined every rewrite rule with all relations, which grew with the tables.
user_views AS MATERIALIZED (
    SELECT * FROM user_relations WHERE relkind IN ('v', 'm')
),
-- Views and materialized views that read a tenant table directly.
over_tenant AS (
    SELECT DISTINCT v.oid, v.qname, v.kind, v.relkind, format('%I.%I', tn.nspname, tc.relname) AS tname
    FROM user_views v
    JOIN pg_catalog.pg_rewrite rw ON rw.ev_class = v.oid
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = rw.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass
    -- A tenant table, looked up by oid (00033): joining tenant_tables made
    -- the planner scan all of them once per rewrite dependency of the
    -- database, 28 million comparisons at 10,000 tenants.
    JOIN pg_catalog.pg_class tc ON tc.oid = d.refobjid AND tc.relkind IN ('r', 'p')
    JOIN pg_catalog.pg_namespace tn ON tn.oid = tc.relnamespace AND (tn.nspname = 'dbchat' OR tn.nspname LIKE 't\_%')
    WHERE d.refobjid <> v.oid
),
roles AS (
    SELECT r.oid, r.rolname::text AS rolname, r.rolsuper, r.rolbypassrls, r.rolcanlogin
    FROM pg_catalog.pg_roles r WHERE r.rolname LIKE 'dbchat\_%'
),
app AS (SELECT * FROM roles WHERE rolname = 'dbchat_app'),
query AS (SELECT * FROM roles WHERE rolname IN ('dbchat_query', 'dbchat_sandbox')),
-- The other query logins of this database (00031): dbchat_query_<k> that
-- may connect here (roles are cluster-wide; another database's logins run
-- nothing here). They are dbchat_query's twins and hold nothing of their
-- own, which pg_shdepend shows without a privilege check per relation.
query_logins AS (
    SELECT r.oid, r.rolname FROM roles r
    WHERE r.rolname ~ '^dbchat_query_[0-9]+$' AND has_database_privilege(r.oid, current_database(), 'CONNECT')
),
-- The tenant roles of this database (named like their schema): what
-- untrusted SQL runs as. They are linted by their grants, which are per
-- database, and their memberships.
tenant_roles AS (
    SELECT r.oid, r.rolname::text AS rolname, n.nspname::text AS schema, n.oid AS nspoid, r.rolsuper, r.rolbypassrls, r.rolcanlogin, r.rolcreaterole, r.rolcreatedb
    FROM pg_catalog.pg_roles r JOIN pg_catalog.pg_namespace n ON n.nspname = left(r.rolname, 34)
    WHERE r.rolname ~ '^t_[0-9a-f]{32}(_m)?$'
),
-- Who runs untrusted SQL: PUBLIC (0), dbchat_query, dbchat_sandbox, and the
-- tenant roles (their direct grants; the rest they inherit from dbchat_sandbox).
untrusted (oid, rolname) AS (
    SELECT 0::oid, 'PUBLIC' UNION ALL SELECT oid, rolname FROM query UNION ALL SELECT oid, rolname FROM tenant_roles
),
-- Functions that run SQL text, show other sessions, sleep, lock, touch
-- large objects or files, change shared state, or tell the size or
-- existence of objects by name: never for untrusted SQL.
dangerous AS (
    SELECT p.oid, p.proacl, p.proowner, 'pg_catalog.' || p.oid::regprocedure::text AS sig
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace
      AND p.proname ~ '^(ts_stat|ts_rewrite|query_to_xml.*|query_to_xmlschema|table_to_xml.*|schema_to_xml.*|database_to_xml.*|cursor_to_xml.*|pg_stat_get_.*|pg_stat_.*|pg_sleep.*|setseed|pg_advisory_.*|pg_try_advisory_.*|lo_.*|loread|lowrite|pg_.*_size|to_reg.*|pg_get_.*def|pg_get_.*|pg_read_.*|pg_ls_.*|pg_stat_file|set_config|current_setting|pg_notify|pg_cancel_backend|pg_terminate_backend|pg_backend_pid|pg_blocking_pids|pg_listening_channels|txid_.*|pg_current_xact_id.*|pg_snapshot_.*|pg_xact_.*|pg_relation_filenode|pg_relation_filepath|has_.*_privilege|pg_has_role|pg_table_is_visible|pg_.*_is_visible|pg_describe_object|pg_identify_object.*|pg_catalog.*|obj_description|col_description|shobj_description|pg_backup_.*|pg_switch_wal|pg_reload_conf|pg_rotate_logfile|pg_log_backend_memory_contexts|dblink.*)$'
      -- the tenant_isolation policy reads app.tenant_id with it, as the caller
      AND p.oid <> 'pg_catalog.current_setting(text, boolean)'::regprocedure
),
-- Which untrusted principal may execute which function: PUBLIC's and the
-- tenant roles' grants from the ACLs (one pass), dbchat_query's and
-- dbchat_sandbox's with what they inherit, beyond PUBLIC.
fn_exec AS (
    SELECT p.oid, u.oid AS roid, u.rolname
    FROM pg_catalog.pg_proc p
    CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    JOIN untrusted u ON u.oid = a.grantee AND (u.oid = 0 OR u.rolname ~ '^t_')
    WHERE a.privilege_type = 'EXECUTE'
    UNION
    SELECT p.oid, q.oid, q.rolname
    FROM pg_catalog.pg_proc p CROSS JOIN query_nosuper q
    WHERE has_function_privilege(q.oid, p.oid, 'EXECUTE')
      AND NOT EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                      WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
),
-- Likewise SELECT on catalogs and information_schema views.
catalog_read AS (
    SELECT c.oid, c.relkind, u.oid AS roid, u.rolname
    FROM pg_catalog.pg_class c
    CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
    JOIN untrusted u ON u.oid = a.grantee AND (u.oid = 0 OR u.rolname ~ '^t_')
    WHERE a.privilege_type = 'SELECT'
      AND c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
    UNION
    SELECT c.oid, c.relkind, q.oid, q.rolname
    FROM pg_catalog.pg_class c CROSS JOIN query_nosuper q
    WHERE c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
      AND has_table_privilege(q.oid, c.oid, 'SELECT')
      AND NOT EXISTS (SELECT FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
                      WHERE a.grantee = 0 AND a.privilege_type = 'SELECT')
),
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
-- Each distinct expression is stripped once: every tenant's tables share a
-- handful, and stripping each policy's copy was a third of the query.
stripped (expr, s, depth) AS (
    SELECT DISTINCT expr, expr, 0 FROM exprs
    UNION ALL
    SELECT expr,
           regexp_replace(regexp_replace(s, '\(\s*SELECT\s[^()]*\)', ' <subquery> ', 'gi'), '\(([^()]*)\)', '[\1]', 'g'),
           depth + 1
    FROM stripped WHERE s ~ '[()]' AND depth < 64
),
per_row AS (
    SELECT e.oid, e.qname, e.polname, e.clause, e.expr, f.s
    FROM exprs e
    JOIN (SELECT DISTINCT ON (expr) expr, s FROM stripped ORDER BY expr, depth DESC) f ON f.expr = e.expr
),
hardened (sig) AS (
    VALUES ('pg_catalog.pg_advisory_lock(bigint)'), ('pg_catalog.pg_advisory_lock(integer, integer)'),
           ('pg_catalog.pg_advisory_lock_shared(bigint)'), ('pg_catalog.pg_advisory_lock_shared(integer, integer)'),
           ('pg_catalog.pg_try_advisory_lock(bigint)'), ('pg_catalog.pg_try_advisory_lock(integer, integer)'),
           ('pg_catalog.pg_try_advisory_lock_shared(bigint)'), ('pg_catalog.pg_try_advisory_lock_shared(integer, integer)'),
           ('pg_catalog.pg_notify(text, text)'), ('pg_catalog.pg_cancel_backend(integer)'),
           ('pg_catalog.pg_terminate_backend(integer, bigint)'), ('pg_catalog.pg_stat_get_activity(integer)')
),
-- What a tenant role holds beyond its own schema. The ACLs hold a million
-- entries at 10,000 tenants, nearly all a tenant role's grant in its own
-- schema: they are compared by oid first (00033), and only what is left is
-- named. Naming every entry before the comparison, and sorting them all
-- to join the roles, was a fifth of the lints.
tenant_grants AS MATERIALIZED (
    SELECT o.object_type, o.nsp, o.rel, o.col, o.privilege, t.rolname, t.schema
    FROM (SELECT 'schema' AS object_type, n.oid AS nsp, 0::oid AS rel, NULL::name AS col, a.grantee, a.privilege_type AS privilege
          FROM pg_catalog.pg_namespace n, aclexplode(n.nspacl) a
          UNION ALL
          SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'S' THEN 'sequence' ELSE 'table' END, c.relnamespace, c.oid, NULL, a.grantee, a.privilege_type
          FROM pg_catalog.pg_class c, aclexplode(c.relacl) a
          UNION ALL
          -- column grants (the members' roles read their tables by column)
          SELECT 'table', c.relnamespace, c.oid, at.attname, a.grantee, a.privilege_type
          FROM pg_catalog.pg_attribute at JOIN pg_catalog.pg_class c ON c.oid = at.attrelid, aclexplode(at.attacl) a
          WHERE at.attacl IS NOT NULL
          UNION ALL
          SELECT 'database', NULL, 0, NULL, a.grantee, a.privilege_type
          FROM pg_catalog.pg_database d, aclexplode(d.datacl) a WHERE d.datname = current_database()) o
    JOIN tenant_roles t ON t.oid = o.grantee
    WHERE o.nsp IS DISTINCT FROM t.nspoid
       OR (o.object_type = 'schema' AND o.privilege <> 'USAGE')
       OR (o.object_type <> 'schema' AND o.privilege <> 'SELECT')
),
tenant_reach AS (
    SELECT g.object_type, g.rolname, g.schema,
           CASE WHEN g.col IS NULL THEN g.privilege ELSE format('%s (%I)', g.privilege, g.col) END AS privilege,
           CASE g.object_type WHEN 'schema' THEN quote_ident(n.nspname) WHEN 'database' THEN quote_ident(current_database())
                ELSE format('%I.%I', n.nspname, c.relname) END AS object
    FROM tenant_grants g
    LEFT JOIN pg_catalog.pg_namespace n ON n.oid = g.nsp
    LEFT JOIN pg_catalog.pg_class c ON c.oid = g.rel
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


    -- End-user (claim) policies (00014): each is a restrictive rule on top
    -- of tenant_isolation, on a column of its table.
    UNION ALL
    SELECT 'claim_policy_column_missing', 'ERROR', 'table', p.qname,
           format('claim policy %I (%s) compares the end user''s claim with no column of the table (%s): the column it was written for does not exist, so the rule does not depend on the row and admits every row or none',
                  p.polname, p.cmd, concat_ws(' / ', 'USING ' || p.qual, 'WITH CHECK ' || p.wcheck)),
           format('DROP POLICY %I ON %s; (and recreate it on an existing column: POST /v1/tables/{id}/policies)', p.polname, p.qname)
    FROM pols p
    WHERE p.is_claim AND cardinality(p.cols) = 0
    UNION ALL
    SELECT 'permissive_policy_not_tenant_isolation', 'ERROR', 'table', p.qname,
           format('policy %I (%s) is PERMISSIVE but is not tenant_isolation: permissive policies are ORed, so a further rule meant to narrow what a row needs widens it instead; it was meant AS RESTRICTIVE',
                  p.polname, p.cmd),
           format('DROP POLICY %I ON %s; CREATE POLICY %1$I ON %2$s AS RESTRICTIVE FOR %s USING (...);', p.polname, p.qname, p.cmd)
    FROM pols p
    WHERE p.polpermissive AND p.polname <> 'tenant_isolation'
    UNION ALL
    SELECT 'end_user_policy_without_tenant_isolation', 'ERROR', 'table', t.qname,
           format('end-user policies %s but no tenant_isolation policy: nothing scopes the rows to a tenant, and restrictive policies alone admit no row (or, if permissive, every tenant''s)',
                  (SELECT string_agg(quote_ident(e.polname), ', ' ORDER BY e.polname) FROM end_user_pols e WHERE e.polrelid = t.oid)),
           format('CREATE POLICY tenant_isolation ON %s USING (%I = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::uuid)) WITH CHECK (same);', t.qname, t.tcol)
    FROM tenant_tables t
    WHERE EXISTS (SELECT FROM end_user_pols e WHERE e.polrelid = t.oid)
      AND NOT EXISTS (SELECT FROM pols p WHERE p.polrelid = t.oid AND p.polname = 'tenant_isolation')

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
    FROM (VALUES ('dbchat_owner'), ('dbchat_app'), ('dbchat_query'), ('dbchat_auditor'), ('dbchat_operator'),
                 ('dbchat_sandbox'), ('dbchat_provisioner')) AS expected (name)
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
    WHERE r.rolname = 'dbchat_app'
       OR (r.rolname ~ '^dbchat_query(_[0-9]+)?$' AND g.rolname !~ '^t_[0-9a-f]{32}(_m)?$')
       OR (r.rolname = 'dbchat_auditor'
           AND (g.rolname LIKE 'dbchat\_%' OR g.rolsuper OR g.rolbypassrls OR g.rolname IN ('pg_read_all_data', 'pg_write_all_data')))
    UNION ALL
    SELECT 'query_role_can_write', 'ERROR', o.object_type, o.object,
           format('the untrusted-SQL role %s may %s', q.rolname, o.what),
           o.remedy
    FROM query_nosuper q
    JOIN LATERAL (
        SELECT r.kind AS object_type, r.qname AS object, 'write to it (INSERT, UPDATE, DELETE or TRUNCATE)' AS what,
               format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM %I;', r.qname, q.rolname) AS remedy
        FROM user_relations r
        WHERE CASE WHEN r.relkind <> 'S'
                   THEN has_table_privilege(q.oid, r.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
                        OR has_any_column_privilege(q.oid, r.oid, 'INSERT, UPDATE') END
        UNION ALL
        SELECT 'sequence', r.qname, 'advance it (USAGE or UPDATE)', format('REVOKE ALL ON SEQUENCE %s FROM %I;', r.qname, q.rolname)
        FROM user_relations r
        WHERE CASE WHEN r.relkind = 'S' THEN has_sequence_privilege(q.oid, r.oid, 'USAGE, UPDATE') END
        UNION ALL
        SELECT 'schema', quote_ident(s.nspname), 'create objects in it', format('REVOKE CREATE ON SCHEMA %I FROM %I;', s.nspname, q.rolname)
        FROM user_schemas s WHERE has_schema_privilege(q.oid, s.oid, 'CREATE')
        UNION ALL
        SELECT 'database', quote_ident(d.datname), 'create schemas or temporary tables in it',
               format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM %I, PUBLIC;', d.datname, q.rolname)
        FROM pg_catalog.pg_database d
        WHERE d.datname = current_database() AND has_database_privilege(q.oid, d.oid, 'CREATE, TEMPORARY')
    ) o ON true
    UNION ALL
    SELECT 'query_role_reads_platform_tables', 'ERROR', r.kind, r.qname,
           format('the untrusted-SQL role %s may read this platform relation; untrusted SQL reads tenant data tables only', q.rolname),
           format('REVOKE ALL ON %s FROM %I;', r.qname, q.rolname)
    FROM query_nosuper q
    JOIN user_relations r ON r.nspname IN ('dbchat', 'dbchat_ops', 'dbchat_migrations', 'audit')
     AND CASE WHEN r.relkind <> 'S' THEN has_any_column_privilege(q.oid, r.oid, 'SELECT') END
    UNION ALL
    SELECT 'query_login_holds_privileges', 'ERROR', 'role', l.rolname,
           format('the query login %s owns or holds privileges on %s object(s) of this database (%s): a query login holds nothing but CONNECT and membership in its tenants'' roles, like dbchat_query',
                  l.rolname, count(*), string_agg(DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid), ', ')),
           format('DROP OWNED BY %I; then run `dbchat migrate` (which grants CONNECT again)', l.rolname)
    FROM query_logins l
    JOIN pg_catalog.pg_shdepend d ON d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.refobjid = l.oid
     AND d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) AND d.deptype IN ('a', 'o')
    GROUP BY l.rolname
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
           'owned by dbchat_operator (BYPASSRLS), which must own only the schema dbchat_ops, dbchat_ops.list_tenants() and dbchat_ops.identity_provider_by_issuer(text): as the owner, this object runs or reads with RLS bypassed',
           format('ALTER %s %s OWNER TO dbchat_owner;', upper(o.object_type), o.object)
    FROM roles r
    JOIN (SELECT c.relowner AS owner, ur.kind AS object_type, ur.qname AS object
          FROM pg_catalog.pg_class c JOIN user_relations ur ON ur.oid = c.oid
          UNION ALL SELECT f.proowner, 'function', f.qname FROM user_functions f
          WHERE f.qname NOT IN ('dbchat_ops.list_tenants()', 'dbchat_ops.identity_provider_by_issuer(p_issuer text)')
          UNION ALL SELECT s.nspowner, 'schema', quote_ident(s.nspname) FROM user_schemas s WHERE s.nspname <> 'dbchat_ops'
          UNION ALL SELECT d.datdba, 'database', quote_ident(d.datname) FROM pg_catalog.pg_database d) o ON o.owner = r.oid
    WHERE r.rolname = 'dbchat_operator'

    -- Untrusted SQL beyond rows: functions, catalogs, tenant roles.
    UNION ALL
    SELECT 'untrusted_sql_dangerous_function', 'ERROR', 'function', d.sig,
           format('%s may execute this function, which runs SQL text, shows other sessions, sleeps, locks, reads files or large objects, changes shared state, or tells the size or existence of objects by name: one tenant''s SQL would reach around another''s rows', u.rolname),
           format('REVOKE EXECUTE ON FUNCTION %s FROM %s; (or run `dbchat migrate`, which grants untrusted SQL the reviewed list only)', d.sig, CASE WHEN u.roid = 0 THEN 'PUBLIC' ELSE quote_ident(u.rolname) END)
    FROM dangerous d
    JOIN fn_exec u ON u.oid = d.oid
    UNION ALL
    SELECT 'untrusted_sql_function_not_reviewed', 'ERROR', 'function', format('%s.%I(%s)', p.pronamespace::regnamespace, p.proname, pg_get_function_identity_arguments(p.oid)),
           format('%s may execute a function outside the reviewed list (dbchat_migrations.sandbox_functions): a PostgreSQL upgrade, an extension update or a manual grant widened what generated SQL can call', u.rolname),
           format('REVOKE EXECUTE ON FUNCTION %s FROM %s; (or run `dbchat migrate`)', p.oid::regprocedure, CASE WHEN u.roid = 0 THEN 'PUBLIC' ELSE quote_ident(u.rolname) END)
    FROM fn_exec u
    JOIN pg_catalog.pg_proc p ON p.oid = u.oid
    WHERE NOT EXISTS (SELECT FROM dbchat_migrations.sandbox_functions s WHERE s.fn = p.oid)
      AND NOT EXISTS (SELECT FROM dangerous d WHERE d.oid = p.oid)
      AND NOT (u.roid = 0 AND p.pronamespace IN (SELECT oid FROM user_schemas WHERE nspname IN ('dbchat', 'dbchat_ops', 'audit') OR nspname LIKE 't\_%'))
    UNION ALL
    SELECT 'untrusted_sql_reads_catalog', 'ERROR', CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END, format('%s.%I', c.relnamespace::regnamespace, c.relname),
           format('%s may read this catalog: it names every tenant''s schema, tables and columns, counts their rows or shows other sessions', u.rolname),
           format('REVOKE SELECT ON %s FROM %s; (or run `dbchat migrate`)', c.oid::regclass, CASE WHEN u.roid = 0 THEN 'PUBLIC' ELSE quote_ident(u.rolname) END)
    FROM catalog_read u
    JOIN pg_catalog.pg_class c ON c.oid = u.oid
    UNION ALL
    SELECT 'tenant_role_reaches_other_schema', 'ERROR', o.object_type, o.object,
           format('the tenant role %s (what its untrusted SQL runs as) holds %s here: it may only use its own schema %s and read its tables', o.rolname, o.privilege, o.schema),
           format('REVOKE %s ON %s %s FROM %I;', o.privilege, upper(o.object_type), o.object, o.rolname)
    FROM tenant_reach o
    UNION ALL
    SELECT 'tenant_role_membership', 'ERROR', 'role', t.rolname,
           format('the tenant role %s %s', t.rolname, m.what),
           m.remedy
    FROM tenant_roles t
    JOIN LATERAL (
        SELECT format('is a member of %s: it may only inherit dbchat_sandbox', g.rolname) AS what, format('REVOKE %I FROM %I;', g.rolname, t.rolname) AS remedy
        FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
        WHERE am.member = t.oid AND g.rolname <> 'dbchat_sandbox'
        UNION ALL
        SELECT format('has the member %s: only its query login %s may become it', u.rolname, l.login), format('REVOKE %I FROM %I;', t.rolname, u.rolname)
        FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles u ON u.oid = am.member
        CROSS JOIN (SELECT dbchat.query_login(substr(t.rolname, 3, 32)::uuid) AS login) l
        WHERE am.roleid = t.oid AND u.rolname <> l.login
        UNION ALL
        SELECT 'can log in, is a superuser, bypasses RLS or creates roles or databases', format('ALTER ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;', t.rolname)
        WHERE t.rolcanlogin OR t.rolsuper OR t.rolbypassrls OR t.rolcreaterole OR t.rolcreatedb
    ) m ON true
    UNION ALL
    SELECT 'extension_in_public', 'WARN', 'extension', e.extname::text,
           'extension installed in the public schema, which every role can use: its functions and types belong in a schema only the platform roles use (splinter 0014)',
           format('CREATE SCHEMA IF NOT EXISTS extensions; ALTER EXTENSION %I SET SCHEMA extensions; (or run `dbchat migrate`, which does this for vector)', e.extname)
    FROM pg_catalog.pg_extension e
    WHERE e.extnamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'unindexed_foreign_key', 'WARN', 'table', format('%I.%I', n.nspname, c.relname),
           format('foreign key %I (%s) has no index that starts with its columns: deleting or updating a referenced row scans this table', con.conname, pg_get_constraintdef(con.oid)),
           format('CREATE INDEX ON %I.%I (%s);', n.nspname, c.relname,
                  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.i) FROM unnest(con.conkey) WITH ORDINALITY k (attnum, i)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum))
    FROM pg_catalog.pg_constraint con
    JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE con.contype = 'f' AND (n.nspname IN ('dbchat', 'dbchat_ops') OR n.nspname LIKE 't\_%')
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i
                      WHERE i.indrelid = con.conrelid
                        AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] @> con.conkey
                        AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] <@ con.conkey)

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
      -- and an issuer belongs to one tenant only (00011).
      AND NOT (t.nspname = 'dbchat' AND t.relname = 'identity_providers' AND ic.relname = 'identity_providers_issuer_key')
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
$body$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION audit.rls_coverage_rows(findings jsonb)
    RETURNS TABLE (schema text, table_name text, kind text, rls_enabled boolean, rls_forced boolean, policies text[],
                   tenant_column text, has_tenant_id boolean, keys_include_tenant_id boolean,
                   foreign_keys_include_tenant_id boolean, verdict text, reason text)
    LANGUAGE sql STABLE
    SET jit = off
    SET search_path = "$user", public, extensions
AS $body$
WITH tenant_tables AS (
    SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
           format('%I.%I', n.nspname, c.relname) AS qname,
           CASE WHEN n.nspname = 'dbchat' AND c.relname = 'tenants' THEN 'id' ELSE 'tenant_id' END AS tcol
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND (n.nspname = 'dbchat' OR n.nspname LIKE 't\_%')
),
-- Each table's findings, once.
problems AS (
    SELECT f.object,
           bool_or(f.lint = 'tenant_table_without_tenant_id') AS no_tenant_id,
           bool_or(f.lint IN ('unique_key_without_tenant_id', 'tenant_table_without_tenant_id')) AS key_problem,
           bool_or(f.lint IN ('foreign_key_without_tenant_id', 'tenant_table_without_tenant_id')) AS fk_problem,
           bool_or(f.level = 'ERROR') AS has_error,
           string_agg(f.lint || ': ' || f.detail, '; ' ORDER BY f.level, f.lint, f.detail) AS reasons
    FROM jsonb_to_recordset(findings) AS f(lint text, level text, object_type text, object text, detail text)
    WHERE f.object_type = 'table'
    GROUP BY f.object
),
table_policies AS (
    SELECT p.polrelid,
           array_agg(p.polname::text ORDER BY p.polname::text) AS names,
           string_agg(quote_ident(p.polname), ', ' ORDER BY p.polname) AS list
    FROM pg_catalog.pg_policy p GROUP BY p.polrelid
)
SELECT t.nspname::text AS schema,
       t.relname::text AS table_name,
       CASE WHEN t.nspname = 'dbchat' THEN 'platform' ELSE 'tenant data' END AS kind,
       t.relrowsecurity AS rls_enabled,
       t.relforcerowsecurity AS rls_forced,
       coalesce(tp.names, '{}') AS policies,
       CASE WHEN coalesce(pr.no_tenant_id, false) THEN NULL ELSE t.tcol END AS tenant_column,
       NOT coalesce(pr.no_tenant_id, false) AS has_tenant_id,
       NOT coalesce(pr.key_problem, false) AS keys_include_tenant_id,
       NOT coalesce(pr.fk_problem, false) AS foreign_keys_include_tenant_id,
       CASE WHEN coalesce(pr.has_error, false) THEN 'fail'
            WHEN pr.object IS NOT NULL THEN 'warn'
            ELSE 'ok' END AS verdict,
       coalesce(pr.reasons,
                'RLS enabled and forced; policy ' || tp.list
                || ' compares ' || t.tcol || ' with app.tenant_id once per statement; '
                || CASE WHEN t.nspname = 'dbchat' AND t.relname = 'tenants'
                        THEN 'keyed by id; the global slug key (tenants_slug_key) is the documented exception'
                        ELSE 'keys and foreign keys include tenant_id' END) AS reason
FROM tenant_tables t
LEFT JOIN problems pr ON pr.object = t.qname
LEFT JOIN table_policies tp ON tp.polrelid = t.oid
$body$;
-- +goose StatementEnd
COMMENT ON FUNCTION audit.rls_coverage_rows(jsonb) IS
    'The rows of audit.rls_coverage (unordered) for the given findings: a JSON array of audit.findings rows (lint, level, object_type, object, detail; others ignored). dbchat audit passes the findings it has read, so the lints run once.';

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit.rls_coverage_rows()
    RETURNS TABLE (schema text, table_name text, kind text, rls_enabled boolean, rls_forced boolean, policies text[],
                   tenant_column text, has_tenant_id boolean, keys_include_tenant_id boolean,
                   foreign_keys_include_tenant_id boolean, verdict text, reason text)
    LANGUAGE sql STABLE
    SET jit = off
    SET search_path = "$user", public, extensions
AS $body$
SELECT * FROM audit.rls_coverage_rows((SELECT coalesce(jsonb_agg(to_jsonb(f)), '[]') FROM audit.findings_rows() f WHERE f.object_type = 'table'))
$body$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION audit.rls_coverage_rows(jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.rls_coverage_rows(jsonb) TO dbchat_auditor, dbchat_app;

-- +goose Down
-- 00032's lints and 00022's coverage query.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit.findings_rows()
    RETURNS TABLE (lint text, level text, object_type text, object text, detail text, remedy text)
    LANGUAGE sql STABLE
    SET jit = off
    SET search_path = "$user", public, extensions
AS $body$
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
                         WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS cmd,
           -- A claim policy calls dbchat.claim or dbchat.claim_array (pg_depend).
           EXISTS (SELECT FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_proc f ON f.oid = d.refobjid
                   WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = p.oid
                     AND d.refclassid = 'pg_catalog.pg_proc'::regclass
                     AND f.pronamespace = 'dbchat'::regnamespace AND f.proname IN ('claim', 'claim_array')) AS is_claim,
           -- The columns of its table the policy reads (pg_depend), tenant_id aside.
           ARRAY(SELECT a.attname::text FROM pg_catalog.pg_depend d
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                 WHERE d.classid = 'pg_catalog.pg_policy'::regclass AND d.objid = p.oid
                   AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = p.polrelid
                   AND d.refobjsubid > 0 AND NOT a.attisdropped AND a.attnum <> coalesce(t.tattnum, 0)
                 ORDER BY 1) AS cols
    FROM pg_catalog.pg_policy p JOIN tenant_tables t ON t.oid = p.polrelid
),
-- End-user policies: claim policies, and any other policy that reads the
-- end user's settings (app.user_id, app.role, app.claims).
end_user_pols AS (
    SELECT * FROM pols
    WHERE is_claim OR concat_ws(' ', qual, wcheck) ~ 'current_setting\(''app\.(user_id|role|claims)'''
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
-- The views and materialized views among them, apart (00022): over_tenant
-- joined every rewrite rule with all relations, which grew with the tables.
user_views AS MATERIALIZED (
    SELECT * FROM user_relations WHERE relkind IN ('v', 'm')
),
-- Views and materialized views that read a tenant table directly.
over_tenant AS (
    SELECT DISTINCT v.oid, v.qname, v.kind, v.relkind, t.qname AS tname
    FROM user_views v
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
query AS (SELECT * FROM roles WHERE rolname IN ('dbchat_query', 'dbchat_sandbox')),
-- The other query logins of this database (00031): dbchat_query_<k> that
-- may connect here (roles are cluster-wide; another database's logins run
-- nothing here). They are dbchat_query's twins and hold nothing of their
-- own, which pg_shdepend shows without a privilege check per relation.
query_logins AS (
    SELECT r.oid, r.rolname FROM roles r
    WHERE r.rolname ~ '^dbchat_query_[0-9]+$' AND has_database_privilege(r.oid, current_database(), 'CONNECT')
),
-- The tenant roles of this database (named like their schema): what
-- untrusted SQL runs as. They are linted by their grants, which are per
-- database, and their memberships.
tenant_roles AS (
    SELECT r.oid, r.rolname::text AS rolname, n.nspname::text AS schema, r.rolsuper, r.rolbypassrls, r.rolcanlogin, r.rolcreaterole, r.rolcreatedb
    FROM pg_catalog.pg_roles r JOIN pg_catalog.pg_namespace n ON n.nspname = left(r.rolname, 34)
    WHERE r.rolname ~ '^t_[0-9a-f]{32}(_m)?$'
),
-- Who runs untrusted SQL: PUBLIC (0), dbchat_query, dbchat_sandbox, and the
-- tenant roles (their direct grants; the rest they inherit from dbchat_sandbox).
untrusted (oid, rolname) AS (
    SELECT 0::oid, 'PUBLIC' UNION ALL SELECT oid, rolname FROM query UNION ALL SELECT oid, rolname FROM tenant_roles
),
-- Functions that run SQL text, show other sessions, sleep, lock, touch
-- large objects or files, change shared state, or tell the size or
-- existence of objects by name: never for untrusted SQL.
dangerous AS (
    SELECT p.oid, p.proacl, p.proowner, 'pg_catalog.' || p.oid::regprocedure::text AS sig
    FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace
      AND p.proname ~ '^(ts_stat|ts_rewrite|query_to_xml.*|query_to_xmlschema|table_to_xml.*|schema_to_xml.*|database_to_xml.*|cursor_to_xml.*|pg_stat_get_.*|pg_stat_.*|pg_sleep.*|setseed|pg_advisory_.*|pg_try_advisory_.*|lo_.*|loread|lowrite|pg_.*_size|to_reg.*|pg_get_.*def|pg_get_.*|pg_read_.*|pg_ls_.*|pg_stat_file|set_config|current_setting|pg_notify|pg_cancel_backend|pg_terminate_backend|pg_backend_pid|pg_blocking_pids|pg_listening_channels|txid_.*|pg_current_xact_id.*|pg_snapshot_.*|pg_xact_.*|pg_relation_filenode|pg_relation_filepath|has_.*_privilege|pg_has_role|pg_table_is_visible|pg_.*_is_visible|pg_describe_object|pg_identify_object.*|pg_catalog.*|obj_description|col_description|shobj_description|pg_backup_.*|pg_switch_wal|pg_reload_conf|pg_rotate_logfile|pg_log_backend_memory_contexts|dblink.*)$'
      -- the tenant_isolation policy reads app.tenant_id with it, as the caller
      AND p.oid <> 'pg_catalog.current_setting(text, boolean)'::regprocedure
),
-- Which untrusted principal may execute which function: PUBLIC's and the
-- tenant roles' grants from the ACLs (one pass), dbchat_query's and
-- dbchat_sandbox's with what they inherit, beyond PUBLIC.
fn_exec AS (
    SELECT p.oid, u.oid AS roid, u.rolname
    FROM pg_catalog.pg_proc p
    CROSS JOIN LATERAL aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    JOIN untrusted u ON u.oid = a.grantee AND (u.oid = 0 OR u.rolname ~ '^t_')
    WHERE a.privilege_type = 'EXECUTE'
    UNION
    SELECT p.oid, q.oid, q.rolname
    FROM pg_catalog.pg_proc p CROSS JOIN query_nosuper q
    WHERE has_function_privilege(q.oid, p.oid, 'EXECUTE')
      AND NOT EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                      WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
),
-- Likewise SELECT on catalogs and information_schema views.
catalog_read AS (
    SELECT c.oid, c.relkind, u.oid AS roid, u.rolname
    FROM pg_catalog.pg_class c
    CROSS JOIN LATERAL aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
    JOIN untrusted u ON u.oid = a.grantee AND (u.oid = 0 OR u.rolname ~ '^t_')
    WHERE a.privilege_type = 'SELECT'
      AND c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
    UNION
    SELECT c.oid, c.relkind, q.oid, q.rolname
    FROM pg_catalog.pg_class c CROSS JOIN query_nosuper q
    WHERE c.relnamespace IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace) AND c.relkind IN ('r', 'v', 'm', 'p', 'f')
      AND has_table_privilege(q.oid, c.oid, 'SELECT')
      AND NOT EXISTS (SELECT FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
                      WHERE a.grantee = 0 AND a.privilege_type = 'SELECT')
),
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
-- Each distinct expression is stripped once: every tenant's tables share a
-- handful, and stripping each policy's copy was a third of the query.
stripped (expr, s, depth) AS (
    SELECT DISTINCT expr, expr, 0 FROM exprs
    UNION ALL
    SELECT expr,
           regexp_replace(regexp_replace(s, '\(\s*SELECT\s[^()]*\)', ' <subquery> ', 'gi'), '\(([^()]*)\)', '[\1]', 'g'),
           depth + 1
    FROM stripped WHERE s ~ '[()]' AND depth < 64
),
per_row AS (
    SELECT e.oid, e.qname, e.polname, e.clause, e.expr, f.s
    FROM exprs e
    JOIN (SELECT DISTINCT ON (expr) expr, s FROM stripped ORDER BY expr, depth DESC) f ON f.expr = e.expr
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


    -- End-user (claim) policies (00014): each is a restrictive rule on top
    -- of tenant_isolation, on a column of its table.
    UNION ALL
    SELECT 'claim_policy_column_missing', 'ERROR', 'table', p.qname,
           format('claim policy %I (%s) compares the end user''s claim with no column of the table (%s): the column it was written for does not exist, so the rule does not depend on the row and admits every row or none',
                  p.polname, p.cmd, concat_ws(' / ', 'USING ' || p.qual, 'WITH CHECK ' || p.wcheck)),
           format('DROP POLICY %I ON %s; (and recreate it on an existing column: POST /v1/tables/{id}/policies)', p.polname, p.qname)
    FROM pols p
    WHERE p.is_claim AND cardinality(p.cols) = 0
    UNION ALL
    SELECT 'permissive_policy_not_tenant_isolation', 'ERROR', 'table', p.qname,
           format('policy %I (%s) is PERMISSIVE but is not tenant_isolation: permissive policies are ORed, so a further rule meant to narrow what a row needs widens it instead; it was meant AS RESTRICTIVE',
                  p.polname, p.cmd),
           format('DROP POLICY %I ON %s; CREATE POLICY %1$I ON %2$s AS RESTRICTIVE FOR %s USING (...);', p.polname, p.qname, p.cmd)
    FROM pols p
    WHERE p.polpermissive AND p.polname <> 'tenant_isolation'
    UNION ALL
    SELECT 'end_user_policy_without_tenant_isolation', 'ERROR', 'table', t.qname,
           format('end-user policies %s but no tenant_isolation policy: nothing scopes the rows to a tenant, and restrictive policies alone admit no row (or, if permissive, every tenant''s)',
                  (SELECT string_agg(quote_ident(e.polname), ', ' ORDER BY e.polname) FROM end_user_pols e WHERE e.polrelid = t.oid)),
           format('CREATE POLICY tenant_isolation ON %s USING (%I = (SELECT nullif(current_setting(''app.tenant_id'', true), '''')::uuid)) WITH CHECK (same);', t.qname, t.tcol)
    FROM tenant_tables t
    WHERE EXISTS (SELECT FROM end_user_pols e WHERE e.polrelid = t.oid)
      AND NOT EXISTS (SELECT FROM pols p WHERE p.polrelid = t.oid AND p.polname = 'tenant_isolation')

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
    FROM (VALUES ('dbchat_owner'), ('dbchat_app'), ('dbchat_query'), ('dbchat_auditor'), ('dbchat_operator'),
                 ('dbchat_sandbox'), ('dbchat_provisioner')) AS expected (name)
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
    WHERE r.rolname = 'dbchat_app'
       OR (r.rolname ~ '^dbchat_query(_[0-9]+)?$' AND g.rolname !~ '^t_[0-9a-f]{32}(_m)?$')
       OR (r.rolname = 'dbchat_auditor'
           AND (g.rolname LIKE 'dbchat\_%' OR g.rolsuper OR g.rolbypassrls OR g.rolname IN ('pg_read_all_data', 'pg_write_all_data')))
    UNION ALL
    SELECT 'query_role_can_write', 'ERROR', o.object_type, o.object,
           format('the untrusted-SQL role %s may %s', q.rolname, o.what),
           o.remedy
    FROM query_nosuper q
    JOIN LATERAL (
        SELECT r.kind AS object_type, r.qname AS object, 'write to it (INSERT, UPDATE, DELETE or TRUNCATE)' AS what,
               format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON %s FROM %I;', r.qname, q.rolname) AS remedy
        FROM user_relations r
        WHERE CASE WHEN r.relkind <> 'S'
                   THEN has_table_privilege(q.oid, r.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')
                        OR has_any_column_privilege(q.oid, r.oid, 'INSERT, UPDATE') END
        UNION ALL
        SELECT 'sequence', r.qname, 'advance it (USAGE or UPDATE)', format('REVOKE ALL ON SEQUENCE %s FROM %I;', r.qname, q.rolname)
        FROM user_relations r
        WHERE CASE WHEN r.relkind = 'S' THEN has_sequence_privilege(q.oid, r.oid, 'USAGE, UPDATE') END
        UNION ALL
        SELECT 'schema', quote_ident(s.nspname), 'create objects in it', format('REVOKE CREATE ON SCHEMA %I FROM %I;', s.nspname, q.rolname)
        FROM user_schemas s WHERE has_schema_privilege(q.oid, s.oid, 'CREATE')
        UNION ALL
        SELECT 'database', quote_ident(d.datname), 'create schemas or temporary tables in it',
               format('REVOKE CREATE, TEMPORARY ON DATABASE %I FROM %I, PUBLIC;', d.datname, q.rolname)
        FROM pg_catalog.pg_database d
        WHERE d.datname = current_database() AND has_database_privilege(q.oid, d.oid, 'CREATE, TEMPORARY')
    ) o ON true
    UNION ALL
    SELECT 'query_role_reads_platform_tables', 'ERROR', r.kind, r.qname,
           format('the untrusted-SQL role %s may read this platform relation; untrusted SQL reads tenant data tables only', q.rolname),
           format('REVOKE ALL ON %s FROM %I;', r.qname, q.rolname)
    FROM query_nosuper q
    JOIN user_relations r ON r.nspname IN ('dbchat', 'dbchat_ops', 'dbchat_migrations', 'audit')
     AND CASE WHEN r.relkind <> 'S' THEN has_any_column_privilege(q.oid, r.oid, 'SELECT') END
    UNION ALL
    SELECT 'query_login_holds_privileges', 'ERROR', 'role', l.rolname,
           format('the query login %s owns or holds privileges on %s object(s) of this database (%s): a query login holds nothing but CONNECT and membership in its tenants'' roles, like dbchat_query',
                  l.rolname, count(*), string_agg(DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid), ', ')),
           format('DROP OWNED BY %I; then run `dbchat migrate` (which grants CONNECT again)', l.rolname)
    FROM query_logins l
    JOIN pg_catalog.pg_shdepend d ON d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.refobjid = l.oid
     AND d.dbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) AND d.deptype IN ('a', 'o')
    GROUP BY l.rolname
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
           'owned by dbchat_operator (BYPASSRLS), which must own only the schema dbchat_ops, dbchat_ops.list_tenants() and dbchat_ops.identity_provider_by_issuer(text): as the owner, this object runs or reads with RLS bypassed',
           format('ALTER %s %s OWNER TO dbchat_owner;', upper(o.object_type), o.object)
    FROM roles r
    JOIN (SELECT c.relowner AS owner, ur.kind AS object_type, ur.qname AS object
          FROM pg_catalog.pg_class c JOIN user_relations ur ON ur.oid = c.oid
          UNION ALL SELECT f.proowner, 'function', f.qname FROM user_functions f
          WHERE f.qname NOT IN ('dbchat_ops.list_tenants()', 'dbchat_ops.identity_provider_by_issuer(p_issuer text)')
          UNION ALL SELECT s.nspowner, 'schema', quote_ident(s.nspname) FROM user_schemas s WHERE s.nspname <> 'dbchat_ops'
          UNION ALL SELECT d.datdba, 'database', quote_ident(d.datname) FROM pg_catalog.pg_database d) o ON o.owner = r.oid
    WHERE r.rolname = 'dbchat_operator'

    -- Untrusted SQL beyond rows: functions, catalogs, tenant roles.
    UNION ALL
    SELECT 'untrusted_sql_dangerous_function', 'ERROR', 'function', d.sig,
           format('%s may execute this function, which runs SQL text, shows other sessions, sleeps, locks, reads files or large objects, changes shared state, or tells the size or existence of objects by name: one tenant''s SQL would reach around another''s rows', u.rolname),
           format('REVOKE EXECUTE ON FUNCTION %s FROM %s; (or run `dbchat migrate`, which grants untrusted SQL the reviewed list only)', d.sig, CASE WHEN u.roid = 0 THEN 'PUBLIC' ELSE quote_ident(u.rolname) END)
    FROM dangerous d
    JOIN fn_exec u ON u.oid = d.oid
    UNION ALL
    SELECT 'untrusted_sql_function_not_reviewed', 'ERROR', 'function', format('%s.%I(%s)', p.pronamespace::regnamespace, p.proname, pg_get_function_identity_arguments(p.oid)),
           format('%s may execute a function outside the reviewed list (dbchat_migrations.sandbox_functions): a PostgreSQL upgrade, an extension update or a manual grant widened what generated SQL can call', u.rolname),
           format('REVOKE EXECUTE ON FUNCTION %s FROM %s; (or run `dbchat migrate`)', p.oid::regprocedure, CASE WHEN u.roid = 0 THEN 'PUBLIC' ELSE quote_ident(u.rolname) END)
    FROM fn_exec u
    JOIN pg_catalog.pg_proc p ON p.oid = u.oid
    WHERE NOT EXISTS (SELECT FROM dbchat_migrations.sandbox_functions s WHERE s.fn = p.oid)
      AND NOT EXISTS (SELECT FROM dangerous d WHERE d.oid = p.oid)
      AND NOT (u.roid = 0 AND p.pronamespace IN (SELECT oid FROM user_schemas WHERE nspname IN ('dbchat', 'dbchat_ops', 'audit') OR nspname LIKE 't\_%'))
    UNION ALL
    SELECT 'untrusted_sql_reads_catalog', 'ERROR', CASE c.relkind WHEN 'v' THEN 'view' ELSE 'table' END, format('%s.%I', c.relnamespace::regnamespace, c.relname),
           format('%s may read this catalog: it names every tenant''s schema, tables and columns, counts their rows or shows other sessions', u.rolname),
           format('REVOKE SELECT ON %s FROM %s; (or run `dbchat migrate`)', c.oid::regclass, CASE WHEN u.roid = 0 THEN 'PUBLIC' ELSE quote_ident(u.rolname) END)
    FROM catalog_read u
    JOIN pg_catalog.pg_class c ON c.oid = u.oid
    UNION ALL
    SELECT 'tenant_role_reaches_other_schema', 'ERROR', o.object_type, o.object,
           format('the tenant role %s (what its untrusted SQL runs as) holds %s here: it may only use its own schema %s and read its tables', t.rolname, o.privilege, t.schema),
           format('REVOKE %s ON %s %s FROM %I;', o.privilege, upper(o.object_type), o.object, t.rolname)
    FROM tenant_roles t
    JOIN (SELECT 'schema' AS object_type, quote_ident(n.nspname) AS object, n.nspname::text AS schema, a.grantee, a.privilege_type AS privilege
          FROM pg_catalog.pg_namespace n, aclexplode(n.nspacl) a
          UNION ALL
          SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'S' THEN 'sequence' ELSE 'table' END, format('%I.%I', n.nspname, c.relname), n.nspname::text, a.grantee, a.privilege_type
          FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, aclexplode(c.relacl) a
          UNION ALL
          -- column grants (the members' roles read their tables by column)
          SELECT 'table', format('%I.%I', n.nspname, c.relname), n.nspname::text, a.grantee, format('%s (%I)', a.privilege_type, at.attname)
          FROM pg_catalog.pg_attribute at JOIN pg_catalog.pg_class c ON c.oid = at.attrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace, aclexplode(at.attacl) a
          WHERE at.attacl IS NOT NULL
          UNION ALL
          SELECT 'database', quote_ident(d.datname), NULL, a.grantee, a.privilege_type
          FROM pg_catalog.pg_database d, aclexplode(d.datacl) a WHERE d.datname = current_database()) o
      ON o.grantee = t.oid
    WHERE o.schema IS DISTINCT FROM t.schema
       OR (o.object_type = 'schema' AND o.privilege <> 'USAGE')
       OR (o.object_type <> 'schema' AND o.privilege <> 'SELECT' AND o.privilege NOT LIKE 'SELECT (%')
    UNION ALL
    SELECT 'tenant_role_membership', 'ERROR', 'role', t.rolname,
           format('the tenant role %s %s', t.rolname, m.what),
           m.remedy
    FROM tenant_roles t
    JOIN LATERAL (
        SELECT format('is a member of %s: it may only inherit dbchat_sandbox', g.rolname) AS what, format('REVOKE %I FROM %I;', g.rolname, t.rolname) AS remedy
        FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles g ON g.oid = am.roleid
        WHERE am.member = t.oid AND g.rolname <> 'dbchat_sandbox'
        UNION ALL
        SELECT format('has the member %s: only its query login %s may become it', u.rolname, l.login), format('REVOKE %I FROM %I;', t.rolname, u.rolname)
        FROM pg_catalog.pg_auth_members am JOIN pg_catalog.pg_roles u ON u.oid = am.member
        CROSS JOIN (SELECT dbchat.query_login(substr(t.rolname, 3, 32)::uuid) AS login) l
        WHERE am.roleid = t.oid AND u.rolname <> l.login
        UNION ALL
        SELECT 'can log in, is a superuser, bypasses RLS or creates roles or databases', format('ALTER ROLE %I NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB;', t.rolname)
        WHERE t.rolcanlogin OR t.rolsuper OR t.rolbypassrls OR t.rolcreaterole OR t.rolcreatedb
    ) m ON true
    UNION ALL
    SELECT 'extension_in_public', 'WARN', 'extension', e.extname::text,
           'extension installed in the public schema, which every role can use: its functions and types belong in a schema only the platform roles use (splinter 0014)',
           format('CREATE SCHEMA IF NOT EXISTS extensions; ALTER EXTENSION %I SET SCHEMA extensions; (or run `dbchat migrate`, which does this for vector)', e.extname)
    FROM pg_catalog.pg_extension e
    WHERE e.extnamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'unindexed_foreign_key', 'WARN', 'table', format('%I.%I', n.nspname, c.relname),
           format('foreign key %I (%s) has no index that starts with its columns: deleting or updating a referenced row scans this table', con.conname, pg_get_constraintdef(con.oid)),
           format('CREATE INDEX ON %I.%I (%s);', n.nspname, c.relname,
                  (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY k.i) FROM unnest(con.conkey) WITH ORDINALITY k (attnum, i)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum))
    FROM pg_catalog.pg_constraint con
    JOIN pg_catalog.pg_class c ON c.oid = con.conrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE con.contype = 'f' AND (n.nspname IN ('dbchat', 'dbchat_ops') OR n.nspname LIKE 't\_%')
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_index i
                      WHERE i.indrelid = con.conrelid
                        AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] @> con.conkey
                        AND (i.indkey::int2[])[0:cardinality(con.conkey) - 1] <@ con.conkey)

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
      -- and an issuer belongs to one tenant only (00011).
      AND NOT (t.nspname = 'dbchat' AND t.relname = 'identity_providers' AND ic.relname = 'identity_providers_issuer_key')
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
$body$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit.rls_coverage_rows()
    RETURNS TABLE (schema text, table_name text, kind text, rls_enabled boolean, rls_forced boolean, policies text[],
                   tenant_column text, has_tenant_id boolean, keys_include_tenant_id boolean,
                   foreign_keys_include_tenant_id boolean, verdict text, reason text)
    LANGUAGE sql STABLE
    SET jit = off
    SET search_path = "$user", public, extensions
AS $body$
WITH tenant_tables AS (
    SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
           format('%I.%I', n.nspname, c.relname) AS qname,
           CASE WHEN n.nspname = 'dbchat' AND c.relname = 'tenants' THEN 'id' ELSE 'tenant_id' END AS tcol
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND (n.nspname = 'dbchat' OR n.nspname LIKE 't\_%')
),
-- Each table's findings, once: what the view asked per row before.
problems AS (
    SELECT f.object,
           bool_or(f.lint = 'tenant_table_without_tenant_id') AS no_tenant_id,
           bool_or(f.lint IN ('unique_key_without_tenant_id', 'tenant_table_without_tenant_id')) AS key_problem,
           bool_or(f.lint IN ('foreign_key_without_tenant_id', 'tenant_table_without_tenant_id')) AS fk_problem,
           bool_or(f.level = 'ERROR') AS has_error,
           string_agg(f.lint || ': ' || f.detail, '; ' ORDER BY f.level, f.lint, f.detail) AS reasons
    FROM audit.findings_rows() f WHERE f.object_type = 'table'
    GROUP BY f.object
),
table_policies AS (
    SELECT p.polrelid,
           array_agg(p.polname::text ORDER BY p.polname::text) AS names,
           string_agg(quote_ident(p.polname), ', ' ORDER BY p.polname) AS list
    FROM pg_catalog.pg_policy p GROUP BY p.polrelid
)
SELECT t.nspname::text AS schema,
       t.relname::text AS table_name,
       CASE WHEN t.nspname = 'dbchat' THEN 'platform' ELSE 'tenant data' END AS kind,
       t.relrowsecurity AS rls_enabled,
       t.relforcerowsecurity AS rls_forced,
       coalesce(tp.names, '{}') AS policies,
       CASE WHEN coalesce(pr.no_tenant_id, false) THEN NULL ELSE t.tcol END AS tenant_column,
       NOT coalesce(pr.no_tenant_id, false) AS has_tenant_id,
       NOT coalesce(pr.key_problem, false) AS keys_include_tenant_id,
       NOT coalesce(pr.fk_problem, false) AS foreign_keys_include_tenant_id,
       CASE WHEN coalesce(pr.has_error, false) THEN 'fail'
            WHEN pr.object IS NOT NULL THEN 'warn'
            ELSE 'ok' END AS verdict,
       coalesce(pr.reasons,
                'RLS enabled and forced; policy ' || tp.list
                || ' compares ' || t.tcol || ' with app.tenant_id once per statement; '
                || CASE WHEN t.nspname = 'dbchat' AND t.relname = 'tenants'
                        THEN 'keyed by id; the global slug key (tenants_slug_key) is the documented exception'
                        ELSE 'keys and foreign keys include tenant_id' END) AS reason
FROM tenant_tables t
LEFT JOIN problems pr ON pr.object = t.qname
LEFT JOIN table_policies tp ON tp.polrelid = t.oid
$body$;
-- +goose StatementEnd
DROP FUNCTION audit.rls_coverage_rows(jsonb);
