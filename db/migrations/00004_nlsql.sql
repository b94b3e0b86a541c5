-- NL->SQL storage and retrieval: where a training row came from, and the
-- indexes retrieval uses (see internal/nlsql/retrieve.go for the query side).
--
-- Retrieval asks for the k nearest rows of one (tenant, model, embedder,
-- kind). The tenant filter is the RLS policy, which PostgreSQL applies after
-- an approximate index has produced its candidates, so a global HNSW scan
-- alone can return fewer than k rows (none at all for a small tenant) while
-- matches exist. Hence two access paths, chosen per query and kind:
--
--   * exact: the B-tree below finds exactly the tenant's rows of that model,
--     embedder and kind; they are ranked by true distance. Used for every
--     set up to 2000 rows, which is nearly every tenant: exact, full k, and
--     a few milliseconds.
--   * HNSW: one partial index per kind, scanned with pgvector 0.8's
--     iterative scan (hnsw.iterative_scan = relaxed_order, set per
--     transaction), which keeps walking the graph until k rows survive the
--     filters. Used only when the set is large AND a large enough share of
--     the table that the walk stays short; otherwise exact again.
--
-- Vectors are stored inline (STORAGE PLAIN: 3 KB, uncompressed): the default
-- out-of-line TOAST storage made every exact scan fetch each vector through
-- the TOAST index, about 2.5x slower in measurements. (It applies to rows
-- written from now on; `dbchat reembed --all` rewrites older ones.)

-- +goose Up
ALTER TABLE dbchat.training_data
    ADD COLUMN source text NOT NULL DEFAULT 'user'
        CONSTRAINT training_data_source_check CHECK (source IN ('user', 'catalog', 'import', 'feedback')),
    ADD CONSTRAINT training_data_question_check CHECK ((kind = 'sql') = (question IS NOT NULL)),
    ALTER COLUMN embedding SET STORAGE PLAIN;
COMMENT ON COLUMN dbchat.training_data.source IS
    'Who wrote the row: user (API), catalog (train-from-catalog, replaced on every re-run), import (Vanna import), feedback (a confirmed answer).';
COMMENT ON COLUMN dbchat.training_data.embedder IS
    'Name of the embedder that produced embedding; retrieval compares only rows of the same embedder (dbchat reembed switches them).';

-- The exact path and its cheap per-kind counts (index-only scans).
CREATE INDEX training_data_retrieval_idx ON dbchat.training_data (tenant_id, model_id, embedder, kind);

-- The approximate path: cosine distance (embeddings are L2-normalised), one
-- graph per kind so a kind's filter does not cost graph steps.
CREATE INDEX training_data_sql_hnsw ON dbchat.training_data
    USING hnsw (embedding vector_cosine_ops) WHERE kind = 'sql';
CREATE INDEX training_data_ddl_hnsw ON dbchat.training_data
    USING hnsw (embedding vector_cosine_ops) WHERE kind = 'ddl';
CREATE INDEX training_data_documentation_hnsw ON dbchat.training_data
    USING hnsw (embedding vector_cosine_ops) WHERE kind = 'documentation';

-- Listing a model's training data, newest first.
CREATE INDEX training_data_tenant_model_created_idx ON dbchat.training_data (tenant_id, model_id, created_at DESC, id DESC);

-- +goose Down
DROP INDEX dbchat.training_data_tenant_model_created_idx;
DROP INDEX dbchat.training_data_documentation_hnsw;
DROP INDEX dbchat.training_data_ddl_hnsw;
DROP INDEX dbchat.training_data_sql_hnsw;
DROP INDEX dbchat.training_data_retrieval_idx;
ALTER TABLE dbchat.training_data
    ALTER COLUMN embedding SET STORAGE EXTERNAL,
    DROP CONSTRAINT training_data_question_check,
    DROP COLUMN source;
