-- Citus-ready keys (issue 18, "Past one machine: Citus"; docs/SCALING.md).
--
-- A table Citus distributes by tenant_id may only have primary keys, unique
-- constraints and unique indexes that include tenant_id, and foreign keys
-- between distributed tables must pair tenant_id with tenant_id. Every
-- tenant-scoped table of schema dbchat already complied but one:
-- identity_providers_issuer_key, UNIQUE (issuer) across tenants (00011), on
-- purpose, since an issuer belongs to one tenant only.
--
-- That rule stays; it moves out of the tenant-scoped table:
--
--   dbchat.identity_providers   UNIQUE (tenant_id, issuer), a per-tenant key
--                               Citus can enforce on one shard.
--   dbchat_migrations.issuer_registry
--                               issuer PRIMARY KEY → the tenant and provider
--                               holding it: the global rule, in a table that
--                               is global by design (a Citus reference
--                               table, like dbchat.tenants for slugs).
--
-- The registry follows identity_providers by trigger (insert and delete,
-- including the delete cascading from a tenant), so the API and its queries
-- do not change: a second registration of a taken issuer still fails with
-- unique_violation (409 conflict), by the registry's key now. The sign-in
-- lookup dbchat_ops.identity_provider_by_issuer reads the registry's key and
-- then one provider by (tenant_id, id): the cross-tenant question "whose
-- issuer is this?" is answered by the global table, and the read of the
-- provider is routable to one tenant.
--
-- The registry is bookkeeping, beside dbchat_migrations.erasure_log rather
-- than in dbchat: no tenant reads it, so it is not a tenant table (the
-- tenant rule, forced RLS and a tenant_isolation policy, is about rows a
-- tenant may see). dbchat_app has no privilege on it (only the trigger
-- function beside it, dbchat_migrations.sync_issuer_registry(), SECURITY
-- DEFINER, owned by dbchat_owner and executable by no role, writes it);
-- dbchat_operator reads it for the sign-in lookup. `dbchat tenant erase` finds no residue:
-- the tenant row's delete cascades to the providers, whose trigger deletes
-- their registry rows.
--
-- audit.distribution_key_findings lints the rule (every key of every
-- tenant-scoped dbchat table includes tenant_id; every foreign key to a
-- tenant-scoped table pairs tenant_id with its tenant column); a clean
-- database returns no rows. It is separate from audit.findings on purpose:
-- it is about distribution, not isolation.
--
-- Populated databases: the registry is filled from the existing providers
-- (a few rows per tenant at most) and the new per-tenant index is built on
-- that same small table; nothing scans a large table.

-- +goose Up
CREATE TABLE dbchat_migrations.issuer_registry (
    issuer      text NOT NULL,
    tenant_id   uuid NOT NULL,
    provider_id uuid NOT NULL,
    -- The old index's name, so a taken issuer fails with the same message
    -- as before (the API's 409, dbchat tenant import's error).
    CONSTRAINT identity_providers_issuer_key PRIMARY KEY (issuer),
    CONSTRAINT issuer_registry_provider_key UNIQUE (tenant_id, provider_id)
);
COMMENT ON TABLE dbchat_migrations.issuer_registry IS
    'Which tenant holds each identity provider issuer (an issuer belongs to one tenant only). Kept by the trigger on dbchat.identity_providers; read by dbchat_ops.identity_provider_by_issuer. Global by design: a Citus reference table.';
REVOKE ALL ON dbchat_migrations.issuer_registry FROM PUBLIC;
GRANT USAGE ON SCHEMA dbchat_migrations TO dbchat_operator;
GRANT SELECT ON dbchat_migrations.issuer_registry TO dbchat_operator;

-- Existing providers, read as dbchat_operator (BYPASSRLS, SELECT on these
-- columns since 00011): the owner running migrations sees no row of a
-- forced-RLS table without a tenant.
GRANT INSERT ON dbchat_migrations.issuer_registry TO dbchat_operator;
SET LOCAL ROLE dbchat_operator;
INSERT INTO dbchat_migrations.issuer_registry (issuer, tenant_id, provider_id)
SELECT issuer, tenant_id, id FROM dbchat.identity_providers;
-- Back to the role migrations run as (not RESET ROLE: that is the
-- privileged session user).
SET LOCAL ROLE dbchat_owner;
REVOKE INSERT ON dbchat_migrations.issuer_registry FROM dbchat_operator;

