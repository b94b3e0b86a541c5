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

-- name: ConversationForTurn :many
-- What a new turn needs, in one statement: the conversation (one row even
-- without turns) and its latest answered turns, oldest first. No row: not
-- found (or another member's, which the policy hides alike).
SELECT c.user_id, m.name AS model, m.id AS model_id, c.archived, coalesce(x.resolved_question, '') AS resolved_question, x.sql
FROM dbchat.conversations c
JOIN dbchat.models m ON m.tenant_id = c.tenant_id AND m.id = c.model_id
LEFT JOIN LATERAL (
    SELECT y.position, y.resolved_question, y.sql FROM dbchat.messages y
    WHERE y.tenant_id = c.tenant_id AND y.conversation_id = c.id AND y.sql IS NOT NULL AND y.error IS NULL
    ORDER BY y.position DESC
    LIMIT sqlc.arg(turns)::int
) x ON true
WHERE c.id = sqlc.arg(id)
ORDER BY x.position;

-- name: RecordTurn :one
-- Records a turn in one statement: touches the conversation (unless
-- archived: no row) and inserts the turn at the next position. Two turns
-- recorded at once can read the same next position (the statement's
-- snapshot predates the other's commit): the loser fails on
-- messages_position_key and is retried by the caller.
WITH c AS (
    UPDATE dbchat.conversations u
    SET last_activity_at = now()
    WHERE u.id = sqlc.arg(conversation_id) AND NOT u.archived
    RETURNING u.tenant_id, u.id, u.user_id
)
INSERT INTO dbchat.messages (conversation_id, user_id, position, question, resolved_question, sql, history_id, error)
SELECT c.id, c.user_id,
       (SELECT coalesce(max(x.position), 0) + 1 FROM dbchat.messages x WHERE x.tenant_id = c.tenant_id AND x.conversation_id = c.id),
       sqlc.arg(question), sqlc.arg(resolved_question), sqlc.narg(sql), sqlc.narg(history_id), sqlc.narg(error)
FROM c
RETURNING id, position, created_at;

-- name: ListMessages :many
SELECT id, position, question, resolved_question, sql, history_id, error, created_at
FROM dbchat.messages
WHERE conversation_id = $1
ORDER BY position;

-- name: CreateMessage :one
-- A turn written directly (seeds and the audit probe; the service uses
-- RecordTurn).
INSERT INTO dbchat.messages (conversation_id, user_id, position, question, resolved_question, sql, history_id, error)
VALUES (sqlc.arg(conversation_id), sqlc.arg(user_id),
        (SELECT coalesce(max(x.position), 0) + 1 FROM dbchat.messages x WHERE x.conversation_id = sqlc.arg(conversation_id)),
        sqlc.arg(question), sqlc.arg(resolved_question), sqlc.arg(sql), sqlc.arg(history_id), sqlc.arg(error))
RETURNING id, position, created_at;
