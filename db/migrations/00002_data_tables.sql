-- Tenant data tables. Each tenant's tables live in a schema of its own,
-- t_<tenant id without dashes>, derived from the transaction's tenant setting
-- and never from user input, so generated SQL can say FROM customers. The
-- schema gives names; the same tenant_isolation policy gives isolation.
--
-- The runtime role holds no DDL rights. Table and column DDL goes through the
-- SECURITY DEFINER functions below (owned by dbchat_owner, search_path pinned,
-- EXECUTE for dbchat_app only). They take identifiers that they validate again
-- (allowlisted shape, not reserved, not ours) and a type from an allowlist, and
-- they only ever touch the schema of the transaction's own tenant.

-- +goose Up

-- The schema of the transaction's tenant, or NULL without one.
CREATE FUNCTION dbchat.tenant_schema() RETURNS text
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 't_' || replace(nullif(current_setting('app.tenant_id', true), '')::uuid::text, '-', '')
$$;
COMMENT ON FUNCTION dbchat.tenant_schema() IS
    'Name of the data schema of the transaction''s tenant (app.tenant_id); NULL without a tenant.';

-- +goose StatementBegin
CREATE FUNCTION dbchat.check_identifier(p_name text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_name IS NULL OR p_name !~ '^[a-z_][a-z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'invalid identifier %: lowercase letters, digits and underscores, at most 63, not starting with a digit', quote_literal(coalesce(p_name, 'NULL'))
            USING ERRCODE = '42602';
    END IF;
    IF p_name IN ('tenant_id', '_row_id') OR p_name LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'identifier % is reserved by dbchat', quote_literal(p_name) USING ERRCODE = '42602';
    END IF;
    IF EXISTS (SELECT FROM pg_get_keywords() WHERE word = p_name AND catcode IN ('R', 'T')) THEN
        RAISE EXCEPTION 'identifier % is an SQL reserved word', quote_literal(p_name) USING ERRCODE = '42602';
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION dbchat.check_type(p_type text) RETURNS void
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF p_type IS NULL OR p_type NOT IN ('text', 'integer', 'bigint', 'numeric', 'double precision',
                                        'boolean', 'date', 'timestamptz', 'uuid', 'jsonb') THEN
        RAISE EXCEPTION 'unsupported column type %', quote_literal(coalesce(p_type, 'NULL')) USING ERRCODE = '42602';
    END IF;
END
$$;
-- +goose StatementEnd

-- create_data_table creates <tenant schema>.<p_table> with the given columns
-- ([{name, type, nullable}]), RLS enabled and forced, the tenant_isolation
-- policy, and grants: DML for dbchat_app, SELECT for dbchat_query. Returns the
-- schema name.
-- +goose StatementBegin
CREATE FUNCTION dbchat.create_data_table(p_table text, p_columns jsonb) RETURNS text
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

    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', s);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO dbchat_app, dbchat_query', s);
    -- tenant_id has no foreign key: WITH CHECK already pins it to the
    -- transaction's tenant, and a per-row key check would halve import speed.
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
    EXECUTE format('GRANT SELECT ON %I.%I TO dbchat_query', s, p_table);
    RETURN s;
END
$$;
-- +goose StatementEnd

-- data_table resolves p_table in the transaction's tenant schema, or fails
-- with undefined_table: the other functions never act outside that schema.
-- +goose StatementBegin
CREATE FUNCTION dbchat.data_table(p_table text) RETURNS regclass
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s   text := dbchat.tenant_schema();
    rel regclass;
BEGIN
    IF s IS NULL THEN
        RAISE EXCEPTION 'no tenant in this transaction' USING ERRCODE = '42501';
    END IF;
    PERFORM dbchat.check_identifier(p_table);
    rel := to_regclass(format('%I.%I', s, p_table));
    IF rel IS NULL THEN
        RAISE EXCEPTION 'table % does not exist', quote_literal(p_table) USING ERRCODE = '42P01';
    END IF;
    RETURN rel;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION dbchat.add_data_column(p_table text, p_column text, p_type text, p_nullable boolean) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass := dbchat.data_table(p_table);
