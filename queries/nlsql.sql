-- NL->SQL models and training data (internal/nlsql). Every query runs inside
-- a tenant transaction: the tenant_isolation policy, not a WHERE clause,
-- limits it to one tenant. Retrieval's nearest-neighbour statements are built
-- in internal/nlsql/retrieve.go, since choosing the access path is their point.

-- name: ListModelsWithCounts :many
SELECT m.id, m.name, m.llm_model, m.description, m.created_at,
       count(t.id) FILTER (WHERE t.kind = 'sql')::int AS sql_count,
       count(t.id) FILTER (WHERE t.kind = 'ddl')::int AS ddl_count,
       count(t.id) FILTER (WHERE t.kind = 'documentation')::int AS documentation_count,
       max(t.created_at) AS last_trained_at
FROM dbchat.models m
LEFT JOIN dbchat.training_data t ON t.tenant_id = m.tenant_id AND t.model_id = m.id
WHERE (sqlc.narg(name)::text IS NULL OR m.name = sqlc.narg(name)::text)
GROUP BY m.tenant_id, m.id
ORDER BY m.name;

-- name: DeleteModelTrainingData :many
-- Removes a model's training data and reports how many rows of each kind.
WITH d AS (
    DELETE FROM dbchat.training_data WHERE model_id = $1 RETURNING kind
)
SELECT kind, count(*)::int AS n FROM d GROUP BY kind;

-- name: DeleteModel :execrows
DELETE FROM dbchat.models WHERE id = $1;

-- name: InsertTrainingData :many
-- Inserts a batch; the arrays are parallel, an empty question is NULL and
-- embeddings are pgvector's text form ("[0.1,...]").
INSERT INTO dbchat.training_data (model_id, kind, question, content, embedding, embedder, source)
SELECT sqlc.arg(model_id)::uuid, u.kind, nullif(u.question, ''), u.content,
       u.embedding::vector(768), sqlc.arg(embedder)::text, sqlc.arg(source)::text
FROM (SELECT unnest(sqlc.arg(kinds)::text[]) AS kind, unnest(sqlc.arg(questions)::text[]) AS question,
             unnest(sqlc.arg(contents)::text[]) AS content, unnest(sqlc.arg(embeddings)::text[]) AS embedding) u
RETURNING id, model_id, user_id, kind, question, content, embedder, source, created_at;

-- name: ListTrainingData :many
-- One page of a model's training data, newest first; kind and source are
-- optional filters (NULL = all).
SELECT id, model_id, user_id, kind, question, content, embedder, source, created_at
FROM dbchat.training_data
WHERE model_id = sqlc.arg(model_id)
  AND (sqlc.narg(kind)::text IS NULL OR kind = sqlc.narg(kind)::text)
  AND (sqlc.narg(source)::text IS NULL OR source = sqlc.narg(source)::text)
ORDER BY created_at DESC, id DESC
LIMIT sqlc.arg(max_rows)::int OFFSET sqlc.arg(skip)::int;

-- name: GetTrainingData :one
SELECT id, model_id, user_id, kind, question, content, embedder, source, created_at
FROM dbchat.training_data
WHERE model_id = $1 AND id = $2;

-- name: DeleteTrainingData :execrows
DELETE FROM dbchat.training_data WHERE model_id = $1 AND id = $2;

-- name: DeleteTrainingDataBySource :execrows
DELETE FROM dbchat.training_data WHERE model_id = $1 AND source = $2;

-- name: TrainingDigests :many
-- A digest of each row's (kind, question, content), for skipping duplicates
-- on import; internal/nlsql computes the same digest.
SELECT md5(kind || chr(1) || coalesce(question, '') || chr(1) || content)::text AS digest
FROM dbchat.training_data
WHERE model_id = $1;

