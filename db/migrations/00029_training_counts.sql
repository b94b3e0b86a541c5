-- Retrieval chooses each kind's access path from the size of the model's set
-- (internal/nlsql: exact up to a threshold, HNSW above). Counting the set on
-- every question was an index-only scan that still cost about 1.5 ms of the
-- ask pipeline's 10 (docs/BENCHMARKS.md part 5), even stopped as soon as the
-- choice was made. The counts are now kept here, per model and embedder, by
-- a statement-level trigger on training_data, so retrieval reads one row.
--
-- Every write goes through the trigger: inserts (API writes, imports),
-- deletes (by id, by source, a model's data, the cascade of a model's or a
-- tenant's deletion) and updates (re-embedding moves rows to another
-- embedder). It is ENABLE ALWAYS, so `dbchat tenant import`, which copies
-- platform rows in replica mode, keeps the counts too; exports leave this
-- table out (internal/tenantio: derived rows).
--
-- Writers of one model serialise on its row until they commit (a training
-- write waits for a concurrent import into the same model); one row per
-- (model, embedder) rather than per kind, so that writes of several kinds in
-- any order cannot deadlock on it.
--
-- The table follows the isolation rule of every dbchat table: tenant_id
-- first in every key, RLS enabled and forced, one tenant_isolation policy.

-- +goose Up
CREATE TABLE dbchat.training_counts (
    tenant_id          uuid   NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                              REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    model_id           uuid   NOT NULL,
    embedder           text   NOT NULL,
    sql_rows           bigint NOT NULL DEFAULT 0,
    ddl_rows           bigint NOT NULL DEFAULT 0,
    documentation_rows bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, model_id, embedder),
    FOREIGN KEY (tenant_id, model_id) REFERENCES dbchat.models (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE dbchat.training_counts IS
    'How many training rows each model has of each kind, per embedder (rows without an embedding are not counted). Kept by the trigger on dbchat.training_data (00029); read by retrieval to choose its access path.';

ALTER TABLE dbchat.training_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.training_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.training_counts
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.training_counts IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';
-- dbchat's code writes it only through the trigger, which runs as the
-- writer of the training rows (SECURITY INVOKER) and so under the same
-- policy: a tenant's write changes its own counts only. (Run as the owner,
-- it would fail the policy's check for a superuser's or BYPASSRLS loader's
-- rows written without app.tenant_id.)
GRANT SELECT, INSERT, UPDATE ON dbchat.training_counts TO dbchat_app;

-- The function. A key whose count falls is only updated: its row exists
-- unless the model is being deleted, when the cascade removes the counts
-- anyway (inserting would fail the foreign key). Inserted keys are written
-- in key order.
-- +goose StatementBegin
CREATE FUNCTION dbchat.count_training_rows() RETURNS trigger
    LANGUAGE plpgsql SECURITY INVOKER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO dbchat.training_counts AS c (tenant_id, model_id, embedder, sql_rows, ddl_rows, documentation_rows)
        SELECT tenant_id, model_id, embedder, count(*) FILTER (WHERE kind = 'sql'),
               count(*) FILTER (WHERE kind = 'ddl'), count(*) FILTER (WHERE kind = 'documentation')
        FROM new_rows WHERE embedder IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
        ON CONFLICT (tenant_id, model_id, embedder) DO UPDATE
        SET sql_rows = c.sql_rows + excluded.sql_rows, ddl_rows = c.ddl_rows + excluded.ddl_rows,
            documentation_rows = c.documentation_rows + excluded.documentation_rows;
    ELSIF TG_OP = 'DELETE' THEN
        UPDATE dbchat.training_counts c
        SET sql_rows = c.sql_rows - d.sql_rows, ddl_rows = c.ddl_rows - d.ddl_rows,
            documentation_rows = c.documentation_rows - d.documentation_rows
        FROM (SELECT tenant_id, model_id, embedder, count(*) FILTER (WHERE kind = 'sql') AS sql_rows,
                     count(*) FILTER (WHERE kind = 'ddl') AS ddl_rows,
                     count(*) FILTER (WHERE kind = 'documentation') AS documentation_rows
              FROM old_rows WHERE embedder IS NOT NULL GROUP BY 1, 2, 3) d
        WHERE c.tenant_id = d.tenant_id AND c.model_id = d.model_id AND c.embedder = d.embedder;
    ELSE
        -- An update may move rows between embedders, kinds or models: the
        -- net change per key, decreases updated, the rest upserted.
        WITH d AS (
            SELECT tenant_id, model_id, embedder,
                   coalesce(sum(s) FILTER (WHERE kind = 'sql'), 0) AS sql_rows,
                   coalesce(sum(s) FILTER (WHERE kind = 'ddl'), 0) AS ddl_rows,
                   coalesce(sum(s) FILTER (WHERE kind = 'documentation'), 0) AS documentation_rows
            FROM (SELECT tenant_id, model_id, embedder, kind, 1 AS s FROM new_rows
                  UNION ALL
                  SELECT tenant_id, model_id, embedder, kind, -1 FROM old_rows) r
            WHERE embedder IS NOT NULL GROUP BY 1, 2, 3
        ), decreased AS (
            UPDATE dbchat.training_counts c
            SET sql_rows = c.sql_rows + d.sql_rows, ddl_rows = c.ddl_rows + d.ddl_rows,
                documentation_rows = c.documentation_rows + d.documentation_rows
            FROM d
            WHERE c.tenant_id = d.tenant_id AND c.model_id = d.model_id AND c.embedder = d.embedder
              AND least(d.sql_rows, d.ddl_rows, d.documentation_rows) < 0
        )
        INSERT INTO dbchat.training_counts AS c (tenant_id, model_id, embedder, sql_rows, ddl_rows, documentation_rows)
        SELECT * FROM d
        WHERE least(d.sql_rows, d.ddl_rows, d.documentation_rows) >= 0
          AND greatest(d.sql_rows, d.ddl_rows, d.documentation_rows) > 0
        ORDER BY 1, 2, 3
        ON CONFLICT (tenant_id, model_id, embedder) DO UPDATE
        SET sql_rows = c.sql_rows + excluded.sql_rows, ddl_rows = c.ddl_rows + excluded.ddl_rows,
            documentation_rows = c.documentation_rows + excluded.documentation_rows;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
