-- name: CreateQueryHistory :one
INSERT INTO dbchat.query_history (model_id, question, generated_sql, status, error, row_count, generation_ms, execution_ms)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
RETURNING *;
