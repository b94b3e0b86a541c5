-- The erasure log: one row per tenant erased by `dbchat tenant erase`, and
-- nothing but the erased tenant's id, the time and who erased it (the
-- operator's name). It is operator bookkeeping, not tenant data, so it lives
-- beside goose's version table in dbchat_migrations rather than in dbchat:
-- the tenant isolation rule (forced RLS + a tenant_isolation policy, every
-- dbchat table seeded by the isolation tests) is about rows a tenant may
-- see, and no tenant may see these (the tenant is gone).
--
-- Operator-only, by two locks: no role is granted anything on it, and RLS is
-- enabled and forced with no policy at all, which denies every row to every
-- role that does not bypass RLS, the owner included. Only the privileged
-- connection `dbchat tenant erase` runs on (DBCHAT_ADMIN_DATABASE_URL) and
-- dbchat_operator (BYPASSRLS) see or write it. tenant_id has no foreign key:
-- the tenant row is deleted in the same transaction.

-- +goose Up
CREATE TABLE dbchat_migrations.erasure_log (
    tenant_id uuid        NOT NULL PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now(),
    operator  text        NOT NULL CHECK (length(operator) BETWEEN 1 AND 200)
);
COMMENT ON TABLE dbchat_migrations.erasure_log IS
    'Tenants erased by `dbchat tenant erase`: id, time, operator only. RLS forced with no policy and no grants: superusers and BYPASSRLS roles only.';
ALTER TABLE dbchat_migrations.erasure_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat_migrations.erasure_log FORCE ROW LEVEL SECURITY;
REVOKE ALL ON dbchat_migrations.erasure_log FROM PUBLIC;

-- +goose Down
DROP TABLE dbchat_migrations.erasure_log;
