-- Quotas and rate limits per tenant (internal/limits). Every query runs in
-- the tenant's own transaction: the policies, not a WHERE clause, scope it.
-- A limit is tenants.limits' value for its name when the key is there (JSON
-- null: unlimited) and the configured default (a parameter, NULL for
-- unlimited) when it is not.

-- name: TakeRequestToken :one
-- One request's token from the tenant's bucket, in one statement on the
-- request path (dbchat.take_request_tokens, migration 00025, holds the
-- bucket's arithmetic). A tenant without a rate limit writes nothing and
-- gets rate 0. Two instances taking at once serialise on the tenant's own
-- row only.
SELECT tk.rate::float8 AS rate, tk.burst::float8 AS burst, tk.tokens::float8 AS tokens, tk.allowed::boolean AS allowed
FROM dbchat.take_request_tokens(sqlc.narg(default_rate)::float8, sqlc.narg(default_burst)::float8, 1) tk;

-- name: ConsumeQuota :one
-- Adds n to a periodic quota's use in the current UTC period (period is
-- 'day' or 'month'), unless the sum would pass the limit: then nothing
-- changes and ok is false. used is the use after (or, refused, before);
-- quota_limit is -1 for unlimited.
WITH lim AS (
    SELECT CASE WHEN t.limits ? sqlc.arg(quota)::text THEN (t.limits ->> sqlc.arg(quota)::text)::bigint
                ELSE sqlc.narg(default_limit)::bigint END AS v,
           date_trunc(sqlc.arg(period)::text, now() AT TIME ZONE 'UTC')::date AS period
    FROM dbchat.tenants t
), up AS (
    INSERT INTO dbchat.quota_usage AS u (quota, period, used)
    SELECT sqlc.arg(quota)::text, lim.period, sqlc.arg(n)::bigint FROM lim
    WHERE lim.v IS NULL OR sqlc.arg(n)::bigint <= lim.v
    ON CONFLICT (tenant_id, quota, period) DO UPDATE SET used = u.used + excluded.used
    WHERE u.tenant_id = excluded.tenant_id
      AND (SELECT lim.v IS NULL OR u.used + excluded.used <= lim.v FROM lim)
    RETURNING u.used
)
SELECT (EXISTS (SELECT FROM up))::boolean AS ok, coalesce(lim.v, -1)::bigint AS quota_limit,
       coalesce((SELECT used FROM up),
                (SELECT q.used FROM dbchat.quota_usage q WHERE q.quota = sqlc.arg(quota)::text AND q.period = lim.period),
                0)::bigint AS used
FROM lim;

-- name: QuotaUsed :one
-- A periodic quota's limit and use in the current UTC period.
WITH lim AS (
    SELECT CASE WHEN t.limits ? sqlc.arg(quota)::text THEN (t.limits ->> sqlc.arg(quota)::text)::bigint
                ELSE sqlc.narg(default_limit)::bigint END AS v,
           date_trunc(sqlc.arg(period)::text, now() AT TIME ZONE 'UTC')::date AS period
    FROM dbchat.tenants t
)
SELECT coalesce(lim.v, -1)::bigint AS quota_limit,
       coalesce((SELECT q.used FROM dbchat.quota_usage q WHERE q.quota = sqlc.arg(quota)::text AND q.period = lim.period), 0)::bigint AS used
FROM lim;

-- name: TenantLimits :one
-- The tenant's stored limits (keys absent take the configured defaults).
SELECT limits FROM dbchat.tenants LIMIT 1;

-- name: SetTenantLimits :one
-- Merges set into the stored limits and removes the names in unset (back to
-- the configured default). Runs as the tenant being changed (operator).
UPDATE dbchat.tenants
SET limits = (limits || sqlc.arg(set)::jsonb) - sqlc.arg(unset)::text[], updated_at = now()
WHERE id = sqlc.arg(id)
RETURNING *;

-- name: TenantStorageBytes :one
-- Bytes on disk of the tenant's data tables: every table of its schema
-- t_<id>, with TOAST and indexes, as of this transaction's writes.
SELECT coalesce(sum(pg_catalog.pg_total_relation_size(c.oid)), 0)::bigint AS bytes
FROM pg_catalog.pg_class c
WHERE c.relkind = 'r'
  AND c.relnamespace = to_regnamespace('t_' || replace(current_setting('app.tenant_id'), '-', ''))::oid;

-- name: TrainingRows :one
-- The tenant's training rows, every model's.
SELECT count(*) AS rows FROM dbchat.training_data;

-- name: AddQuotaUsage :exec
-- Adds n to a periodic quota's use whatever its limit: for use that has
-- already happened (an LLM call's tokens); the next request is refused.
INSERT INTO dbchat.quota_usage AS u (quota, period, used)
VALUES (sqlc.arg(quota)::text, date_trunc(sqlc.arg(period)::text, now() AT TIME ZONE 'UTC')::date, sqlc.arg(n)::bigint)
ON CONFLICT (tenant_id, quota, period) DO UPDATE SET used = u.used + excluded.used
WHERE u.tenant_id = excluded.tenant_id;

-- name: AuthenticateKeyTakeToken :one
-- AuthenticateKey (queries/api_keys.sql) and TakeRequestToken in one
-- statement, so that checking a tenant's rate costs an API key request no
-- round trip more. The token is taken only when the key matched (the
-- function is called per key row found): a forged key naming a tenant
-- spends none of its requests (no row, 401).
WITH k AS (
    SELECT a.id AS key_id, a.user_id, u.role,
           (a.last_used_at IS NULL OR a.last_used_at < now() - interval '1 minute')::boolean AS stale,
           coalesce((SELECT e.epoch FROM dbchat.credential_epochs e WHERE e.tenant_id = a.tenant_id), -1)::bigint AS epoch
    FROM dbchat.api_keys a
    JOIN dbchat.users u ON u.tenant_id = a.tenant_id AND u.id = a.user_id
    JOIN dbchat.tenants t ON t.id = a.tenant_id
    WHERE a.key_hash = sqlc.arg(key_hash) AND a.revoked_at IS NULL AND u.is_active AND t.is_active
)
SELECT k.key_id, k.user_id, k.role, k.stale, k.epoch,
       tk.rate::float8 AS rate, tk.burst::float8 AS burst, tk.tokens::float8 AS tokens, tk.allowed::boolean AS allowed
FROM k CROSS JOIN LATERAL dbchat.take_request_tokens(sqlc.narg(default_rate)::float8, sqlc.narg(default_burst)::float8,
                                                     (k.key_id IS NOT NULL)::int) tk;
