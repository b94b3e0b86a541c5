-- Usage analytics (issue 17 §1). Every request that matters (a question,
-- a conversation turn, a /v1/sql statement, a row import, a training write)
-- leaves one row in usage_events, and the same statement adds it to the
-- tenant's row of usage_daily for that UTC day, kind, generator and LLM
-- model. GET /v1/analytics reads usage_daily only, so a report over a year
-- reads at most a few thousand rollup rows however many millions of events
-- lie behind them.
--
-- Why the rollup is maintained in the recording statement (a data-modifying
-- CTE: INSERT the event, then INSERT … ON CONFLICT DO UPDATE the day's row)
-- rather than by a trigger or a periodic job: it is exact and current at
-- every commit, there is no job to schedule, watch or catch up after an
-- outage, and the whole record is one round trip. The price is one more row
-- updated per request and a row lock on the day's rollup row until the
-- recording transaction commits; it is taken as the last statement of the
-- work's transaction (or in a one-statement transaction of its own), so the
-- lock is held for one commit, not for the work.
--
-- What is not copied: the question and SQL text stay in query_history
-- (history_id links an event to its entry), and feedback (up, down,
-- corrections) is counted from query_history's feedback columns, which
-- already hold it, through the index below.
--
-- Latencies: percentiles cannot be merged from daily percentiles, so each
-- rollup row keeps, per stage (retrieve, generate, validate, execute), a
-- histogram of counts over fixed log-spaced buckets chosen in Go
-- (internal/usage: bucket 1 is under 1 ms, bucket k covers
-- [2^((k-2)/4), 2^((k-1)/4)) ms, the last one is open). Histograms add up
-- exactly across days and tenants; a p50/p95 read from them is the upper
-- bound of the bucket holding that rank, at most 19% (2^(1/4)) above the
-- true value and never below it.
--
-- Both tables follow the isolation rule: tenant_id first in every key,
-- ENABLE + FORCE ROW LEVEL SECURITY, the tenant_isolation policy.

-- +goose Up
CREATE TABLE dbchat.usage_events (
    tenant_id     uuid        NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                              REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    created_at    timestamptz NOT NULL DEFAULT now(),
    user_id       uuid        DEFAULT nullif(current_setting('app.user_id', true), '')::uuid,
    kind          text        NOT NULL CHECK (kind IN ('ask', 'conversation', 'sql', 'import', 'training')),
    outcome       text        NOT NULL CHECK (outcome IN ('answered', 'refused', 'failed')),
    first_try     boolean,
    history_id    uuid,
    generator     text        NOT NULL DEFAULT '' CHECK (length(generator) <= 200),
    llm_model     text        NOT NULL DEFAULT '' CHECK (length(llm_model) <= 200),
    llm_calls     integer     NOT NULL DEFAULT 0 CHECK (llm_calls >= 0),
    tokens_in     bigint      NOT NULL DEFAULT 0 CHECK (tokens_in >= 0),
    tokens_out    bigint      NOT NULL DEFAULT 0 CHECK (tokens_out >= 0),
    retrieve_ms   double precision,
    generate_ms   double precision,
    validate_ms   double precision,
    execute_ms    double precision,
    rows_returned bigint      NOT NULL DEFAULT 0 CHECK (rows_returned >= 0),
    rows_imported bigint      NOT NULL DEFAULT 0 CHECK (rows_imported >= 0),
    empty_result  boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES dbchat.users (tenant_id, id) ON DELETE SET NULL (user_id),
    FOREIGN KEY (tenant_id, history_id) REFERENCES dbchat.query_history (tenant_id, id) ON DELETE SET NULL (history_id)
);
CREATE INDEX usage_events_tenant_created_idx ON dbchat.usage_events (tenant_id, created_at);
-- The foreign keys' referencing side, so deleting a user or history entry
-- does not scan every event.
CREATE INDEX usage_events_tenant_user_idx ON dbchat.usage_events (tenant_id, user_id) WHERE user_id IS NOT NULL;
CREATE INDEX usage_events_tenant_history_idx ON dbchat.usage_events (tenant_id, history_id) WHERE history_id IS NOT NULL;
COMMENT ON TABLE dbchat.usage_events IS
    'One row per request that matters (ask, conversation turn, /v1/sql, row import, training write): outcome, stage timings, LLM calls and tokens, rows. Rolled up into usage_daily by the same statement.';
COMMENT ON COLUMN dbchat.usage_events.first_try IS
    'Questions: the generated SQL ran without a correction round; /v1/sql: the statement ran. NULL for the other kinds.';
COMMENT ON COLUMN dbchat.usage_events.validate_ms IS
    'Time in the sandbox around the statement (parse, allowlist, receipt, history record); execute_ms is the statement itself.';

CREATE TABLE dbchat.usage_daily (
    tenant_id     uuid    NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                          REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    day           date    NOT NULL,
    kind          text    NOT NULL CHECK (kind IN ('ask', 'conversation', 'sql', 'import', 'training')),
    generator     text    NOT NULL DEFAULT '',
    llm_model     text    NOT NULL DEFAULT '',
    requests      bigint  NOT NULL DEFAULT 0,
    answered      bigint  NOT NULL DEFAULT 0,
    refused       bigint  NOT NULL DEFAULT 0,
    failed        bigint  NOT NULL DEFAULT 0,
    first_try     bigint  NOT NULL DEFAULT 0,
    empty_results bigint  NOT NULL DEFAULT 0,
    llm_calls     bigint  NOT NULL DEFAULT 0,
    tokens_in     bigint  NOT NULL DEFAULT 0,
    tokens_out    bigint  NOT NULL DEFAULT 0,
    rows_returned bigint  NOT NULL DEFAULT 0,
    rows_imported bigint  NOT NULL DEFAULT 0,
    retrieve_hist integer[] NOT NULL DEFAULT '{}',
    generate_hist integer[] NOT NULL DEFAULT '{}',
    validate_hist integer[] NOT NULL DEFAULT '{}',
    execute_hist  integer[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (tenant_id, day, kind, generator, llm_model)
);
COMMENT ON TABLE dbchat.usage_daily IS
    'Per tenant, UTC day, kind, generator and LLM model: usage_events summed, with per-stage latency histograms (fixed buckets, see internal/usage). Maintained by the statement that records each event.';

-- The feedback counts read query_history by feedback time.
CREATE INDEX query_history_tenant_feedback_at_idx ON dbchat.query_history (tenant_id, feedback_at)
    WHERE feedback_at IS NOT NULL;

-- Element-wise sum of two histograms (the shorter padded with zeros).
-- +goose StatementBegin
CREATE FUNCTION dbchat.usage_hist_add(a integer[], b integer[]) RETURNS integer[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i), '{}')
    FROM unnest(a, b) WITH ORDINALITY AS u (x, y, i)
$$;
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.usage_hist_add(integer[], integer[]) IS
    'Adds two latency histograms bucket by bucket (usage_daily). EXECUTE: dbchat_app only.';
REVOKE ALL ON FUNCTION dbchat.usage_hist_add(integer[], integer[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dbchat.usage_hist_add(integer[], integer[]) TO dbchat_app;

ALTER TABLE dbchat.usage_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.usage_events FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.usage_events
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.usage_events IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

ALTER TABLE dbchat.usage_daily ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.usage_daily FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.usage_daily
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.usage_daily IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

-- Events are written and read, never changed (DELETE for retention);
-- rollup rows are upserted.
GRANT SELECT, INSERT, DELETE ON dbchat.usage_events TO dbchat_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON dbchat.usage_daily TO dbchat_app;

-- +goose Down
DROP INDEX dbchat.query_history_tenant_feedback_at_idx;
DROP TABLE dbchat.usage_daily;
DROP TABLE dbchat.usage_events;
DROP FUNCTION dbchat.usage_hist_add(integer[], integer[]);
