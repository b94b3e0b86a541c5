-- name: GetFeedback :one
-- One history entry with its feedback; a non-NULL user_id limits it to that
-- user's entries (members).
SELECT h.id, h.user_id, m.name AS model, h.question, h.generated_sql,
       h.feedback_correct, h.feedback_sql, h.feedback_user_id, h.feedback_at, h.feedback_status,
       h.feedback_reviewed_by, h.feedback_reviewed_at, h.feedback_training_id
FROM dbchat.query_history h
LEFT JOIN dbchat.models m ON m.tenant_id = h.tenant_id AND m.id = h.model_id
WHERE h.id = sqlc.arg(id)
  AND (sqlc.narg(user_id)::uuid IS NULL OR h.user_id = sqlc.narg(user_id)::uuid);

-- name: RecordFeedback :one
-- Records feedback on an entry, replacing any earlier feedback. status is
-- 'pending' (a member's, for an admin to review), 'approved' (an admin's,
-- trained at once as training_id, reviewed by the admin) or NULL (nothing to
-- train). A non-NULL owner_id limits it to that user's entries (members).
UPDATE dbchat.query_history
SET feedback_correct = sqlc.arg(correct)::boolean,
    feedback_sql = sqlc.narg(sql),
    feedback_user_id = sqlc.arg(user_id)::uuid,
    feedback_at = now(),
    feedback_status = sqlc.narg(status),
    feedback_reviewed_by = sqlc.narg(reviewed_by),
    feedback_reviewed_at = CASE WHEN sqlc.narg(status)::text IN ('approved', 'rejected') THEN now() END,
    feedback_training_id = sqlc.narg(training_id)
WHERE id = sqlc.arg(id)
  AND (sqlc.narg(owner_id)::uuid IS NULL OR user_id = sqlc.narg(owner_id)::uuid)
RETURNING id;

-- name: ReviewFeedback :execrows
-- Approves or rejects pending feedback. feedback_at must still be the one the
-- reviewer read, so feedback given meanwhile (which replaces it) is never
-- approved unseen; zero rows means it was reviewed or replaced meanwhile.
UPDATE dbchat.query_history
SET feedback_status = sqlc.arg(status)::text,
    feedback_reviewed_by = sqlc.arg(reviewed_by)::uuid,
    feedback_reviewed_at = now(),
    feedback_training_id = sqlc.narg(training_id)
WHERE id = sqlc.arg(id)
  AND feedback_status = 'pending'
  AND feedback_at = sqlc.arg(feedback_at)::timestamptz;

-- name: ListFeedback :many
-- One page of feedback in one status, newest first; a non-NULL user_id
-- limits it to the feedback that user gave (members). Keyset bounds as in
-- ListQueryHistory, on (tenant_id, feedback_status, feedback_at DESC, id DESC).
SELECT h.id, h.user_id, m.name AS model, h.question, h.generated_sql,
       h.feedback_correct, h.feedback_sql, h.feedback_user_id, h.feedback_at, h.feedback_status,
       h.feedback_reviewed_by, h.feedback_reviewed_at, h.feedback_training_id
FROM dbchat.query_history h
LEFT JOIN dbchat.models m ON m.tenant_id = h.tenant_id AND m.id = h.model_id
WHERE h.feedback_status = sqlc.arg(status)::text
  AND (h.feedback_at, h.id) < (sqlc.arg(before_at)::timestamptz, sqlc.arg(before_id)::uuid)
  AND (sqlc.narg(user_id)::uuid IS NULL OR h.feedback_user_id = sqlc.narg(user_id)::uuid)
ORDER BY h.feedback_at DESC, h.id DESC
LIMIT sqlc.arg(max_rows)::int;
