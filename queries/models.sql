-- name: CreateModel :one
INSERT INTO dbchat.models (name, llm_model, description)
VALUES ($1, $2, $3)
RETURNING *;

-- name: GetModelByName :one
SELECT * FROM dbchat.models WHERE name = $1;
