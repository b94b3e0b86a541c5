-- End-user claims in PostgreSQL (issue 15 §2). Every tenant transaction
-- carries, next to app.tenant_id and app.user_id, the user's role in its
-- tenant (app.role: admin or member) and the end user's verified claims
-- (app.claims, a JSON object), all set transaction-locally by the service
-- (tenant.DB with set_config(..., true), the sandbox with SET LOCAL), never
-- by the caller's SQL: untrusted SQL can neither run SET nor execute
-- set_config. dbchat.claim(name) and dbchat.claim_array(name) read them;
-- the tenant roles execute both (they are on the sandbox's reviewed list,
-- internal/migrate/query_functions.txt) because the policies below call
-- them as the statement's role.
--
-- A tenant admin attaches claim policies to its data tables
-- (POST /v1/tables/{id}/policies). dbchat.create_claim_policy, a SECURITY
-- DEFINER function like create_data_table, compiles one into a real
-- AS RESTRICTIVE ... FOR SELECT policy named claim_<name> on that table: a
-- row must pass it and tenant_isolation, so it applies to every read (the
-- preview as dbchat_app, /v1/sql, /v1/ask and conversations as the tenant's
-- role). The tenant sends names only, never SQL text: the function checks
-- the policy and column names, takes the column's type from the catalog,
-- quotes the claim name as a literal and builds the expression from fixed
-- text. dbchat.claim_policies records each one (tenant-first keys, forced
-- tenant_isolation); writes to it go through the functions only.

-- +goose Up

-- The value of one claim of the transaction's end user as text: a string,
-- number or boolean claim; NULL for a missing, null, array or object claim
-- and without claims.
CREATE FUNCTION dbchat.claim(p_name text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE jsonb_typeof(c -> p_name) WHEN 'string' THEN c ->> p_name
                                          WHEN 'number' THEN c ->> p_name
                                          WHEN 'boolean' THEN c ->> p_name END
    FROM (SELECT nullif(current_setting('app.claims', true), '')::jsonb AS c) s
$$;
COMMENT ON FUNCTION dbchat.claim(text) IS
    'One claim of the transaction''s end user (app.claims, set per transaction by the service) as text; NULL when missing, null, an array or an object. EXECUTE: dbchat_app and the tenant roles (reviewed list).';

-- The elements of an array claim as text[] (a scalar claim is a one-element
-- array); NULL for a missing, null or object claim and without claims.
CREATE FUNCTION dbchat.claim_array(p_name text) RETURNS text[]
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN jsonb_typeof(c -> p_name) = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(c -> p_name))
                WHEN jsonb_typeof(c -> p_name) IN ('string', 'number', 'boolean') THEN ARRAY[c ->> p_name] END
    FROM (SELECT nullif(current_setting('app.claims', true), '')::jsonb AS c) s
$$;
COMMENT ON FUNCTION dbchat.claim_array(text) IS
    'An array claim of the transaction''s end user as text[] (a scalar claim: one element); NULL when missing, null or an object. EXECUTE: dbchat_app and the tenant roles (reviewed list).';