-- +goose StatementBegin
CREATE FUNCTION dbchat_migrations.sync_issuer_registry() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        -- A taken issuer fails here with unique_violation, as the global
        -- index on identity_providers did.
        INSERT INTO dbchat_migrations.issuer_registry (issuer, tenant_id, provider_id)
        VALUES (NEW.issuer, NEW.tenant_id, NEW.id);
    ELSE
        DELETE FROM dbchat_migrations.issuer_registry
        WHERE tenant_id = OLD.tenant_id AND provider_id = OLD.id;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
REVOKE ALL ON FUNCTION dbchat_migrations.sync_issuer_registry() FROM PUBLIC;
COMMENT ON FUNCTION dbchat_migrations.sync_issuer_registry() IS
    'Trigger on dbchat.identity_providers: keeps dbchat_migrations.issuer_registry (an issuer belongs to one tenant only). No EXECUTE grant: only the trigger runs it.';
-- identity_providers has no UPDATE grant (issuer never changes); the
-- trigger covers the statements that can add or remove an issuer.
CREATE TRIGGER identity_providers_issuer_registry
    AFTER INSERT OR DELETE ON dbchat.identity_providers
    FOR EACH ROW EXECUTE FUNCTION dbchat_migrations.sync_issuer_registry();
-- ALWAYS: `dbchat tenant import` copies platform rows with
-- session_replication_role = replica (foreign keys are checked once all
-- rows are in), which skips ordinary triggers; an imported provider must
-- still claim its issuer, or fail on a taken one.
ALTER TABLE dbchat.identity_providers ENABLE ALWAYS TRIGGER identity_providers_issuer_registry;

-- The per-tenant key, then the global one goes.
ALTER TABLE dbchat.identity_providers
    ADD CONSTRAINT identity_providers_tenant_issuer_key UNIQUE (tenant_id, issuer);
DROP INDEX dbchat.identity_providers_issuer_key;
COMMENT ON TABLE dbchat.identity_providers IS
    'OIDC/JWT issuers whose tokens sign a tenant''s end users in (POST/GET/DELETE /v1/identity-providers, admins only). An issuer belongs to one tenant: dbchat_migrations.issuer_registry holds the global key (00021), this table the per-tenant one.';
COMMENT ON COLUMN dbchat.identity_providers.issuer IS 'The token''s iss, compared exactly; unique across tenants (dbchat_migrations.issuer_registry).';

