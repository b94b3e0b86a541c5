-- Measured accuracy per tenant (issue 17 §3): verified training pairs, and
-- the runs of POST /v1/models/{name}/evaluations over them.
--
-- A pair is verified when a tenant admin vouches for its SQL (verified_at,
-- verified_by). An evaluation asks the model every verified question with
-- that pair left out of its own retrieval, runs the gold and the generated
-- SQL in the sandbox and compares their rows; the run and each question's
-- outcome are kept here, so GET .../evaluations shows the trend across runs,
-- generators and models. The canary column holds the leakage canary's
-- report (a throwaway second tenant's marker must never reach the evaluated
-- tenant's answers); the throwaway tenant itself is erased after the run.
--
-- Both tables follow the isolation rule of every dbchat table: tenant_id
-- first in every key, RLS enabled and forced, one tenant_isolation policy.

-- +goose Up
ALTER TABLE dbchat.training_data
    ADD COLUMN verified_by uuid,
    ADD COLUMN verified_at timestamptz,
    -- Only question->SQL pairs have gold SQL to vouch for.
    ADD CONSTRAINT training_data_verified_check CHECK (verified_at IS NULL OR kind = 'sql'),
    ADD CONSTRAINT training_data_verified_by_check CHECK (verified_by IS NULL OR verified_at IS NOT NULL),
    ADD CONSTRAINT training_data_verified_by_fkey FOREIGN KEY (tenant_id, verified_by)
        REFERENCES dbchat.users (tenant_id, id) ON DELETE SET NULL (verified_by);
COMMENT ON COLUMN dbchat.training_data.verified_at IS
    'When a tenant admin verified the pair (its SQL is gold for evaluations); NULL: not verified.';
COMMENT ON COLUMN dbchat.training_data.verified_by IS
    'The admin who verified the pair (NULL once that user is deleted; the pair stays verified).';
-- An evaluation reads a model's verified pairs only.
CREATE INDEX training_data_verified_idx ON dbchat.training_data (tenant_id, model_id, created_at)
    WHERE verified_at IS NOT NULL;
CREATE INDEX training_data_tenant_verified_by_idx ON dbchat.training_data (tenant_id, verified_by)
    WHERE verified_by IS NOT NULL;

CREATE TABLE dbchat.evaluations (
    tenant_id       uuid             NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                                     REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    id              uuid             NOT NULL DEFAULT gen_random_uuid(),
    model_id        uuid             NOT NULL,
    user_id         uuid             DEFAULT nullif(current_setting('app.user_id', true), '')::uuid,
    generator       text             NOT NULL,
    llm_model       text             NOT NULL DEFAULT '',
    embedder        text             NOT NULL,
    pairs           integer          NOT NULL CHECK (pairs >= 0),
    exact_correct   integer          NOT NULL CHECK (exact_correct BETWEEN 0 AND pairs),
    subset_correct  integer          NOT NULL CHECK (subset_correct BETWEEN exact_correct AND pairs),
    wrong           integer          NOT NULL CHECK (wrong >= 0),
    refused         integer          NOT NULL CHECK (refused >= 0),
    errors          integer          NOT NULL CHECK (errors >= 0),
    tokens_in       bigint,
    tokens_out      bigint,
    duration_ms     double precision NOT NULL,
    canary          jsonb            NOT NULL,
    created_at      timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, model_id) REFERENCES dbchat.models (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES dbchat.users (tenant_id, id) ON DELETE SET NULL (user_id)
);
COMMENT ON TABLE dbchat.evaluations IS
    'One evaluation run of a model over its verified pairs (leave-one-out), with the leakage canary''s report.';
COMMENT ON COLUMN dbchat.evaluations.canary IS
    'The leakage canary: {"status":"not_seen"|"seen"|"skipped", ...}; see docs/NLSQL.md.';
COMMENT ON COLUMN dbchat.evaluations.tokens_in IS
    'LLM tokens the run used, when the generator reports them; NULL when it does not.';
-- The trend: a model's runs, newest first; the user key for deleting users.
CREATE INDEX evaluations_tenant_model_created_idx ON dbchat.evaluations (tenant_id, model_id, created_at DESC, id DESC);
CREATE INDEX evaluations_tenant_user_idx ON dbchat.evaluations (tenant_id, user_id);

CREATE TABLE dbchat.evaluation_results (
    tenant_id     uuid             NOT NULL DEFAULT nullif(current_setting('app.tenant_id', true), '')::uuid
                                   REFERENCES dbchat.tenants (id) ON DELETE CASCADE,
    evaluation_id uuid             NOT NULL,
    position      integer          NOT NULL CHECK (position > 0),
    -- The pair evaluated; no foreign key: the pair may be edited or deleted
    -- later and the run must still say what it measured.
    training_id   uuid             NOT NULL,
    question      text             NOT NULL,
    gold_sql      text             NOT NULL,
    generated_sql text,
    outcome       text             NOT NULL CHECK (outcome IN ('correct', 'wrong', 'refused', 'error')),
    exact_match   boolean          NOT NULL,
    subset_match  boolean          NOT NULL,
    error         text,
    latency_ms    double precision NOT NULL,
    PRIMARY KEY (tenant_id, evaluation_id, position),
    FOREIGN KEY (tenant_id, evaluation_id) REFERENCES dbchat.evaluations (tenant_id, id) ON DELETE CASCADE
);
COMMENT ON TABLE dbchat.evaluation_results IS
    'One verified question of an evaluation run: both SQLs, the outcome (correct = exact or subset match), the error, the latency.';

ALTER TABLE dbchat.evaluations ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.evaluations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.evaluations
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.evaluations IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

ALTER TABLE dbchat.evaluation_results ENABLE ROW LEVEL SECURITY;
ALTER TABLE dbchat.evaluation_results FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON dbchat.evaluation_results
    USING (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))
    WITH CHECK (tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid));
COMMENT ON POLICY tenant_isolation ON dbchat.evaluation_results IS
    'Rows are visible and writable only when tenant_id equals app.tenant_id (SET LOCAL per transaction); unset or empty matches nothing.';

-- Runs are written once and read; deleting a model or user cascades.
GRANT SELECT, INSERT ON dbchat.evaluations, dbchat.evaluation_results TO dbchat_app;

-- +goose Down
DROP TABLE dbchat.evaluation_results;
DROP TABLE dbchat.evaluations;
DROP INDEX dbchat.training_data_tenant_verified_by_idx;
DROP INDEX dbchat.training_data_verified_idx;
ALTER TABLE dbchat.training_data
    DROP CONSTRAINT training_data_verified_by_fkey,
    DROP CONSTRAINT training_data_verified_by_check,
    DROP CONSTRAINT training_data_verified_check,
    DROP COLUMN verified_at,
    DROP COLUMN verified_by;
