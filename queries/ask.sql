-- name: ModelStats :one
-- One model's training and usage figures (GET /v1/models/{name}/stats).
-- Figures without data come back as NaN (percentiles) or the epoch
-- (last_trained, when the model has no training data); the Go side turns
-- them into nulls (sqlc cannot infer that aggregates may be NULL).
SELECT
    count(*) FILTER (WHERE d.kind = 'sql')::bigint AS sql_items,
    count(*) FILTER (WHERE d.kind = 'ddl')::bigint AS ddl_items,
    count(*) FILTER (WHERE d.kind = 'documentation')::bigint AS documentation_items,
    coalesce(max(d.created_at), 'epoch')::timestamptz AS last_trained,
    h.questions, h.succeeded, h.failed, h.rejected,
    h.generation_p50_ms, h.generation_p95_ms, h.execution_p50_ms, h.execution_p95_ms
FROM (SELECT count(*)::bigint AS questions,
             count(*) FILTER (WHERE q.status = 'success')::bigint AS succeeded,
             count(*) FILTER (WHERE q.status = 'error')::bigint AS failed,
             count(*) FILTER (WHERE q.status = 'rejected')::bigint AS rejected,
             coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY q.generation_ms), 'NaN')::float8 AS generation_p50_ms,
             coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY q.generation_ms), 'NaN')::float8 AS generation_p95_ms,
             coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY q.execution_ms), 'NaN')::float8 AS execution_p50_ms,
             coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY q.execution_ms), 'NaN')::float8 AS execution_p95_ms
      FROM dbchat.query_history q
      WHERE q.model_id = sqlc.arg(model_id) AND q.question IS NOT NULL) h
LEFT JOIN dbchat.training_data d ON d.model_id = sqlc.arg(model_id)
GROUP BY h.questions, h.succeeded, h.failed, h.rejected,
         h.generation_p50_ms, h.generation_p95_ms, h.execution_p50_ms, h.execution_p95_ms;
