-- A question asked as it was trained ("How many customers do we have?"
-- asked as "how many customers do we have") must find its pair. Retrieval
-- searches a large set of pairs through an HNSW graph, which is approximate:
-- on part 5's model of BENCHMARKS.md (8,498 pairs from a dozen templates,
-- near-identical vectors) the graph left 206 pairs (2.4%) out of their own
-- vector's top 10, and the offline generator then refused the question or
-- adapted another pair. So retrieval also looks the question up by this
-- key, through the index below, next to the graph (internal/nlsql).
--
-- The key: lower case, runs of white space as one space, without the
-- spaces and the ? . ! at either end.

-- +goose Up
-- +goose StatementBegin
CREATE FUNCTION dbchat.question_key(q text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
RETURN lower(btrim(regexp_replace(q, '[[:space:]]+', ' ', 'g'), ' ?.!'));
-- +goose StatementEnd
COMMENT ON FUNCTION dbchat.question_key(text) IS
    'The form a training question is looked up by (lower case, white space collapsed, no ? . ! or space at either end): retrieval finds a pair asked as it was trained whatever the HNSW graph returns (00030).';
GRANT EXECUTE ON FUNCTION dbchat.question_key(text) TO dbchat_app;
REVOKE ALL ON FUNCTION dbchat.question_key(text) FROM PUBLIC;

CREATE INDEX training_data_question_key_idx ON dbchat.training_data
    (tenant_id, model_id, dbchat.question_key(question)) WHERE kind = 'sql';

-- +goose Down
DROP INDEX dbchat.training_data_question_key_idx;
DROP FUNCTION dbchat.question_key(text);
