-- name: CreateClaimPolicy :one
-- The one DDL path for claim policies (a SECURITY DEFINER function; see
-- db/migrations/00012_claim_policies.sql): names only, never SQL text.
SELECT dbchat.create_claim_policy(sqlc.arg(table_id)::uuid, sqlc.arg(name)::text, sqlc.arg(column_name)::text,
    sqlc.arg(claim)::text, sqlc.arg(op)::text, sqlc.arg(admins_bypass)::boolean)::uuid AS id;

-- name: GetClaimPolicy :one
SELECT id, table_id, name, column_name, claim, op, admins_bypass, user_id, created_at
FROM dbchat.claim_policies WHERE table_id = $1 AND id = $2;

-- name: ListClaimPolicies :many
SELECT id, table_id, name, column_name, claim, op, admins_bypass, user_id, created_at
FROM dbchat.claim_policies WHERE table_id = $1 ORDER BY name;

-- name: DropClaimPolicy :one
SELECT dbchat.drop_claim_policy(sqlc.arg(table_id)::uuid, sqlc.arg(id)::uuid)::boolean AS dropped;
