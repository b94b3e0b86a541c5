-- Platform schema: the seed's models, every one tenant-scoped and protected by
-- row-level security. Roles (dbchat_owner, dbchat_app, dbchat_query,
-- dbchat_auditor) are cluster-wide, so `dbchat migrate` creates them before
-- these migrations run; migrations run as dbchat_owner.
--
-- Isolation rule, identical on every table: RLS enabled AND forced (so even
-- the owner is subject to it), one policy named tenant_isolation comparing
-- tenant_id with the transaction's app.tenant_id setting. The setting is read
-- in a scalar subquery (evaluated once per statement, usable as an index
-- condition) and an unset or empty setting becomes NULL, which matches no row.

-- +goose Up
-- `dbchat migrate` creates the extension first with its privileged connection;
-- this line documents the dependency and lets sqlc know the vector type.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE SCHEMA IF NOT EXISTS dbchat;
COMMENT ON SCHEMA dbchat IS 'dbchat platform tables; every table is tenant-scoped by the tenant_isolation RLS policy';

CREATE TABLE dbchat.tenants (
    id         uuid        NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    name       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    slug       text        NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    is_active  boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    -- The one key without tenant_id: slugs are global names chosen by the operator.
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE dbchat.users (
    tenant_id  uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                           REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    email      text        NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name       text        NOT NULL DEFAULT '',
    role       text        NOT NULL CHECK (role IN ('admin', 'member')),
    is_active  boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT users_tenant_email_key UNIQUE (tenant_id, email)
);

-- API keys are stored only as SHA-256 hashes. A key embeds its tenant id, so
-- the lookup runs under the tenant's policy like every other query.
CREATE TABLE dbchat.api_keys (
    tenant_id    uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                             REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL,
    name         text        NOT NULL DEFAULT '',
    prefix       text        NOT NULL,
    key_hash     bytea       NOT NULL CHECK (length(key_hash) = 32),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT api_keys_tenant_hash_key UNIQUE (tenant_id, key_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES dbchat.users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX api_keys_tenant_user_idx ON dbchat.api_keys (tenant_id, user_id);

CREATE TABLE dbchat.database_tables (
    tenant_id   uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                            REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id     uuid        DEFAULT nullif(current_setting('app.user_id', true), '')::uuid,
    name        text        NOT NULL CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    description text        NOT NULL DEFAULT '',
    is_active   boolean     NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT database_tables_tenant_name_key UNIQUE (tenant_id, name),
    FOREIGN KEY (tenant_id, user_id) REFERENCES dbchat.users (tenant_id, id) ON DELETE SET NULL (user_id)
);
CREATE INDEX database_tables_tenant_user_idx ON dbchat.database_tables (tenant_id, user_id);
CREATE INDEX database_tables_tenant_active_idx ON dbchat.database_tables (tenant_id, is_active);

CREATE TABLE dbchat.database_columns (
    tenant_id   uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                            REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    table_id    uuid        NOT NULL,
    name        text        NOT NULL CHECK (name ~ '^[a-z_][a-z0-9_]{0,62}$'),
    data_type   text        NOT NULL,
    description text        NOT NULL DEFAULT '',
    is_nullable boolean     NOT NULL DEFAULT true,
    position    integer     NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    -- Also the seed's tenant+table index.
    CONSTRAINT database_columns_tenant_table_name_key UNIQUE (tenant_id, table_id, name),
    FOREIGN KEY (tenant_id, table_id) REFERENCES dbchat.database_tables (tenant_id, id) ON DELETE CASCADE
);

-- A tenant's named NL->SQL model (the seed's Vanna model_name).
CREATE TABLE dbchat.models (
    tenant_id   uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                            REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    name        text        NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    llm_model   text        NOT NULL DEFAULT '',
    description text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT models_tenant_name_key UNIQUE (tenant_id, name)
);

CREATE TABLE dbchat.training_data (
    tenant_id  uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                           REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    model_id   uuid        NOT NULL,
    user_id    uuid        DEFAULT nullif(current_setting('app.user_id', true), '')::uuid,
    kind       text        NOT NULL CHECK (kind IN ('ddl', 'documentation', 'sql')),
    question   text,
    content    text        NOT NULL,
    embedding  vector(768),
    embedder   text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CHECK ((embedding IS NULL) = (embedder IS NULL)),
    FOREIGN KEY (tenant_id, model_id) REFERENCES dbchat.models (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES dbchat.users (tenant_id, id) ON DELETE SET NULL (user_id)
);
CREATE INDEX training_data_tenant_model_idx ON dbchat.training_data (tenant_id, model_id, kind);

CREATE TABLE dbchat.query_history (
    tenant_id     uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                              REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id       uuid        DEFAULT nullif(current_setting('app.user_id', true), '')::uuid,
    model_id      uuid,
    question      text,
    generated_sql text,
    status        text        NOT NULL CHECK (status IN ('pending', 'success', 'error', 'rejected')),
    error         text,
    row_count     bigint,
    generation_ms double precision,
    execution_ms  double precision,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES dbchat.users (tenant_id, id) ON DELETE SET NULL (user_id),
    FOREIGN KEY (tenant_id, model_id) REFERENCES dbchat.models (tenant_id, id) ON DELETE SET NULL (model_id)
);
CREATE INDEX query_history_tenant_user_idx ON dbchat.query_history (tenant_id, user_id, created_at DESC);
CREATE INDEX query_history_tenant_status_idx ON dbchat.query_history (tenant_id, status, created_at DESC);
CREATE INDEX query_history_tenant_model_idx ON dbchat.query_history (tenant_id, model_id);
CREATE INDEX query_history_tenant_created_idx ON dbchat.query_history (tenant_id, created_at DESC, id DESC);

-- Row-level security. The same policy text on every table, spelled out so a
-- DBA reading pg_policies sees exactly what is enforced.
ALTER TABLE dbchat.tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.tenants FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.tenants
    USING (id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.tenants IS
    'A transaction sees and writes only the tenant row whose id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

ALTER TABLE dbchat.users ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.users
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.users IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

ALTER TABLE dbchat.api_keys ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.api_keys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.api_keys
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.api_keys IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

ALTER TABLE dbchat.database_tables ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.database_tables FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.database_tables
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.database_tables IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

ALTER TABLE dbchat.database_columns ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.database_columns FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.database_columns
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.database_columns IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

ALTER TABLE dbchat.models ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.models FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.models
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.models IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

ALTER TABLE dbchat.training_data ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.training_data FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.training_data
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.training_data IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

ALTER TABLE dbchat.query_history ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.query_history FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.query_history
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.query_history IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

-- Creating a tenant is the operator's one narrow path around "you only see
-- your own tenant": the runtime role has no INSERT on tenants. The function
-- runs as the owner (still subject to the forced policy), so it sets the new
-- tenant as the transaction's tenant before inserting; the caller's
-- transaction continues as that tenant to create its first admin.
-- +goose StatementBegin
CREATE FUNCTION dbchat.create_tenant(p_name text, p_slug text) RETURNS uuid
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    new_id uuid := gen_random_uuid();
BEGIN
    PERFORM set_config('app.tenant_id', new_id::text, true);
    INSERT INTO dbchat.tenants (id, name, slug) VALUES (new_id, p_name, p_slug);
    RETURN new_id;
END
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.create_tenant(text, text) IS
    'Operator path: creates a tenant and makes it the current transaction''s tenant. EXECUTE: dbchat_app only.';
REVOKE ALL ON FUNCTION dbchat.create_tenant(text, text) FROM PUBLIC;

-- Grants: the runtime role gets DML only, nothing it does not use; the query
-- role gets nothing here (platform tables are never visible to generated SQL);
-- the auditor sees the schema's structure in the catalogs but no rows.
GRANT USAGE ON SCHEMA dbchat TO dbchat_app, dbchat_auditor;
GRANT EXECUTE ON FUNCTION dbchat.create_tenant(text, text) TO dbchat_app;
GRANT SELECT, UPDATE (name, is_active, updated_at) ON dbchat.tenants TO dbchat_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON dbchat.users TO dbchat_app;
GRANT SELECT, INSERT, DELETE, UPDATE (name, last_used_at, revoked_at) ON dbchat.api_keys TO dbchat_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON dbchat.database_tables, dbchat.database_columns,
    dbchat.models, dbchat.training_data, dbchat.query_history TO dbchat_app;

-- +goose Down
DROP SCHEMA dbchat CASCADE;
