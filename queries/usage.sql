-- Usage analytics (migration 00018). Every query runs in a tenant
-- transaction: the tenant_isolation policy limits it to one tenant.

-- name: RecordUsage :exec
-- Records one event and adds it to its day's rollup row in the same
-- statement (see 00018 for why). The histograms are one-hot arrays built
-- in Go (internal/usage), '{}' for a stage the request did not run, added
-- bucket by bucket as dbchat.usage_hist_add adds them, but written out:
-- the function (SET search_path, not inlinable) was planned afresh on
-- each of its four calls and cost more than the rest of the statement.
WITH ev AS (
    INSERT INTO dbchat.usage_events (kind, outcome, first_try, history_id, generator, llm_model, llm_calls,
        tokens_in, tokens_out, retrieve_ms, generate_ms, validate_ms, execute_ms,
        rows_returned, rows_imported, empty_result)
    VALUES (sqlc.arg(kind), sqlc.arg(outcome), sqlc.narg(first_try), sqlc.narg(history_id),
        sqlc.arg(generator), sqlc.arg(llm_model), sqlc.arg(llm_calls), sqlc.arg(tokens_in), sqlc.arg(tokens_out),
        sqlc.narg(retrieve_ms), sqlc.narg(generate_ms), sqlc.narg(validate_ms), sqlc.narg(execute_ms),
        sqlc.arg(rows_returned), sqlc.arg(rows_imported), sqlc.arg(empty_result))
    RETURNING created_at, kind, outcome, first_try, generator, llm_model, llm_calls, tokens_in, tokens_out,
        rows_returned, rows_imported, empty_result
)
INSERT INTO dbchat.usage_daily AS d (day, kind, generator, llm_model, requests, answered, refused, failed,
    first_try, empty_results, llm_calls, tokens_in, tokens_out, rows_returned, rows_imported,
    retrieve_hist, generate_hist, validate_hist, execute_hist)
SELECT (ev.created_at AT TIME ZONE 'UTC')::date, ev.kind, ev.generator, ev.llm_model, 1,
    (ev.outcome = 'answered')::int, (ev.outcome = 'refused')::int, (ev.outcome = 'failed')::int,
    coalesce(ev.first_try, false)::int, ev.empty_result::int, ev.llm_calls, ev.tokens_in, ev.tokens_out,
    ev.rows_returned, ev.rows_imported,
    sqlc.arg(retrieve_hist)::int[], sqlc.arg(generate_hist)::int[],
    sqlc.arg(validate_hist)::int[], sqlc.arg(execute_hist)::int[]
FROM ev
ON CONFLICT (tenant_id, day, kind, generator, llm_model) DO UPDATE
SET requests      = d.requests + 1,
    answered      = d.answered + excluded.answered,
    refused       = d.refused + excluded.refused,
    failed        = d.failed + excluded.failed,
    first_try     = d.first_try + excluded.first_try,
    empty_results = d.empty_results + excluded.empty_results,
    llm_calls     = d.llm_calls + excluded.llm_calls,
    tokens_in     = d.tokens_in + excluded.tokens_in,
    tokens_out    = d.tokens_out + excluded.tokens_out,
    rows_returned = d.rows_returned + excluded.rows_returned,
    rows_imported = d.rows_imported + excluded.rows_imported,
    retrieve_hist = (SELECT coalesce(array_agg(coalesce(d.retrieve_hist[i], 0) + coalesce(excluded.retrieve_hist[i], 0) ORDER BY i), '{}')
        FROM generate_series(1, greatest(cardinality(d.retrieve_hist), cardinality(excluded.retrieve_hist))) AS i),
    generate_hist = (SELECT coalesce(array_agg(coalesce(d.generate_hist[i], 0) + coalesce(excluded.generate_hist[i], 0) ORDER BY i), '{}')
        FROM generate_series(1, greatest(cardinality(d.generate_hist), cardinality(excluded.generate_hist))) AS i),
    validate_hist = (SELECT coalesce(array_agg(coalesce(d.validate_hist[i], 0) + coalesce(excluded.validate_hist[i], 0) ORDER BY i), '{}')
        FROM generate_series(1, greatest(cardinality(d.validate_hist), cardinality(excluded.validate_hist))) AS i),
    execute_hist  = (SELECT coalesce(array_agg(coalesce(d.execute_hist[i], 0) + coalesce(excluded.execute_hist[i], 0) ORDER BY i), '{}')
        FROM generate_series(1, greatest(cardinality(d.execute_hist), cardinality(excluded.execute_hist))) AS i);

-- name: UsageDays :many
-- The rollup rows of a range of UTC days, oldest first.
SELECT day, kind, generator, llm_model, requests, answered, refused, failed, first_try, empty_results,
    llm_calls, tokens_in, tokens_out, rows_returned, rows_imported,
    retrieve_hist, generate_hist, validate_hist, execute_hist
FROM dbchat.usage_daily
WHERE day BETWEEN sqlc.arg(from_day)::date AND sqlc.arg(to_day)::date
ORDER BY day, kind, generator, llm_model;

-- name: FeedbackDays :many
-- Feedback given per UTC day of a range, from query_history (one feedback
-- per entry, the latest): up confirms, down says wrong, a correction
-- carries SQL.
SELECT (feedback_at AT TIME ZONE 'UTC')::date AS day,
    count(*) FILTER (WHERE feedback_correct) AS up,
    count(*) FILTER (WHERE NOT feedback_correct) AS down,
    count(*) FILTER (WHERE feedback_sql IS NOT NULL) AS corrections
FROM dbchat.query_history
WHERE feedback_at >= (sqlc.arg(from_day)::date)::timestamp AT TIME ZONE 'UTC'
  AND feedback_at < ((sqlc.arg(to_day)::date + 1)::timestamp AT TIME ZONE 'UTC')
GROUP BY 1
ORDER BY 1;

-- name: TableStorage :many
-- The current size of each of the tenant's data tables (with indexes and
-- TOAST), from the catalog: dbchat_app may read pg_class and call
-- pg_total_relation_size; the tenant's schema is its own (tenant_schema()).
SELECT t.name, pg_catalog.pg_total_relation_size(c.oid)::bigint AS bytes
FROM dbchat.database_tables t
JOIN pg_catalog.pg_namespace n ON n.nspname = dbchat.tenant_schema()
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.name
ORDER BY t.name;

-- name: TrainingRowsPerModel :many
-- Training rows of each of the tenant's models.
SELECT m.name, count(d.id)::bigint AS rows
FROM dbchat.models m
LEFT JOIN dbchat.training_data d ON d.tenant_id = m.tenant_id AND d.model_id = m.id
GROUP BY m.name
ORDER BY m.name;

-- name: FirstAdmin :many
-- The tenant's longest-standing admin: the operator's view reads a
-- tenant's analytics as this admin, since query_history's owner_or_admin
-- policy shows feedback to the tenant's admins only.
SELECT id FROM dbchat.users WHERE role = 'admin' ORDER BY created_at, id LIMIT 1;
