-- A tenant's choice to let an LLM see a bounded sample of an answer's rows
-- to write its summary (the original design's enable_llm_data_access). Off
-- by default: then no result value ever appears in any prompt. A tenant
-- admin changes it (PATCH /v1/tenant); the runtime role may update this
-- column of its own tenant's row only (the tenant_isolation policy).

-- +goose Up
ALTER TABLE dbchat.tenants ADD COLUMN llm_data_access boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN dbchat.tenants.llm_data_access IS
    'true: an LLM generator writes answer summaries from a bounded sample of the rows (at most 20 rows, 4 KiB); false (default): no result value is ever sent to an LLM.';
GRANT UPDATE (llm_data_access) ON dbchat.tenants TO dbchat_app;

-- +goose Down
REVOKE UPDATE (llm_data_access) ON dbchat.tenants FROM dbchat_app;
ALTER TABLE dbchat.tenants DROP COLUMN llm_data_access;
