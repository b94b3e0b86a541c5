-- Query logins (issue 18, "Data tables at scale"). The sandbox logs in as
-- dbchat_query and becomes the statement's tenant role with SET LOCAL ROLE,
-- so dbchat_query was a member of every tenant's two roles. PostgreSQL 15
-- checks SET ROLE against the list of every role the login is a member of,
-- built per backend with a quadratic list (roles_is_member_of, acl.c) and
-- rebuilt whenever any role or membership of the cluster changes: at
-- 10,000 tenants (20,000 roles) a new sandbox connection spent 1.4 s on its
-- first statement, and so did every warm one after a tenant was created
-- (docs/BENCHMARKS.md part 9).
--
-- A database may now split its tenants across several query logins:
-- dbchat_query (shard 0) and dbchat_query_1 … dbchat_query_<n-1>, each a
-- member of its own tenants' roles only. The tenant's shard is the last
-- byte of its id modulo n (dbchat.query_login; internal/tenant.QueryLogin
-- is the same rule in Go). n is per database, the body of
-- dbchat.query_shards(), which `dbchat migrate` rewrites from
-- DBCHAT_QUERY_SHARDS (default 1: every tenant on dbchat_query, as before)
-- and then grants each tenant's roles to its login and revokes them from
-- the others. A login can become only its own tenants' roles, so a leaked
-- query password reaches one shard's tenants.

-- +goose Up
CREATE FUNCTION dbchat.query_shards() RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS 'SELECT 1';
COMMENT ON FUNCTION dbchat.query_shards() IS
    'How many query logins this database''s tenants are split across (dbchat_query, dbchat_query_1, …). Rewritten by `dbchat migrate` from DBCHAT_QUERY_SHARDS.';

CREATE FUNCTION dbchat.query_login(p_tenant uuid) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE k WHEN 0 THEN 'dbchat_query' ELSE 'dbchat_query_' || k END
    FROM (SELECT get_byte(uuid_send(p_tenant), 15) % dbchat.query_shards() AS k) s
$$;
COMMENT ON FUNCTION dbchat.query_login(uuid) IS
    'The query login whose sandbox statements may become this tenant''s roles: dbchat_query for shard 0, dbchat_query_<k> for shard k = last byte of the id mod dbchat.query_shards().';

REVOKE ALL ON FUNCTION dbchat.query_shards(), dbchat.query_login(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dbchat.query_shards(), dbchat.query_login(uuid) TO dbchat_app, dbchat_auditor, dbchat_provisioner;
-- The provisioner's function calls query_login; it needs to find it.
GRANT USAGE ON SCHEMA dbchat TO dbchat_provisioner;

-- ensure_tenant_role (00015) grants the tenant's roles to its query login.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dbchat.ensure_tenant_role() RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t uuid := nullif(current_setting('app.tenant_id', true), '')::uuid;
    r text := 't_' || replace(t::text, '-', '');
    x text;
BEGIN
    IF r IS NULL THEN
        RAISE EXCEPTION 'no tenant in this transaction' USING ERRCODE = '42501';
    END IF;
    FOREACH x IN ARRAY ARRAY[r, r || '_m'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = x) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN INHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', x);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created concurrently (another database of the cluster)
            END;
            EXECUTE format('COMMENT ON ROLE %I IS %L', x, CASE WHEN x = r
                THEN 'dbchat tenant role: reads its schema ' || r || ' only, runs the sandbox''s functions (dbchat_sandbox); its query login sets it per statement of a tenant admin'
                ELSE 'dbchat tenant members'' role: reads the unrestricted columns of schema ' || r || ' only, runs the sandbox''s functions (dbchat_sandbox); its query login sets it per statement of a tenant member' END);
        END IF;
        EXECUTE format('GRANT dbchat_sandbox TO %I', x);
        EXECUTE format('GRANT %I TO %I', x, dbchat.query_login(t));
    END LOOP;
    RETURN r;
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.ensure_tenant_role() IS
    'Creates the roles of the transaction''s tenant (t_<hex> for admins'' statements, t_<hex>_m for members''; NOLOGIN, inherit dbchat_sandbox, granted to the tenant''s query login, dbchat.query_login) if missing; returns t_<hex>. Owned by dbchat_provisioner (CREATEROLE). EXECUTE: dbchat_owner only.';

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dbchat.ensure_tenant_role() RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r text := 't_' || replace(nullif(current_setting('app.tenant_id', true), '')::uuid::text, '-', '');
    x text;
BEGIN
    IF r IS NULL THEN
        RAISE EXCEPTION 'no tenant in this transaction' USING ERRCODE = '42501';
    END IF;
    FOREACH x IN ARRAY ARRAY[r, r || '_m'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = x) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN INHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', x);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- created concurrently (another database of the cluster)
            END;
            EXECUTE format('COMMENT ON ROLE %I IS %L', x, CASE WHEN x = r
                THEN 'dbchat tenant role: reads its schema ' || r || ' only, runs the sandbox''s functions (dbchat_sandbox); dbchat_query sets it per statement of a tenant admin'
                ELSE 'dbchat tenant members'' role: reads the unrestricted columns of schema ' || r || ' only, runs the sandbox''s functions (dbchat_sandbox); dbchat_query sets it per statement of a tenant member' END);
        END IF;
        EXECUTE format('GRANT dbchat_sandbox TO %I', x);
        EXECUTE format('GRANT %I TO dbchat_query', x);
    END LOOP;
    RETURN r;
END
$$;
-- +goose StatementEnd
REVOKE USAGE ON SCHEMA dbchat FROM dbchat_provisioner;
DROP FUNCTION dbchat.query_login(uuid);
DROP FUNCTION dbchat.query_shards();
