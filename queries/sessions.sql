-- Browser sessions. Every query runs in the tenant transaction of the
-- tenant the token carries (internal/session): the tenant_isolation policy
-- limits it to that tenant.

-- name: CreateSession :one
-- The user is the transaction's (app.user_id), like the key it came from.
INSERT INTO dbchat.sessions (api_key_id, token_hash, user_agent, expires_at, claims, identity_provider_id)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING id, created_at, expires_at;

-- name: AuthenticateSession :one
-- Resolves a token hash to its user in one statement: signed-out, expired
-- or idle sessions, deactivated tenants and users and revoked keys match
-- nothing. A plain read: stale says last_seen_at is over a minute old, and
-- only then does the caller write (TouchSession). ends_at is when the
-- session ends if it stays idle from now on.
SELECT s.id, s.user_id, u.role, s.api_key_id, s.claims,
       (s.last_seen_at < now() - interval '1 minute')::boolean AS stale,
       least(s.expires_at, now() + make_interval(secs => sqlc.arg(idle_seconds)::float8))::timestamptz AS ends_at
FROM dbchat.sessions s
JOIN dbchat.users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
JOIN dbchat.tenants t ON t.id = s.tenant_id
LEFT JOIN dbchat.api_keys k ON k.tenant_id = s.tenant_id AND k.id = s.api_key_id
WHERE s.token_hash = sqlc.arg(token_hash) AND s.revoked_at IS NULL
  AND s.expires_at > now() AND s.last_seen_at > now() - make_interval(secs => sqlc.arg(idle_seconds)::float8)
  AND u.is_active AND t.is_active
  AND (s.api_key_id IS NULL OR (k.id IS NOT NULL AND k.revoked_at IS NULL));

-- name: TouchSession :exec
UPDATE dbchat.sessions SET last_seen_at = now() WHERE id = $1 AND revoked_at IS NULL;

-- name: RevokeSession :execrows
UPDATE dbchat.sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL;
