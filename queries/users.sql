-- name: CreateUser :one
INSERT INTO dbchat.users (email, name, role)
VALUES ($1, $2, $3)
RETURNING *;

-- name: GetUser :one
SELECT * FROM dbchat.users WHERE id = $1;

-- name: GetMe :one
-- The tenant and user behind a key, in one statement (one round trip).
SELECT sqlc.embed(t), sqlc.embed(u)
FROM dbchat.users u
JOIN dbchat.tenants t ON t.id = u.tenant_id
WHERE u.id = $1;

-- name: ListUsers :many
SELECT * FROM dbchat.users ORDER BY created_at, id;

-- name: DeleteUser :execrows
-- The user's keys go with it (ON DELETE CASCADE); its tables, training data
-- and history stay, with user_id set to NULL.
DELETE FROM dbchat.users WHERE id = $1;
