-- A question asked as it was trained ("How many customers do we have?"
-- asked as "how many customers do we have") must find its pair. Retrieval
-- searches a large set of pairs through an HNSW graph, which is approximate:
-- on part 5's model of BENCHMARKS.md (8,498 pairs from a dozen templates,
-- near-identical vectors) the graph left 206 pairs (2.4%) out of their own
-- vector's top 10, and the offline generator then refused the question or
-- adapted another pair. So retrieval also looks the question up through this
-- index, next to the graph (internal/nlsql: Retriever.Question), in the few
-- forms it may have been trained in.
--
-- md5, because a question may be longer than a B-tree entry allows, and
-- because md5 and = are leakproof: under the forced policy PostgreSQL uses
-- an index for a condition only when every function in it is leakproof (a
-- normalising function such as lower() is not, and its index went unused:
-- a sequential scan of the table, measured).

-- +goose Up
CREATE INDEX training_data_question_idx ON dbchat.training_data (tenant_id, model_id, md5(question))
    WHERE kind = 'sql';

-- +goose Down
DROP INDEX dbchat.training_data_question_idx;
