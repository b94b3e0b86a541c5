-- Isolation beyond rows. Until now dbchat_query held USAGE on every tenant
-- schema and SELECT on every tenant table: RLS hid the rows, but untrusted SQL
-- could still name another tenant's tables, learn that they exist from the
-- error, and hold a lock on them for the length of a statement. Now each
-- tenant has a role of its own, named like its schema (t_<hex>): it alone has
-- USAGE on the schema and SELECT on its tables, and it inherits
-- dbchat_sandbox, which holds the reviewed list of functions generated SQL
-- may call (`dbchat migrate` grants it; see internal/migrate/builtins.go).
-- dbchat_query (NOINHERIT, no privileges of its own) is a member of every
-- tenant role and the sandbox runs each statement after SET LOCAL ROLE to the
-- transaction's tenant, so another tenant's schema is "permission denied"
-- before any of its tables is looked up or locked.
--
-- Roles are cluster-wide and need CREATEROLE, which no runtime role has: one
-- SECURITY DEFINER function owned by dbchat_provisioner (NOLOGIN, CREATEROLE)
-- creates the role of the transaction's tenant and nothing else. `dbchat
-- migrate` also creates the roles of existing tenants (and after a restore
-- into a new cluster, where roles are not part of a database dump).

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION dbchat.ensure_tenant_role() RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r text := 't_' || replace(nullif(current_setting('app.tenant_id', true), '')::uuid::text, '-', '');
BEGIN
    IF r IS NULL THEN
        RAISE EXCEPTION 'no tenant in this transaction' USING ERRCODE = '42501';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) THEN
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN INHERIT NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL; -- created concurrently (another database of the cluster)
        END;
        EXECUTE format('COMMENT ON ROLE %I IS %L', r,
                       'dbchat tenant role: reads its schema ' || r || ' only, runs the sandbox''s functions (dbchat_sandbox); dbchat_query sets it per statement');
    END IF;
    EXECUTE format('GRANT dbchat_sandbox TO %I', r);
    EXECUTE format('GRANT %I TO dbchat_query', r);
    RETURN r;
END
$$;
-- +goose StatementEnd
-- A new owner needs CREATE on the schema at the moment of the change only.
GRANT CREATE ON SCHEMA dbchat TO dbchat_provisioner;
ALTER FUNCTION dbchat.ensure_tenant_role() OWNER TO dbchat_provisioner;
REVOKE CREATE ON SCHEMA dbchat FROM dbchat_provisioner;
REVOKE ALL ON FUNCTION dbchat.ensure_tenant_role() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dbchat.ensure_tenant_role() TO dbchat_owner;
COMMENT ON FUNCTION dbchat.ensure_tenant_role() IS
    'Creates the role of the transaction''s tenant (t_<hex>, NOLOGIN, inherits dbchat_sandbox, granted to dbchat_query) if missing; returns its name. Owned by dbchat_provisioner (CREATEROLE). EXECUTE: dbchat_owner only, from create_tenant and create_data_table.';

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dbchat.create_tenant(p_name text, p_slug text) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid := gen_random_uuid();
BEGIN
    PERFORM set_config('app.tenant_id', new_id::text, true);
    INSERT INTO dbchat.tenants (id, name, slug) VALUES (new_id, p_name, p_slug);
    PERFORM dbchat.ensure_tenant_role();
    RETURN new_id;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dbchat.create_data_table(p_table text, p_columns jsonb) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s    text := dbchat.tenant_schema();
    col  jsonb;
    defs text := '';
BEGIN
    IF s IS NULL THEN
        RAISE EXCEPTION 'no tenant in this transaction' USING ERRCODE = '42501';
    END IF;
    PERFORM dbchat.check_identifier(p_table);
    IF jsonb_typeof(p_columns) IS DISTINCT FROM 'array' OR jsonb_array_length(p_columns) = 0 THEN
        RAISE EXCEPTION 'a table needs at least one column' USING ERRCODE = '42602';
    END IF;
    FOR col IN SELECT value FROM jsonb_array_elements(p_columns) LOOP
        PERFORM dbchat.check_identifier(col->>'name');
        PERFORM dbchat.check_type(col->>'type');
        defs := defs || format(', %I %s%s', col->>'name', col->>'type',
                               CASE WHEN coalesce((col->>'nullable')::boolean, true) THEN '' ELSE ' NOT NULL' END);
    END LOOP;

    -- One DDL transaction per tenant at a time (see 00005).
    PERFORM pg_advisory_xact_lock(hashtext('dbchat.tenant_ddl'), hashtext(s));
    IF to_regnamespace(s) IS NULL THEN
        EXECUTE format('CREATE SCHEMA %I', s);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO dbchat_app, %I', s, dbchat.ensure_tenant_role());
    END IF;
    EXECUTE format($f$CREATE TABLE %I.%I (
            tenant_id uuid NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid,
            _row_id bigint GENERATED ALWAYS AS IDENTITY%s,
            PRIMARY KEY (tenant_id, _row_id))$f$, s, p_table, defs);
    EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', s, p_table);
    EXECUTE format('ALTER TABLE %I.%I FORCE ROW LEVEL SECURITY', s, p_table);
    EXECUTE format($f$CREATE POLICY tenant_isolation ON %I.%I
            USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
            WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))$f$, s, p_table);
    EXECUTE format($f$COMMENT ON POLICY tenant_isolation ON %I.%I IS 'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.'$f$, s, p_table);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I.%I TO dbchat_app', s, p_table);
    -- The tenant's own role reads it (the role is named like the schema).
    EXECUTE format('GRANT SELECT ON %I.%I TO %I', s, p_table, s);
    RETURN s;
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.create_data_table(text, jsonb) IS
    'Creates a table in the caller''s tenant schema with forced RLS and the tenant_isolation policy; DML for dbchat_app, SELECT for the tenant''s role only. EXECUTE: dbchat_app only.';

-- dbchat_query keeps nothing of its own on tenant data; `dbchat migrate`
-- grants the same to each tenant's role after this migration.
-- +goose StatementBegin
DO $$
DECLARE
    s text;
BEGIN
    FOR s IN SELECT nspname FROM pg_namespace WHERE nspname ~ '^t_[0-9a-f]{32}$' LOOP
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM dbchat_query', s);
        EXECUTE format('REVOKE ALL ON SCHEMA %I FROM dbchat_query', s);
    END LOOP;
END
$$;
-- +goose StatementEnd

-- The foreign key (tenant_id, user_id) -> users had no index: deleting a user
-- scanned every training row (splinter 0001, unindexed foreign keys).
CREATE INDEX training_data_tenant_user_idx ON dbchat.training_data (tenant_id, user_id);

-- +goose Down
-- (create_tenant and create_data_table keep calling ensure_tenant_role; the
-- previous bodies are in 00001 and 00005)
DROP INDEX dbchat.training_data_tenant_user_idx;
