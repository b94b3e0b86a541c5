-- name: CreateAPIKey :one
INSERT INTO dbchat.api_keys (user_id, name, prefix, key_hash)
VALUES ($1, $2, $3, $4)
RETURNING id, tenant_id, user_id, name, prefix, created_at;

-- name: AuthenticateKey :one
-- Resolves a key hash to its user within the transaction's tenant (the key
-- names its tenant; the policy does the rest). Deactivated tenants and users
-- and revoked keys match nothing. A plain read: stale says last_used_at is
-- over a minute old, and only then does the caller write (TouchAPIKey), so
-- requests do not turn into a write each. epoch is the tenant's credential
-- epoch in the same snapshot (-1: none), which a server that remembers the
-- key confirms on later requests (migration 00034).
SELECT a.id AS key_id, a.user_id, u.role,
       (a.last_used_at IS NULL OR a.last_used_at < now() - interval '1 minute')::boolean AS stale,
       coalesce((SELECT e.epoch FROM dbchat.credential_epochs e WHERE e.tenant_id = a.tenant_id), -1)::bigint AS epoch
FROM dbchat.api_keys a
JOIN dbchat.users u ON u.tenant_id = a.tenant_id AND u.id = a.user_id
JOIN dbchat.tenants t ON t.id = a.tenant_id
WHERE a.key_hash = $1 AND a.revoked_at IS NULL AND u.is_active AND t.is_active;

-- name: TouchAPIKey :exec
UPDATE dbchat.api_keys SET last_used_at = now() WHERE id = $1;

-- name: RevokeAPIKey :execrows
UPDATE dbchat.api_keys SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL;

-- name: ListAPIKeys :many
-- Never the hash. A NULL user_id lists every key of the tenant.
SELECT id, user_id, name, prefix, created_at, last_used_at, revoked_at
FROM dbchat.api_keys
WHERE sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id)::uuid
ORDER BY created_at, id;

-- name: RevokeKey :execrows
-- Idempotent: an already revoked key keeps its first revoked_at but still
-- counts as found. A non-NULL user_id limits it to that user's keys.
UPDATE dbchat.api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE id = sqlc.arg(id) AND (sqlc.narg(user_id)::uuid IS NULL OR user_id = sqlc.narg(user_id)::uuid);