-- The sign-in lookup: the registry's key names the tenant and provider,
-- then one provider row by its primary key. Same result as 00020's.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dbchat_ops.identity_provider_by_issuer(p_issuer text)
    RETURNS TABLE (tenant_id uuid, id uuid, audience text, jwks_url text, jwks jsonb, user_claim text,
                   email_claim text, role_claim text, admin_values text[], pass_claims text[],
                   authorization_endpoint text, token_endpoint text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.tenant_id, p.id, p.audience, p.jwks_url, p.jwks, p.user_claim,
           p.email_claim, p.role_claim, p.admin_values, p.pass_claims,
           p.authorization_endpoint, p.token_endpoint
    FROM dbchat_migrations.issuer_registry r
    JOIN dbchat.identity_providers p ON p.tenant_id = r.tenant_id AND p.id = r.provider_id
    JOIN dbchat.tenants t ON t.id = r.tenant_id AND t.is_active
    WHERE r.issuer = p_issuer
$$;
-- +goose StatementEnd

-- The lint. Tenant-scoped tables: the tables of schema dbchat with a
-- tenant_id column, and dbchat.tenants, whose tenant column is id. Three
-- checks, one row per offending key:
--   key_without_tenant_id          a primary key, unique or exclusion
--                                  constraint, or unique index, that does
--                                  not include the tenant column
--   foreign_key_without_tenant_id  a foreign key whose columns do not
--                                  include tenant_id
--   foreign_key_not_colocated      a foreign key to a tenant-scoped table
--                                  that does not pair tenant_id with that
--                                  table's tenant column
-- dbchat.tenants' global slug key is the documented exception: tenants is
-- a reference table (global by design), not a distributed one.
CREATE VIEW audit.distribution_key_findings WITH (security_invoker = true) AS
WITH scoped AS (
    SELECT c.oid, format('%I.%I', n.nspname, c.relname) AS qname, c.relname,
           a.attnum AS tattnum, a.attname::text AS tcol
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND NOT a.attisdropped AND a.attnum > 0
     AND a.attname = CASE WHEN c.relname = 'tenants' THEN 'id' ELSE 'tenant_id' END
    WHERE n.nspname = 'dbchat' AND c.relkind IN ('r', 'p')
),
found (lint, table_name, key_name, definition, detail) AS (
    -- Unique indexes (primary keys, unique and exclusion constraints are
    -- enforced by one) and their constraint, if any.
    SELECT 'key_without_tenant_id', t.qname, ic.relname::text,
           coalesce(pg_get_constraintdef(con.oid), pg_get_indexdef(i.indexrelid)),
           format('%s %I does not include %I: Citus cannot enforce it on a table distributed by %3$I, and its check spans tenants',
                  CASE con.contype WHEN 'p' THEN 'primary key' WHEN 'u' THEN 'unique constraint'
                                   WHEN 'x' THEN 'exclusion constraint' ELSE 'unique index' END,
                  ic.relname, t.tcol)
    FROM scoped t
    JOIN pg_catalog.pg_index i ON i.indrelid = t.oid
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = t.oid AND con.contype IN ('p', 'u', 'x')
    WHERE (i.indisunique OR con.contype = 'x')
      AND NOT (t.tattnum = ANY (i.indkey::int2[]))
      AND NOT (t.relname = 'tenants' AND ic.relname = 'tenants_slug_key')
    UNION ALL
    SELECT 'foreign_key_without_tenant_id', t.qname, con.conname::text, pg_get_constraintdef(con.oid),
           format('foreign key %I does not include %I: its check reads rows that may live on another shard', con.conname, t.tcol)
    FROM scoped t
    JOIN pg_catalog.pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
    WHERE NOT (t.tattnum = ANY (con.conkey))
    UNION ALL
    SELECT 'foreign_key_not_colocated', t.qname, con.conname::text, pg_get_constraintdef(con.oid),
           format('foreign key %I references %s without pairing %I with its %I: the two rows need not be on one shard',
                  con.conname, rt.qname, t.tcol, rt.tcol)
    FROM scoped t
    JOIN pg_catalog.pg_constraint con ON con.conrelid = t.oid AND con.contype = 'f'
    JOIN scoped rt ON rt.oid = con.confrelid
    WHERE t.tattnum = ANY (con.conkey)
      AND NOT EXISTS (SELECT FROM generate_subscripts(con.conkey, 1) k
                      WHERE con.conkey[k] = t.tattnum AND con.confkey[k] = rt.tattnum)
)
SELECT lint, table_name, key_name, definition, detail FROM found ORDER BY table_name, key_name, lint;
COMMENT ON VIEW audit.distribution_key_findings IS
    'One row per key of a tenant-scoped dbchat table that would stop it being distributed by tenant_id (Citus): a primary, unique or exclusion key or unique index without the tenant column, a foreign key without tenant_id, or one not pairing tenant_id with the referenced tenant column. Zero rows = ready. docs/SCALING.md.';
GRANT SELECT ON audit.distribution_key_findings TO dbchat_auditor, dbchat_app;

-- +goose Down
DROP VIEW audit.distribution_key_findings;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION dbchat_ops.identity_provider_by_issuer(p_issuer text)
    RETURNS TABLE (tenant_id uuid, id uuid, audience text, jwks_url text, jwks jsonb, user_claim text,
                   email_claim text, role_claim text, admin_values text[], pass_claims text[],
                   authorization_endpoint text, token_endpoint text)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.tenant_id, p.id, p.audience, p.jwks_url, p.jwks, p.user_claim,
           p.email_claim, p.role_claim, p.admin_values, p.pass_claims,
           p.authorization_endpoint, p.token_endpoint
    FROM dbchat.identity_providers p
    JOIN dbchat.tenants t ON t.id = p.tenant_id AND t.is_active
    WHERE p.issuer = p_issuer
$$;
-- +goose StatementEnd
CREATE UNIQUE INDEX identity_providers_issuer_key ON dbchat.identity_providers (issuer);
ALTER TABLE dbchat.identity_providers DROP CONSTRAINT identity_providers_tenant_issuer_key;
COMMENT ON TABLE dbchat.identity_providers IS
    'OIDC/JWT issuers whose tokens sign a tenant''s end users in (POST/GET/DELETE /v1/identity-providers, admins only). An issuer belongs to one tenant (identity_providers_issuer_key is global on purpose).';
COMMENT ON COLUMN dbchat.identity_providers.issuer IS 'The token''s iss, compared exactly; unique across tenants.';
DROP TRIGGER identity_providers_issuer_registry ON dbchat.identity_providers;
DROP FUNCTION dbchat_migrations.sync_issuer_registry();
DROP TABLE dbchat_migrations.issuer_registry;
REVOKE USAGE ON SCHEMA dbchat_migrations FROM dbchat_operator;