BEGIN
    PERFORM dbchat.check_identifier(p_column);
    PERFORM dbchat.check_type(p_type);
    EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s%s', rel, p_column, p_type,
                   CASE WHEN p_nullable THEN '' ELSE ' NOT NULL' END);
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION dbchat.drop_data_table(p_table text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel regclass := dbchat.data_table(p_table);
BEGIN
    EXECUTE format('DROP TABLE %s', rel);
END
$$;
-- +goose StatementEnd

COMMENT ON FUNCTION dbchat.create_data_table(text, jsonb) IS
    'Creates a table in the caller''s tenant schema with forced RLS and the tenant_isolation policy. EXECUTE: dbchat_app only.';
COMMENT ON FUNCTION dbchat.add_data_column(text, text, text, boolean) IS
    'Adds a column to a table of the caller''s tenant schema. EXECUTE: dbchat_app only.';
COMMENT ON FUNCTION dbchat.drop_data_table(text) IS
    'Drops a table of the caller''s tenant schema. EXECUTE: dbchat_app only.';

REVOKE ALL ON FUNCTION dbchat.tenant_schema(), dbchat.check_identifier(text), dbchat.check_type(text),
    dbchat.data_table(text), dbchat.create_data_table(text, jsonb),
    dbchat.add_data_column(text, text, text, boolean), dbchat.drop_data_table(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dbchat.create_data_table(text, jsonb),
    dbchat.add_data_column(text, text, text, boolean), dbchat.drop_data_table(text),
    dbchat.tenant_schema() TO dbchat_app;

-- Operator path: listing every tenant is the one read that must cross the
-- tenant boundary. It runs as dbchat_operator, a role that cannot log in, owns
-- no table and exists only to own this function (in a schema of its own),
-- which returns the tenant rows and nothing else. EXECUTE: dbchat_app only,
-- and the API calls it only behind the operator token.
CREATE SCHEMA dbchat_ops AUTHORIZATION dbchat_operator;
COMMENT ON SCHEMA dbchat_ops IS 'dbchat operator functions; owned by dbchat_operator (NOLOGIN, BYPASSRLS)';
GRANT USAGE ON SCHEMA dbchat TO dbchat_operator;
GRANT SELECT ON dbchat.tenants TO dbchat_operator;
-- +goose StatementBegin
CREATE FUNCTION dbchat_ops.list_tenants() RETURNS SETOF dbchat.tenants
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM dbchat.tenants ORDER BY created_at, id
$$;
-- +goose StatementEnd
ALTER FUNCTION dbchat_ops.list_tenants() OWNER TO dbchat_operator;
REVOKE ALL ON FUNCTION dbchat_ops.list_tenants() FROM PUBLIC;
GRANT USAGE ON SCHEMA dbchat_ops TO dbchat_app;
GRANT EXECUTE ON FUNCTION dbchat_ops.list_tenants() TO dbchat_app;
COMMENT ON FUNCTION dbchat_ops.list_tenants() IS
    'Operator path: every tenant row, for GET /v1/tenants behind the operator token. EXECUTE: dbchat_app only.';

-- +goose Down
DROP SCHEMA dbchat_ops CASCADE;
REVOKE ALL ON dbchat.tenants FROM dbchat_operator;
REVOKE ALL ON SCHEMA dbchat FROM dbchat_operator;
DROP FUNCTION dbchat.drop_data_table(text);
DROP FUNCTION dbchat.add_data_column(text, text, text, boolean);
DROP FUNCTION dbchat.data_table(text);
DROP FUNCTION dbchat.create_data_table(text, jsonb);
DROP FUNCTION dbchat.check_type(text);
DROP FUNCTION dbchat.check_identifier(text);
DROP FUNCTION dbchat.tenant_schema();
