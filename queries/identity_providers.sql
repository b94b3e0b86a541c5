-- name: CreateIdentityProvider :one
INSERT INTO dbchat.identity_providers
    (issuer, audience, jwks_url, jwks, user_claim, email_claim, role_claim, admin_values, pass_claims,
     authorization_endpoint, token_endpoint)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
RETURNING *;

-- name: ListIdentityProviders :many
SELECT * FROM dbchat.identity_providers ORDER BY created_at, id;

-- name: DeleteIdentityProvider :execrows
-- Its users stay, unlinked (ON DELETE SET NULL): they sign in no more
-- through it, and a provider registered again provisions new users.
DELETE FROM dbchat.identity_providers WHERE id = $1;

-- name: IdentityProviderByIssuer :one
-- The sign-in lookup across tenants (00011): one exact issuer, what
-- verification needs and the tenant it signs in to.
SELECT p.tenant_id::uuid AS tenant_id, p.id::uuid AS id, p.audience::text AS audience,
       coalesce(p.jwks_url, '')::text AS jwks_url, p.jwks::jsonb AS jwks, p.user_claim::text AS user_claim,
       p.email_claim::text AS email_claim, p.role_claim::text AS role_claim,
       p.admin_values::text[] AS admin_values, p.pass_claims::text[] AS pass_claims,
       coalesce(p.authorization_endpoint, '')::text AS authorization_endpoint,
       coalesce(p.token_endpoint, '')::text AS token_endpoint
FROM dbchat_ops.identity_provider_by_issuer(sqlc.arg(issuer)::text) p;

-- name: UserBySubject :one
-- The user a provider's subject was provisioned as, in the provider's tenant,
-- while that provider is still registered and the tenant active: a cached
-- provider (see identity.Verifier) is checked again on every sign-in by this
-- one statement. epoch is the tenant's credential epoch in the same
-- snapshot (-1: none), which a server that remembers the sign-in confirms
-- on later requests (migration 00034).
SELECT u.id, u.role, u.is_active,
       coalesce((SELECT e.epoch FROM dbchat.credential_epochs e WHERE e.tenant_id = u.tenant_id), -1)::bigint AS epoch
FROM dbchat.users u
JOIN dbchat.identity_providers p ON p.tenant_id = u.tenant_id AND p.id = u.identity_provider_id
JOIN dbchat.tenants t ON t.id = u.tenant_id
WHERE u.identity_provider_id = $1 AND u.subject = $2 AND t.is_active;

-- name: ProvisionUser :one
-- First sight of a subject: a user just in time. A concurrent first sight
-- of the same subject inserts nothing here and the caller reads the winner.
-- An email another user of the tenant has already gets the fallback (never
-- a link to that user: a provider cannot take over an existing account).
INSERT INTO dbchat.users (email, name, role, identity_provider_id, subject)
SELECT CASE WHEN EXISTS (SELECT FROM dbchat.users u WHERE u.email = sqlc.arg(email)::text)
            THEN sqlc.arg(fallback_email)::text ELSE sqlc.arg(email)::text END,
       sqlc.arg(name)::text, sqlc.arg(role)::text, sqlc.arg(identity_provider_id)::uuid, sqlc.arg(subject)::text
ON CONFLICT (tenant_id, identity_provider_id, subject) DO NOTHING
RETURNING id, role, is_active,
          coalesce((SELECT e.epoch FROM dbchat.credential_epochs e WHERE e.tenant_id = users.tenant_id), -1)::bigint AS epoch;

-- name: SetUserRole :exec
-- The provider's role claim decides: a user it no longer marks admin is a
-- member again on the next sign-in, and the other way round.
UPDATE dbchat.users SET role = $2 WHERE id = $1;
