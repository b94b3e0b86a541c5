-- Quotas and rate limits per tenant (issue 17 §2).
--
-- Limits: dbchat.tenants.limits, a JSON object the operator sets
-- (PATCH /v1/tenants/{id} {"limits": {...}}). A key tells the three cases
-- apart: absent means "the default from configuration"
-- (DBCHAT_DEFAULT_<NAME>), JSON null means "unlimited", a number is the
-- limit. It lives on the tenant's row so that dbchat_ops.list_tenants()
-- (SETOF dbchat.tenants) shows it to the operator with no new cross-tenant
-- function, and GET /v1/tenant reads it under the usual policy.
--
-- State: the counters live in PostgreSQL, so a limit holds across every
-- `dbchat serve` instance on the database with no other service. Each
-- tenant has rows of its own (tenant_id first in every key), so a flooding
-- tenant contends on its own rows only:
--
--   rate_buckets  a token bucket per tenant, taken by one INSERT … ON
--                 CONFLICT DO UPDATE per request (queries/limits.sql).
--                 UNLOGGED: no WAL, so the per-request write does not wait
--                 for a WAL flush; after a crash the table is empty and every
--                 bucket starts full, which only forgives a second's worth of
--                 requests. fillfactor 50 keeps the updates HOT.
--   quota_usage   what a tenant used per period (questions per UTC day, LLM
--                 tokens per UTC month); logged, since a crash must not give
--                 a tenant its day's questions back.

-- +goose Up
ALTER TABLE dbchat.tenants ADD COLUMN limits jsonb NOT NULL DEFAULT '{}'
    CONSTRAINT tenants_limits_object CHECK (jsonb_typeof(limits) = 'object')
    CONSTRAINT tenants_limits_known CHECK (limits - ARRAY['requests_per_second', 'burst', 'questions_per_day',
        'llm_tokens_per_month', 'storage_bytes', 'rows_per_import', 'training_rows'] = '{}'::jsonb)
    CONSTRAINT tenants_limits_values CHECK (NOT jsonb_path_exists(limits,
        '$.* ? (@.type() != "null" && (@.type() != "number" || @ < 0))'));
COMMENT ON COLUMN dbchat.tenants.limits IS
    'The operator''s limits for this tenant: a key absent takes the default from configuration (DBCHAT_DEFAULT_<NAME>), null is unlimited, a number is the limit. Keys: requests_per_second, burst, questions_per_day, llm_tokens_per_month, storage_bytes, rows_per_import, training_rows.';
GRANT UPDATE (limits) ON dbchat.tenants TO dbchat_app;

CREATE UNLOGGED TABLE dbchat.rate_buckets (
    tenant_id uuid             NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                               REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    tokens    double precision NOT NULL,
    rate      double precision NOT NULL CHECK (rate > 0),
    burst     double precision NOT NULL CHECK (burst >= 1),
    allowed   boolean          NOT NULL,
    at        timestamptz      NOT NULL,
    PRIMARY KEY (tenant_id)
) WITH (fillfactor = 50);
COMMENT ON TABLE dbchat.rate_buckets IS
    'A token bucket per tenant (requests_per_second, burst), shared by every dbchat serve instance: tokens left at "at", the rate and burst it was last taken with, and whether the last request got a token. Unlogged: lost on a crash, when every bucket starts full again.';

CREATE TABLE dbchat.quota_usage (
    tenant_id uuid   NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                     REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    quota     text   NOT NULL CHECK (quota IN ('questions_per_day', 'llm_tokens_per_month')),
    period    date   NOT NULL,
    used      bigint NOT NULL CHECK (used >= 0),
    PRIMARY KEY (tenant_id, quota, period)
);
COMMENT ON TABLE dbchat.quota_usage IS
    'What a tenant used of a periodic quota: questions per UTC day (period = the day), LLM tokens per UTC month (period = its first day).';

ALTER TABLE dbchat.rate_buckets ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.rate_buckets FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.rate_buckets
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.rate_buckets IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

ALTER TABLE dbchat.quota_usage ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.quota_usage FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.quota_usage
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.quota_usage IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

GRANT SELECT, INSERT, UPDATE ON dbchat.rate_buckets, dbchat.quota_usage TO dbchat_app;

-- +goose Down
DROP TABLE dbchat.quota_usage;
DROP TABLE dbchat.rate_buckets;
REVOKE UPDATE (limits) ON dbchat.tenants FROM dbchat_app;
ALTER TABLE dbchat.tenants DROP COLUMN limits;