-- Firing a trigger needs no EXECUTE grant; calling it directly fails anyway.
REVOKE ALL ON FUNCTION dbchat.count_training_rows() FROM PUBLIC;
COMMENT ON FUNCTION dbchat.count_training_rows() IS
    'Trigger on dbchat.training_data: keeps dbchat.training_counts (as the writer of the training rows, under its policy).';

-- Transition tables allow one event per trigger.
CREATE TRIGGER training_data_count_insert AFTER INSERT ON dbchat.training_data
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dbchat.count_training_rows();
CREATE TRIGGER training_data_count_update AFTER UPDATE ON dbchat.training_data
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION dbchat.count_training_rows();
CREATE TRIGGER training_data_count_delete AFTER DELETE ON dbchat.training_data
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION dbchat.count_training_rows();
ALTER TABLE dbchat.training_data ENABLE ALWAYS TRIGGER training_data_count_insert;
ALTER TABLE dbchat.training_data ENABLE ALWAYS TRIGGER training_data_count_update;
ALTER TABLE dbchat.training_data ENABLE ALWAYS TRIGGER training_data_count_delete;

-- Existing rows, counted as dbchat_operator (BYPASSRLS): the owner running
-- migrations sees no row of a forced-RLS table without a tenant. The grants
-- last only for this.
GRANT SELECT (tenant_id, model_id, embedder, kind) ON dbchat.training_data TO dbchat_operator;
GRANT INSERT ON dbchat.training_counts TO dbchat_operator;
SET LOCAL ROLE dbchat_operator;
INSERT INTO dbchat.training_counts (tenant_id, model_id, embedder, sql_rows, ddl_rows, documentation_rows)
SELECT tenant_id, model_id, embedder, count(*) FILTER (WHERE kind = 'sql'),
       count(*) FILTER (WHERE kind = 'ddl'), count(*) FILTER (WHERE kind = 'documentation')
FROM dbchat.training_data WHERE embedder IS NOT NULL GROUP BY 1, 2, 3;
SET LOCAL ROLE dbchat_owner;
REVOKE INSERT ON dbchat.training_counts FROM dbchat_operator;
REVOKE SELECT (tenant_id, model_id, embedder, kind) ON dbchat.training_data FROM dbchat_operator;

-- +goose Down
DROP TRIGGER training_data_count_delete ON dbchat.training_data;
DROP TRIGGER training_data_count_update ON dbchat.training_data;
DROP TRIGGER training_data_count_insert ON dbchat.training_data;
DROP FUNCTION dbchat.count_training_rows();
DROP TABLE dbchat.training_counts;
