-- Verified training pairs and evaluation runs (internal/evaluate, issue 17
-- §3). Every query runs in a tenant transaction: the tenant_isolation
-- policy, not a WHERE clause, limits it to one tenant.

-- name: SetTrainingVerified :one
-- Verifies (keeping the first verification's time and author) or unverifies
-- a pair of the model; verified_by is the transaction's user. Only SQL
-- pairs match, so another kind answers like an unknown id.
UPDATE dbchat.training_data
SET verified_at = CASE WHEN sqlc.arg(verified)::boolean THEN coalesce(verified_at, now()) END,
    verified_by = CASE WHEN sqlc.arg(verified)::boolean
                       THEN CASE WHEN verified_at IS NULL THEN nullif(current_setting('app.user_id', true), '')::uuid ELSE verified_by END
                  END
WHERE model_id = sqlc.arg(model_id) AND id = sqlc.arg(id) AND kind = 'sql'
RETURNING id, verified_by, verified_at;

-- name: SetTrainingVerifiedMany :execrows
-- Verifies pairs just written (training data posted with "verified": true).
UPDATE dbchat.training_data
SET verified_at = now(), verified_by = nullif(current_setting('app.user_id', true), '')::uuid
WHERE model_id = sqlc.arg(model_id) AND id = ANY (sqlc.arg(ids)::uuid[]) AND kind = 'sql';

-- name: TrainingVerification :many
-- The verification of some rows of a model (listing training data).
SELECT id, verified_by, verified_at
FROM dbchat.training_data
WHERE model_id = sqlc.arg(model_id) AND id = ANY (sqlc.arg(ids)::uuid[]) AND verified_at IS NOT NULL;

-- name: ListVerifiedPairs :many
-- A model's verified pairs in the order they were written, at most
-- max_rows (the caller asks for one more than its cap to notice a larger
-- set).
SELECT id, question, content
FROM dbchat.training_data
WHERE model_id = sqlc.arg(model_id) AND verified_at IS NOT NULL AND kind = 'sql'
ORDER BY created_at, id
LIMIT sqlc.arg(max_rows)::int;

-- name: CreateEvaluation :one
INSERT INTO dbchat.evaluations (model_id, generator, llm_model, embedder, pairs, exact_correct, subset_correct,
                                wrong, refused, errors, tokens_in, tokens_out, duration_ms, canary)
VALUES (sqlc.arg(model_id), sqlc.arg(generator), sqlc.arg(llm_model), sqlc.arg(embedder), sqlc.arg(pairs),
        sqlc.arg(exact_correct), sqlc.arg(subset_correct), sqlc.arg(wrong), sqlc.arg(refused), sqlc.arg(errors),
        sqlc.narg(tokens_in), sqlc.narg(tokens_out), sqlc.arg(duration_ms), sqlc.arg(canary))
RETURNING id, user_id, created_at;

-- name: InsertEvaluationResults :exec
-- A run's per-question outcomes; the arrays are parallel, an empty
-- generated SQL or error is NULL.
INSERT INTO dbchat.evaluation_results (evaluation_id, position, training_id, question, gold_sql, generated_sql,
                                       outcome, exact_match, subset_match, error, latency_ms)
SELECT sqlc.arg(evaluation_id)::uuid, u.position, u.training_id, u.question, u.gold_sql, nullif(u.generated_sql, ''),
       u.outcome, u.exact_match, u.subset_match, nullif(u.error, ''), u.latency_ms
FROM (SELECT unnest(sqlc.arg(positions)::int[]) AS position, unnest(sqlc.arg(training_ids)::uuid[]) AS training_id,
             unnest(sqlc.arg(questions)::text[]) AS question, unnest(sqlc.arg(gold_sqls)::text[]) AS gold_sql,
             unnest(sqlc.arg(generated_sqls)::text[]) AS generated_sql, unnest(sqlc.arg(outcomes)::text[]) AS outcome,
             unnest(sqlc.arg(exact_matches)::boolean[]) AS exact_match, unnest(sqlc.arg(subset_matches)::boolean[]) AS subset_match,
             unnest(sqlc.arg(errors)::text[]) AS error, unnest(sqlc.arg(latencies_ms)::float8[]) AS latency_ms) u;

-- name: ListEvaluations :many
-- A model's runs, newest first (the trend).
SELECT e.id, e.model_id, e.user_id, e.generator, e.llm_model, e.embedder, e.pairs, e.exact_correct,
       e.subset_correct, e.wrong, e.refused, e.errors, e.tokens_in, e.tokens_out, e.duration_ms, e.canary, e.created_at
FROM dbchat.evaluations e
WHERE e.model_id = sqlc.arg(model_id)
ORDER BY e.created_at DESC, e.id DESC
LIMIT sqlc.arg(max_rows)::int;

-- name: GetEvaluation :one
SELECT e.id, e.model_id, e.user_id, e.generator, e.llm_model, e.embedder, e.pairs, e.exact_correct,
       e.subset_correct, e.wrong, e.refused, e.errors, e.tokens_in, e.tokens_out, e.duration_ms, e.canary, e.created_at
FROM dbchat.evaluations e
WHERE e.model_id = sqlc.arg(model_id) AND e.id = sqlc.arg(id);

-- name: ListEvaluationResults :many
SELECT position, training_id, question, gold_sql, generated_sql, outcome, exact_match, subset_match, error, latency_ms
FROM dbchat.evaluation_results
WHERE evaluation_id = sqlc.arg(evaluation_id)
ORDER BY position;
