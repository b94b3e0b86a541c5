-- Concurrent first tables of one tenant raced on creating and granting its
-- schema (seen behind PgBouncer: "tuple concurrently updated"). The DDL
-- function now serialises a tenant's DDL with a transaction-level advisory
-- lock and creates and grants the schema only when it is missing.

-- +goose Up
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

    -- One DDL transaction per tenant at a time: concurrent first tables would
    -- otherwise race on creating and granting the schema ("tuple
    -- concurrently updated"). The lock ends with the transaction.
    PERFORM pg_advisory_xact_lock(hashtext('dbchat.tenant_ddl'), hashtext(s));
    IF to_regnamespace(s) IS NULL THEN
        EXECUTE format('CREATE SCHEMA %I', s);
        EXECUTE format('GRANT USAGE ON SCHEMA %I TO dbchat_app, dbchat_query', s);
    END IF;
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

-- +goose Down
-- (the previous body is in 00002_data_tables.sql; re-running it is harmless)
SELECT 1;
