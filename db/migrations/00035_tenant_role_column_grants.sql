-- The tenant admins' role reads its tables by column, as the members'
-- role does (00015), instead of with a grant on each table.
--
-- A grant on a table also lets its holder read the table's system columns:
-- xmin and xmax (transaction ids, which count every tenant's writes between
-- two of a tenant's own) and tableoid (an object id, which counts every
-- tenant's new tables). A role that holds SELECT only by column cannot read
-- them ("permission denied"), so the database refuses them to admins'
-- untrusted SQL as it already did to members', behind the SQL guard, which
-- refuses them first.
--
-- create_data_table grants t_<hex> SELECT on the new table's columns
-- instead of the table; grant_member_columns (the API calls it in the same
-- transaction as every table and column it creates) now also grants
-- t_<hex> SELECT on every column of the table and revokes its grant on the
-- table; `dbchat migrate` (internal/migrate ensureTenantRoles) converts the
-- existing tables.

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
    -- The tenant's own role reads it (the role is named like the schema),
    -- by column (00035): a grant on the table would read the system columns
    -- too, which count every tenant's transactions and tables.
    EXECUTE format('GRANT SELECT (%s) ON %I.%I TO %I',
        (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
         WHERE a.attrelid = format('%I.%I', s, p_table)::regclass AND a.attnum > 0 AND NOT a.attisdropped),
        s, p_table, s);
    RETURN s;
END
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dbchat.grant_member_columns(p_table_id uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s    text := dbchat.tenant_schema();
    r    text;
    m    text;
    tbl  text;
    rel  regclass;
    cols text;
    all_cols text;
BEGIN
    IF s IS NULL THEN
        RAISE EXCEPTION 'no tenant in this transaction' USING ERRCODE = '42501';
    END IF;
    -- The catalog row of this tenant's (explicitly: a definer that bypasses
    -- RLS must not find another tenant's).
    SELECT t.name INTO tbl FROM dbchat.database_tables t
    WHERE t.id = p_table_id AND t.tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid;
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table % does not exist', p_table_id USING ERRCODE = '42P01';
    END IF;
    rel := dbchat.data_table(tbl);
    r := dbchat.ensure_tenant_role();
    m := r || '_m';
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, m);
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
    FROM pg_attribute a
    WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
      AND NOT EXISTS (SELECT FROM dbchat.database_columns c
                      WHERE c.tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid
                        AND c.table_id = p_table_id AND c.name = a.attname AND c.restricted);
    -- Revoking on the table revokes every column grant as well.
    EXECUTE format('REVOKE ALL ON %s FROM %I', rel, m);
    IF cols IS NOT NULL THEN
        EXECUTE format('GRANT SELECT (%s) ON %s TO %I', cols, rel, m);
    END IF;
    -- The admins' role reads every column, by column too: a grant on the
    -- table would also let it read the system columns (xmin, tableoid),
    -- which count every tenant's transactions and tables.
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO all_cols
    FROM pg_attribute a WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped;
    EXECUTE format('REVOKE ALL ON %s FROM %I', rel, r);
    EXECUTE format('GRANT SELECT (%s) ON %s TO %I', all_cols, rel, r);
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.grant_member_columns(uuid) IS
    'Makes the tenant''s read roles'' grants on the given data table match the catalog: t_<hex> SELECT on every column (by column, so not on the system columns), t_<hex>_m USAGE on the schema and SELECT on exactly the columns not marked restricted in dbchat.database_columns. EXECUTE: dbchat_app only.';

-- +goose Down
-- The tables keep their column grants; dbchat migrate of the previous
-- version grants t_<hex> the table again where it lacks it.
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

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dbchat.grant_member_columns(p_table_id uuid) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s    text := dbchat.tenant_schema();
    m    text;
    tbl  text;
    rel  regclass;
    cols text;
BEGIN
    IF s IS NULL THEN
        RAISE EXCEPTION 'no tenant in this transaction' USING ERRCODE = '42501';
    END IF;
    -- The catalog row of this tenant's (explicitly: a definer that bypasses
    -- RLS must not find another tenant's).
    SELECT t.name INTO tbl FROM dbchat.database_tables t
    WHERE t.id = p_table_id AND t.tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid;
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table % does not exist', p_table_id USING ERRCODE = '42P01';
    END IF;
    rel := dbchat.data_table(tbl);
    m := dbchat.ensure_tenant_role() || '_m';
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, m);
    SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
    FROM pg_attribute a
    WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped
      AND NOT EXISTS (SELECT FROM dbchat.database_columns c
                      WHERE c.tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid
                        AND c.table_id = p_table_id AND c.name = a.attname AND c.restricted);
    -- Revoking on the table revokes every column grant as well.
    EXECUTE format('REVOKE ALL ON %s FROM %I', rel, m);
    IF cols IS NOT NULL THEN
        EXECUTE format('GRANT SELECT (%s) ON %s TO %I', cols, rel, m);
    END IF;
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.grant_member_columns(uuid) IS
    'Makes the members'' role t_<hex>_m hold USAGE on the tenant''s schema and SELECT on exactly the columns of the given data table not marked restricted in dbchat.database_columns. EXECUTE: dbchat_app only.';
