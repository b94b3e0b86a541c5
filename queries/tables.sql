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
INSERT INTO dbchat.database_columns (table_id, name, data_type, description, is_nullable, position, restricted)
VALUES ($1, $2, $3, $4, $5, $6, $7)
RETURNING *;

-- name: GetTable :one
SELECT * FROM dbchat.database_tables WHERE id = $1;

-- name: ListColumns :many
SELECT * FROM dbchat.database_columns WHERE table_id = $1 ORDER BY position;

-- name: UpdateTable :one
UPDATE dbchat.database_tables
SET description = coalesce(sqlc.narg(description), description),
    is_active   = coalesce(sqlc.narg(is_active), is_active),
    updated_at  = now()
WHERE id = sqlc.arg(id)
RETURNING *;

-- name: DeleteTable :execrows
DELETE FROM dbchat.database_tables WHERE id = $1;

-- name: NextColumnPosition :one
SELECT (coalesce(max(position), 0) + 1)::int AS position FROM dbchat.database_columns WHERE table_id = $1;

-- name: UpdateColumnDescription :one
UPDATE dbchat.database_columns SET description = $3
WHERE table_id = $1 AND id = $2
RETURNING *;

-- name: GetColumn :one
SELECT * FROM dbchat.database_columns WHERE table_id = $1 AND id = $2;

-- name: SetColumnRestricted :one
-- Column masks: the flag and the members' role's grants, in one step
-- (a SECURITY DEFINER function; see db/migrations/00015).
SELECT dbchat.set_column_restricted(sqlc.arg(table_id)::uuid, sqlc.arg(column_id)::uuid, sqlc.arg(restricted)::boolean)::boolean AS found;

-- name: GrantMemberColumns :exec
-- The members' role reads a data table's unrestricted columns only; a new
-- table or column is unreadable to members until this runs.
SELECT dbchat.grant_member_columns(sqlc.arg(table_id)::uuid);

-- name: MemberReadableColumns :many
-- The columns of a data table the tenant's members' role may SELECT, as
-- PostgreSQL's grants say (the preview shows members these only).
SELECT c.name::text FROM dbchat.database_columns c
WHERE c.table_id = sqlc.arg(table_id)::uuid
  AND has_column_privilege(sqlc.arg(member_role)::text, sqlc.arg(relation)::text, c.name, 'SELECT')
ORDER BY c.position;

-- name: CreateDataTable :one
-- The one DDL path (a SECURITY DEFINER function; see db/migrations).
SELECT dbchat.create_data_table(sqlc.arg(name)::text, sqlc.arg(columns)::text::jsonb)::text AS schema_name;

-- name: AddDataColumn :exec
SELECT dbchat.add_data_column(sqlc.arg(table_name)::text, sqlc.arg(column_name)::text, sqlc.arg(data_type)::text, sqlc.arg(nullable)::boolean);

-- name: DropDataTable :exec
SELECT dbchat.drop_data_table(sqlc.arg(name)::text);

-- name: ListTableColumns :many
-- Each table with its column names, for the SQL sandbox's parser policy.
SELECT t.name, coalesce(array_agg(c.name ORDER BY c.position) FILTER (WHERE c.name IS NOT NULL), '{}')::text[] AS columns
FROM dbchat.database_tables t
LEFT JOIN dbchat.database_columns c ON c.tenant_id = t.tenant_id AND c.table_id = t.id
GROUP BY t.tenant_id, t.id
ORDER BY t.name;
