-- Every query here runs inside a tenant transaction (internal/tenant): the
-- tenant_isolation policy, not a WHERE clause, limits it to one tenant.

-- name: CreateTenant :one
-- The operator's narrow path (see dbchat.create_tenant); afterwards the
-- transaction's tenant is the new tenant.
SELECT dbchat.create_tenant(sqlc.arg(name), sqlc.arg(slug))::uuid AS id;

-- name: CurrentTenant :one
SELECT * FROM dbchat.tenants LIMIT 1;

-- name: SetTenantActive :execrows
UPDATE dbchat.tenants SET is_active = $2, updated_at = now() WHERE id = $1;
