-- name: CreateUser :one
INSERT INTO dbchat.users (email, name, role)
VALUES ($1, $2, $3)
RETURNING *;

-- name: GetUser :one
SELECT * FROM dbchat.users WHERE id = $1;
