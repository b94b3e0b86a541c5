-- name: CreateQueryHistory :one
INSERT INTO dbchat.query_history (model_id, question, generated_sql, status, error, row_count, generation_ms, execution_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING *;

-- name: ListQueryHistory :many
-- One page of history, newest first, in one statement. status, user_id and
-- model are optional (NULL = no filter); for members the handler always sets
-- user_id. max_rows is the page size plus one (is there a next page?). The
-- keyset and since bounds are always present (the handler passes a far-future
-- position for the first page and a far-past since), never wrapped in
-- coalesce or OR, so both stay index conditions on
-- (tenant_id, created_at DESC, id DESC) in generic plans too.
SELECT h.id, h.user_id, m.name AS model, h.question, h.generated_sql, h.status, h.error,
       h.row_count, h.generation_ms, h.execution_ms, h.created_at
FROM dbchat.query_history h
LEFT JOIN dbchat.models m ON m.tenant_id = h.tenant_id AND m.id = h.model_id
WHERE (h.created_at, h.id) < (sqlc.arg(before_at)::timestamptz, sqlc.arg(before_id)::uuid)
  AND h.created_at >= sqlc.arg(since)::timestamptz
  AND (sqlc.narg(status)::text IS NULL OR h.status = sqlc.narg(status)::text)
  AND (sqlc.narg(user_id)::uuid IS NULL OR h.user_id = sqlc.narg(user_id)::uuid)
  AND (sqlc.narg(model)::text IS NULL OR m.name = sqlc.narg(model)::text)
ORDER BY h.created_at DESC, h.id DESC
LIMIT sqlc.arg(max_rows)::int;

-- name: GetQueryHistory :one
-- One entry; a non-NULL user_id limits it to that user's entries (members).
SELECT h.id, h.user_id, m.name AS model, h.question, h.generated_sql, h.status, h.error,
       h.row_count, h.generation_ms, h.execution_ms, h.created_at
FROM dbchat.query_history h
LEFT JOIN dbchat.models m ON m.tenant_id = h.tenant_id AND m.id = h.model_id
WHERE h.id = sqlc.arg(id)
  AND (sqlc.narg(user_id)::uuid IS NULL OR h.user_id = sqlc.narg(user_id)::uuid);

-- name: ListRecentHistory :many
-- ListQueryHistory without the optional filters, for the common unfiltered
-- page: nothing here depends on which parameters are NULL, so a generic plan
-- walks (tenant_id, created_at DESC, id DESC) as a custom one would.
SELECT h.id, h.user_id, m.name AS model, h.question, h.generated_sql, h.status, h.error,
       h.row_count, h.generation_ms, h.execution_ms, h.created_at
FROM dbchat.query_history h
LEFT JOIN dbchat.models m ON m.tenant_id = h.tenant_id AND m.id = h.model_id
WHERE (h.created_at, h.id) < (sqlc.arg(before_at)::timestamptz, sqlc.arg(before_id)::uuid)
  AND h.created_at >= sqlc.arg(since)::timestamptz
ORDER BY h.created_at DESC, h.id DESC
LIMIT sqlc.arg(max_rows)::int;