REVOKE ALL ON FUNCTION dbchat.claim(text), dbchat.claim_array(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dbchat.claim(text), dbchat.claim_array(text) TO dbchat_app;

CREATE TABLE dbchat.claim_policies (
    tenant_id     uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                              REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    table_id      uuid        NOT NULL,
    name          text        NOT NULL CHECK (name ~ '^[a-z_][a-z0-9_]{0,56}$'),
    column_name   text        NOT NULL CHECK (column_name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    claim         text        NOT NULL CHECK (claim ~ '^[A-Za-z_][A-Za-z0-9_.:/-]{0,199}$'),
    op            text        NOT NULL CHECK (op IN ('eq', 'in')),
    admins_bypass boolean     NOT NULL DEFAULT false,
    user_id       uuid        DEFAULT nullif(current_setting('app.user_id', true), '')::uuid,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT claim_policies_tenant_table_name_key UNIQUE (tenant_id, table_id, name),
    FOREIGN KEY (tenant_id, table_id) REFERENCES dbchat.database_tables (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES dbchat.users (tenant_id, id) ON DELETE SET NULL (user_id)
);
CREATE INDEX claim_policies_tenant_user_idx ON dbchat.claim_policies (tenant_id, user_id);
COMMENT ON TABLE dbchat.claim_policies IS
    'End-user row policies on tenant data tables (POST/GET/DELETE /v1/tables/{id}/policies, admins only): each row is a restrictive policy claim_<name> on that table, created and dropped with it by dbchat.create_claim_policy and dbchat.drop_claim_policy.';
COMMENT ON COLUMN dbchat.claim_policies.name IS 'The policy''s name; PostgreSQL''s policy is claim_<name>.';
COMMENT ON COLUMN dbchat.claim_policies.column_name IS 'The table column compared with the claim.';
COMMENT ON COLUMN dbchat.claim_policies.claim IS 'The end-user claim (a key of app.claims) the column is compared with.';
COMMENT ON COLUMN dbchat.claim_policies.op IS 'eq: column = dbchat.claim(claim); in: column = ANY (dbchat.claim_array(claim)).';
COMMENT ON COLUMN dbchat.claim_policies.admins_bypass IS 'true: a transaction whose app.role is admin sees every row of its tenant.';

ALTER TABLE dbchat.claim_policies ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.claim_policies FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.claim_policies
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.claim_policies IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';
GRANT SELECT ON dbchat.claim_policies TO dbchat_app;

-- create_claim_policy compiles one claim policy into a restrictive policy
-- on a data table of the transaction's tenant and records it. Admins only
-- (app.role); every name is checked again here, and nothing is created
-- unless all of it is.
-- +goose StatementBegin
CREATE FUNCTION dbchat.create_claim_policy(p_table_id uuid, p_name text, p_column text, p_claim text,
                                           p_op text, p_admins_bypass boolean) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s     text := dbchat.tenant_schema();
    tbl   text;
    rel   regclass;
    typ   text;
    val   text;
    cond  text;
    rec   dbchat.claim_policies;
BEGIN
    IF s IS NULL THEN
        RAISE EXCEPTION 'no tenant in this transaction' USING ERRCODE = '42501';
    END IF;
    IF current_setting('app.role', true) IS DISTINCT FROM 'admin' THEN
        RAISE EXCEPTION 'only tenant admins manage claim policies' USING ERRCODE = '42501';
    END IF;
    -- The catalog row, under tenant_isolation: another tenant's id is unknown.
    SELECT t.name INTO tbl FROM dbchat.database_tables t WHERE t.id = p_table_id;
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table % does not exist', p_table_id USING ERRCODE = '42P01';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('dbchat.tenant_ddl'), hashtext(s));
    rel := dbchat.data_table(tbl);
    IF p_name IS NULL OR p_name !~ '^[a-z_][a-z0-9_]{0,56}$' THEN
        RAISE EXCEPTION 'name: invalid policy name %: lowercase letters, digits and underscores, at most 57, not starting with a digit',
            quote_literal(coalesce(p_name, 'NULL')) USING ERRCODE = '42602';
    END IF;
    PERFORM dbchat.check_identifier(p_column);
    SELECT format_type(a.atttypid, a.atttypmod) INTO typ FROM pg_attribute a
    WHERE a.attrelid = rel AND a.attname = p_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'column: table % has no column %', quote_literal(tbl), quote_literal(p_column) USING ERRCODE = '42602';
    END IF;
    IF p_claim IS NULL OR p_claim !~ '^[A-Za-z_][A-Za-z0-9_.:/-]{0,199}$' THEN
        RAISE EXCEPTION 'claim: invalid claim name %', quote_literal(coalesce(p_claim, 'NULL')) USING ERRCODE = '42602';
    END IF;
    -- The expression is fixed text around a quoted identifier, a quoted
    -- literal and a type name from the catalog (one of check_type's list).
    IF p_op = 'eq' THEN
        val := format('dbchat.claim(%L)', p_claim);
        cond := format('%I = (SELECT %s)', p_column, CASE WHEN typ = 'text' THEN val ELSE format('%s::%s', val, typ) END);
    ELSIF p_op = 'in' THEN
        val := format('dbchat.claim_array(%L)', p_claim);
        cond := format('%I = ANY ((SELECT %s)::%s[])', p_column, val, typ);
    ELSE
        RAISE EXCEPTION 'op: unknown operator % (eq, in)', quote_literal(coalesce(p_op, 'NULL')) USING ERRCODE = '42602';
    END IF;
    IF coalesce(p_admins_bypass, false) THEN
        cond := format('(SELECT current_setting(%L, true)) = %L OR %s', 'app.role', 'admin', cond);
    END IF;

    INSERT INTO dbchat.claim_policies (table_id, name, column_name, claim, op, admins_bypass)
    VALUES (p_table_id, p_name, p_column, p_claim, p_op, coalesce(p_admins_bypass, false))
    RETURNING * INTO rec;
    EXECUTE format('CREATE POLICY %I ON %s AS RESTRICTIVE FOR SELECT USING (%s)', 'claim_' || p_name, rel, cond);
    EXECUTE format('COMMENT ON POLICY %I ON %s IS %L', 'claim_' || p_name, rel,
                   format('Claim policy %s (dbchat.claim_policies %s), restrictive, on top of tenant_isolation: a row is visible only when %s %s the end user''s claim %s%s.',
                          p_name, rec.id, p_column, CASE p_op WHEN 'eq' THEN 'equals' ELSE 'is one of' END, p_claim,
                          CASE WHEN coalesce(p_admins_bypass, false) THEN ', or to tenant admins (app.role)' ELSE '' END));
    RETURN rec.id;
END
$$;
-- +goose StatementEnd

-- drop_claim_policy drops a claim policy of a data table of the
-- transaction's tenant and its record. Admins only (app.role).
-- +goose StatementBegin
CREATE FUNCTION dbchat.drop_claim_policy(p_table_id uuid, p_id uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s   text := dbchat.tenant_schema();
    tbl text;
    pol text;
BEGIN
    IF s IS NULL THEN
        RAISE EXCEPTION 'no tenant in this transaction' USING ERRCODE = '42501';
    END IF;
    IF current_setting('app.role', true) IS DISTINCT FROM 'admin' THEN
        RAISE EXCEPTION 'only tenant admins manage claim policies' USING ERRCODE = '42501';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('dbchat.tenant_ddl'), hashtext(s));
    DELETE FROM dbchat.claim_policies p WHERE p.table_id = p_table_id AND p.id = p_id RETURNING p.name INTO pol;
    IF pol IS NULL THEN
        RETURN false;
    END IF;
    SELECT t.name INTO tbl FROM dbchat.database_tables t WHERE t.id = p_table_id;
    EXECUTE format('DROP POLICY IF EXISTS %I ON %s', 'claim_' || pol, dbchat.data_table(tbl));
    RETURN true;
END
$$;
-- +goose StatementEnd

COMMENT ON FUNCTION dbchat.create_claim_policy(uuid, text, text, text, text, boolean) IS
    'Creates a restrictive claim policy (claim_<name>, FOR SELECT) on a data table of the caller''s tenant from names only, and records it in dbchat.claim_policies; returns the record''s id. Admins only (app.role). EXECUTE: dbchat_app only.';
COMMENT ON FUNCTION dbchat.drop_claim_policy(uuid, uuid) IS
    'Drops a claim policy of a data table of the caller''s tenant and its record; false when there is none. Admins only (app.role). EXECUTE: dbchat_app only.';
REVOKE ALL ON FUNCTION dbchat.create_claim_policy(uuid, text, text, text, text, boolean),
    dbchat.drop_claim_policy(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dbchat.create_claim_policy(uuid, text, text, text, text, boolean),
    dbchat.drop_claim_policy(uuid, uuid) TO dbchat_app;

-- Members see only their own history: until now only Go enforced it (the
-- history routes filter by user for members). owner_or_admin on
-- query_history is the rule of conversations and messages (00009), so a DBA
-- reads it in pg_policies: a member sees and writes (its feedback) only the
-- entries whose user_id is the transaction's app.user_id, a tenant admin
-- (dbchat.users) all of the tenant's, a transaction without a user none.
CREATE POLICY owner_or_admin ON dbchat.query_history AS RESTRICTIVE
    USING (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)))
    WITH CHECK (user_id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)
           OR (SELECT u.role = 'admin' FROM dbchat.users u
               WHERE u.id = (SELECT nullif(current_setting('app.user_id', true), '')::uuid)));
COMMENT ON POLICY owner_or_admin ON dbchat.query_history IS
    'Restrictive, on top of tenant_isolation: a member sees and writes only its own history entries (user_id = app.user_id); a tenant admin all of the tenant''s; no app.user_id, none.';

-- +goose Down
DROP POLICY owner_or_admin ON dbchat.query_history;
DROP FUNCTION dbchat.drop_claim_policy(uuid, uuid);
DROP FUNCTION dbchat.create_claim_policy(uuid, text, text, text, text, boolean);
DROP TABLE dbchat.claim_policies;
DROP FUNCTION dbchat.claim_array(text);
DROP FUNCTION dbchat.claim(text);
