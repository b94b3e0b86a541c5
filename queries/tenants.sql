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

-- name: ListTenants :many
-- The one cross-tenant read (operator only): a SECURITY DEFINER function
-- owned by dbchat_operator, the only role that bypasses the policy.
SELECT * FROM dbchat_ops.list_tenants() ORDER BY created_at, id;

-- name: UpdateTenant :one
-- Runs in a transaction whose tenant is the one being changed, so the policy
-- admits exactly that row.
UPDATE dbchat.tenants
SET name       = coalesce(sqlc.narg(name), name),
    is_active  = coalesce(sqlc.narg(is_active), is_active),
    updated_at = now()
WHERE id = sqlc.arg(id)
RETURNING *;

-- name: SetLLMDataAccess :one
-- A tenant admin's choice (PATCH /v1/tenant), on its own tenant's row.
UPDATE dbchat.tenants SET llm_data_access = $1, updated_at = now()
WHERE id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)
RETURNING *;

-- name: LLMDataAccess :one
SELECT llm_data_access FROM dbchat.tenants LIMIT 1;
