-- Conversations and their turns. Every statement runs in a tenant
-- transaction with app.user_id set: the owner_or_admin policy, not these
-- queries, limits a member to its own conversations.

-- name: CreateConversation :one
INSERT INTO dbchat.conversations (model_id, title)
VALUES ($1, $2)
RETURNING *;

-- name: ListConversations :many
-- One page, newest activity first; the keyset bound is always present (the
-- caller passes a far-future position for the first page).
SELECT c.id, c.user_id, m.name AS model, c.title, c.archived, c.created_at, c.last_activity_at,
       (SELECT count(*) FROM dbchat.messages x WHERE x.tenant_id = c.tenant_id AND x.conversation_id = c.id) AS messages
FROM dbchat.conversations c
JOIN dbchat.models m ON m.tenant_id = c.tenant_id AND m.id = c.model_id
WHERE (c.last_activity_at, c.id) < (sqlc.arg(before_at)::timestamptz, sqlc.arg(before_id)::uuid)
  AND (sqlc.narg(archived)::boolean IS NULL OR c.archived = sqlc.narg(archived)::boolean)
ORDER BY c.last_activity_at DESC, c.id DESC
LIMIT sqlc.arg(max_rows)::int;

-- name: GetConversation :one
SELECT c.id, c.user_id, c.model_id, m.name AS model, c.title, c.archived, c.created_at, c.last_activity_at
FROM dbchat.conversations c
JOIN dbchat.models m ON m.tenant_id = c.tenant_id AND m.id = c.model_id
WHERE c.id = $1;

-- name: UpdateConversation :one
UPDATE dbchat.conversations
SET title = coalesce(sqlc.narg(title)::text, title),
    archived = coalesce(sqlc.narg(archived)::boolean, archived)
WHERE id = sqlc.arg(id)
RETURNING id;

-- name: DeleteConversation :execrows
DELETE FROM dbchat.conversations WHERE id = $1;

-- name: TouchConversation :one
-- Starts recording a turn: locks the conversation row, so two turns of one
-- conversation record one after the other (CreateMessage, a later
-- statement, then sees the earlier turn's position).
UPDATE dbchat.conversations
SET last_activity_at = now()
WHERE id = $1
RETURNING user_id, archived;

-- name: ListMessages :many
SELECT id, position, question, resolved_question, sql, history_id, error, created_at
FROM dbchat.messages
WHERE conversation_id = $1
ORDER BY position;

-- name: CreateMessage :one
-- The next position is read by this statement, after TouchConversation's
-- lock: under READ COMMITTED it sees every turn committed before.
INSERT INTO dbchat.messages (conversation_id, user_id, position, question, resolved_question, sql, history_id, error)
VALUES (sqlc.arg(conversation_id), sqlc.arg(user_id),
        (SELECT coalesce(max(x.position), 0) + 1 FROM dbchat.messages x WHERE x.conversation_id = sqlc.arg(conversation_id)),
        sqlc.arg(question), sqlc.arg(resolved_question), sqlc.arg(sql), sqlc.arg(history_id), sqlc.arg(error))
RETURNING id, position, created_at;
