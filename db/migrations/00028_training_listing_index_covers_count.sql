-- +goose Up
-- Retrieval first counts a model's set of each kind (CountRetrievable, a
-- prepared statement). After five executions PostgreSQL may give it a
-- generic plan, which cannot know the set's size, estimates one row, and
-- may pick any index led by (tenant_id, model_id): through one without
-- embedder and kind it fetched every row from the heap to test them (229 ms
-- for a 25,000-row set instead of an index-only 4 ms, measured at full
-- scale). Carrying the missing columns lets every such index answer the
-- count alone, whichever a plan picks; planning the count afresh on every
-- call instead cost 2-3 ms a retrieval under RLS, measured too.
DROP INDEX dbchat.training_data_tenant_model_created_idx;
CREATE INDEX training_data_tenant_model_created_idx ON dbchat.training_data
    (tenant_id, model_id, created_at DESC, id DESC) INCLUDE (embedder, kind);
DROP INDEX dbchat.training_data_tenant_model_idx;
CREATE INDEX training_data_tenant_model_idx ON dbchat.training_data
    (tenant_id, model_id, kind) INCLUDE (embedder);

-- +goose Down
DROP INDEX dbchat.training_data_tenant_model_created_idx;
CREATE INDEX training_data_tenant_model_created_idx ON dbchat.training_data
    (tenant_id, model_id, created_at DESC, id DESC);
DROP INDEX dbchat.training_data_tenant_model_idx;
CREATE INDEX training_data_tenant_model_idx ON dbchat.training_data (tenant_id, model_id, kind);
