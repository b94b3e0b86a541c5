-- Feedback on an answer (POST /v1/history/{id}/feedback) lives on the history
-- entry it is about, under the same tenant_isolation policy as the entry.
-- Adding training data is an admin's job: an admin's feedback trains at once,
-- a member's waits here as 'pending' until an admin approves it (which trains
-- it, in the same transaction that marks it approved) or rejects it. Until
-- then nothing a member wrote is in training_data, so retrieval, the prompt
-- and the offline generator never see it.
--
-- One feedback per entry: a newer one replaces the older (and, when pending,
-- re-enters the queue). Every key and index leads with tenant_id, and every
-- reference pairs tenant_id, like the rest of the schema.

-- +goose Up
ALTER TABLE dbchat.query_history
    ADD COLUMN feedback_correct     boolean,
    ADD COLUMN feedback_sql         text,
    ADD COLUMN feedback_user_id     uuid,
    ADD COLUMN feedback_at          timestamptz,
    ADD COLUMN feedback_status      text
        CONSTRAINT query_history_feedback_status_check CHECK (feedback_status IN ('pending', 'approved', 'rejected')),
    ADD COLUMN feedback_reviewed_by uuid,
    ADD COLUMN feedback_reviewed_at timestamptz,
    ADD COLUMN feedback_training_id uuid,
    -- Feedback is all there or not at all; only given feedback has a status,
    -- and exactly the reviewed ones have a review time.
    ADD CONSTRAINT query_history_feedback_given_check
        CHECK ((feedback_correct IS NULL) = (feedback_at IS NULL) AND (feedback_status IS NULL OR feedback_at IS NOT NULL)),
    ADD CONSTRAINT query_history_feedback_reviewed_check
        CHECK ((coalesce(feedback_status, '') IN ('approved', 'rejected')) = (feedback_reviewed_at IS NOT NULL)),
    ADD CONSTRAINT query_history_feedback_user_fkey FOREIGN KEY (tenant_id, feedback_user_id)
        REFERENCES dbchat.users (tenant_id, id) ON DELETE SET NULL (feedback_user_id),
    ADD CONSTRAINT query_history_feedback_reviewer_fkey FOREIGN KEY (tenant_id, feedback_reviewed_by)
        REFERENCES dbchat.users (tenant_id, id) ON DELETE SET NULL (feedback_reviewed_by),
    ADD CONSTRAINT query_history_feedback_training_fkey FOREIGN KEY (tenant_id, feedback_training_id)
        REFERENCES dbchat.training_data (tenant_id, id) ON DELETE SET NULL (feedback_training_id);

COMMENT ON COLUMN dbchat.query_history.feedback_correct IS
    'The latest feedback on this entry: true confirms the generated SQL, false corrects it (feedback_sql) or just says it is wrong.';
COMMENT ON COLUMN dbchat.query_history.feedback_sql IS
    'The corrected SQL of the latest feedback; NULL when the generated SQL was confirmed or no correction was given.';
COMMENT ON COLUMN dbchat.query_history.feedback_status IS
    'pending: a member''s feedback awaiting an admin; approved: trained (feedback_training_id); rejected: not trained; NULL: nothing to train.';
COMMENT ON COLUMN dbchat.query_history.feedback_training_id IS
    'The training row approved feedback became (NULL once that row is deleted).';

-- The review queue, newest first, per status.
CREATE INDEX query_history_tenant_feedback_idx ON dbchat.query_history
    (tenant_id, feedback_status, feedback_at DESC, id DESC) WHERE feedback_status IS NOT NULL;
-- The foreign keys' referencing side, so deleting a user or a training row
-- does not scan the whole history; partial, since few entries have feedback.
CREATE INDEX query_history_tenant_feedback_user_idx ON dbchat.query_history
    (tenant_id, feedback_user_id) WHERE feedback_user_id IS NOT NULL;
CREATE INDEX query_history_tenant_feedback_reviewer_idx ON dbchat.query_history
    (tenant_id, feedback_reviewed_by) WHERE feedback_reviewed_by IS NOT NULL;
CREATE INDEX query_history_tenant_feedback_training_idx ON dbchat.query_history
    (tenant_id, feedback_training_id) WHERE feedback_training_id IS NOT NULL;

-- +goose Down
DROP INDEX dbchat.query_history_tenant_feedback_training_idx;
DROP INDEX dbchat.query_history_tenant_feedback_reviewer_idx;
DROP INDEX dbchat.query_history_tenant_feedback_user_idx;
DROP INDEX dbchat.query_history_tenant_feedback_idx;
ALTER TABLE dbchat.query_history
    DROP CONSTRAINT query_history_feedback_training_fkey,
    DROP CONSTRAINT query_history_feedback_reviewer_fkey,
    DROP CONSTRAINT query_history_feedback_user_fkey,
    DROP CONSTRAINT query_history_feedback_reviewed_check,
    DROP CONSTRAINT query_history_feedback_given_check,
    DROP COLUMN feedback_training_id,
    DROP COLUMN feedback_reviewed_at,
    DROP COLUMN feedback_reviewed_by,
    DROP COLUMN feedback_status,
    DROP COLUMN feedback_at,
    DROP COLUMN feedback_user_id,
    DROP COLUMN feedback_sql,
    DROP COLUMN feedback_correct;