-- name: CountRetrievable :one
-- How many rows each kind has for (model, embedder), kept by the trigger
-- of migration 00029 (a row per model and embedder; none yet: 0), and the
-- planner's estimate of the whole table's size (all tenants: pg_class is
-- not subject to the policy; only its size is read), and the transaction's
-- tenant with the row count and m of the model's own HNSW index of each
-- kind (-1 rows and m 16 when it has none, or the index is not yet valid:
-- see nlsql.TuneVectorIndexes). The names are nlsql.ModelIndexName's,
-- computed from the transaction's tenant, so no tenant can name another's
-- index. Each graph's m (pgvector's default 16 unless built with another)
-- matters because a large graph built sparser than nlsql builds them now is
-- searched wider until it is rebuilt. Retrieval picks its access path from
-- these numbers.
SELECT
    coalesce(n.sql_rows, 0)::int AS sql_count,
    coalesce(n.ddl_rows, 0)::int AS ddl_count,
    coalesce(n.documentation_rows, 0)::int AS documentation_count,
    (SELECT greatest(c.reltuples, 0) FROM pg_catalog.pg_class c
        WHERE c.oid = 'dbchat.training_data'::regclass)::float8 AS table_estimate,
    current_setting('app.tenant_id')::text AS tenant_setting,
    coalesce(own.sql_rows, -1)::float8 AS sql_index_rows,
    coalesce(own.ddl_rows, -1)::float8 AS ddl_index_rows,
    coalesce(own.doc_rows, -1)::float8 AS documentation_index_rows,
    coalesce(own.sql_m, 16)::int AS sql_index_m,
    coalesce(own.ddl_m, 16)::int AS ddl_index_m,
    coalesce(own.doc_m, 16)::int AS documentation_index_m
FROM (SELECT
        max(ix.rows) FILTER (WHERE ix.kind = 'sql') AS sql_rows,
        max(ix.rows) FILTER (WHERE ix.kind = 'ddl') AS ddl_rows,
        max(ix.rows) FILTER (WHERE ix.kind = 'doc') AS doc_rows,
        max(ix.m) FILTER (WHERE ix.kind = 'sql') AS sql_m,
        max(ix.m) FILTER (WHERE ix.kind = 'ddl') AS ddl_m,
        max(ix.m) FILTER (WHERE ix.kind = 'doc') AS doc_m
    FROM (SELECT k.kind, greatest(c.reltuples, 0) AS rows,
            (SELECT o.option_value::int FROM pg_catalog.pg_options_to_table(c.reloptions) o
                WHERE o.option_name = 'm') AS m
        FROM unnest(ARRAY['sql', 'ddl', 'doc']) k(kind)
        JOIN pg_catalog.pg_class c ON c.oid = to_regclass('dbchat.training_data_m_' || left(encode(sha256(convert_to(
            current_setting('app.tenant_id')::uuid::text || '/' || sqlc.arg(model_id)::uuid::text, 'UTF8')), 'hex'), 32)
            || '_' || k.kind)
        JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
        WHERE i.indrelid = 'dbchat.training_data'::regclass AND i.indisvalid AND i.indisready) ix) own
    LEFT JOIN dbchat.training_counts n ON n.model_id = sqlc.arg(model_id)::uuid AND n.embedder = sqlc.arg(embedder)::text;

-- name: ListToReembed :many
-- The next batch of a model's rows to re-embed, in id order after after_id:
-- rows of another embedder, or every row when all is true.
SELECT id, kind, question, content
FROM dbchat.training_data
WHERE model_id = sqlc.arg(model_id)
  AND id > sqlc.arg(after_id)
  AND (sqlc.arg(all_rows)::boolean OR embedder IS DISTINCT FROM sqlc.arg(embedder)::text)
ORDER BY id
LIMIT sqlc.arg(max_rows)::int;

-- name: UpdateEmbeddings :execrows
-- Sets a batch of embeddings (parallel arrays, pgvector's text form).
UPDATE dbchat.training_data t
SET embedding = u.embedding::vector(768), embedder = sqlc.arg(embedder)::text
FROM (SELECT unnest(sqlc.arg(ids)::uuid[]) AS id, unnest(sqlc.arg(embeddings)::text[]) AS embedding) u
WHERE t.model_id = sqlc.arg(model_id)::uuid AND t.id = u.id;

-- name: ListActiveCatalog :many
-- The tenant's active tables with their columns, for train-from-catalog.
SELECT t.id AS table_id, t.name AS table_name, t.description AS table_description,
       c.name AS column_name, c.data_type, c.description AS column_description,
       c.is_nullable
FROM dbchat.database_tables t
JOIN dbchat.database_columns c ON c.tenant_id = t.tenant_id AND c.table_id = t.id
WHERE t.is_active
ORDER BY t.name, c.position;
