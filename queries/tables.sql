-- name: ListTables :many
SELECT t.id, t.name, t.description, t.is_active, t.user_id, t.created_at, t.updated_at,
       count(c.id)::int AS column_count
FROM dbchat.database_tables t
LEFT JOIN dbchat.database_columns c ON c.tenant_id = t.tenant_id AND c.table_id = t.id
GROUP BY t.tenant_id, t.id
ORDER BY t.name;

-- name: CreateTable :one
INSERT INTO dbchat.database_tables (name, description)
VALUES ($1, $2)
RETURNING *;

-- name: CreateColumn :one
INSERT INTO dbchat.database_columns (table_id, name, data_type, description, is_nullable, position)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING *;
