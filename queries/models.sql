-- name: CreateModel :one
INSERT INTO dbchat.models (name, llm_model, description)
VALUES ($1, $2, $3)
RETURNING *;
