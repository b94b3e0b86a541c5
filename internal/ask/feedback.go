package ask

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Feedback review states (dbchat.query_history.feedback_status).
const (
	ReviewPending  = "pending"  // a member's feedback, waiting for an admin
	ReviewApproved = "approved" // trained
	ReviewRejected = "rejected" // not trained
)

// ReviewStatuses lists the states GET /v1/feedback filters on.
var ReviewStatuses = []string{ReviewPending, ReviewApproved, ReviewRejected}

// FeedbackResult is what giving feedback did.
type FeedbackResult struct {
	// Trained is true when the feedback became a training pair now (an
	// admin's feedback).
	Trained        bool       `json:"trained"`
	TrainingDataID *uuid.UUID `json:"training_data_id,omitempty"`
	// Review is "pending" when the feedback waits for an admin (a member's).
	Review *string `json:"review,omitempty"`
}

// Feedback is a history entry's feedback as admins review it.
type Feedback struct {
	HistoryID    uuid.UUID  `json:"history_id"`
	AskedBy      *uuid.UUID `json:"asked_by"`
	Model        *string    `json:"model"`
	Question     *string    `json:"question"`
	GeneratedSQL *string    `json:"generated_sql"`
	Correct      bool       `json:"correct"`
	// SQL is the correction; nil when the generated SQL was confirmed.
	SQL            *string    `json:"sql"`
	GivenBy        *uuid.UUID `json:"given_by"`
	GivenAt        time.Time  `json:"given_at"`
	Status         *string    `json:"status"`
	ReviewedBy     *uuid.UUID `json:"reviewed_by"`
	ReviewedAt     *time.Time `json:"reviewed_at"`
	TrainingDataID *uuid.UUID `json:"training_data_id"`
}

// FeedbackFilter selects a page of feedback.
type FeedbackFilter struct {
	Status   string    // one of ReviewStatuses
	BeforeAt time.Time // keyset: feedback given strictly before (BeforeAt, BeforeID)
	BeforeID uuid.UUID
	Limit    int // at most this many
}

var q = dbsqlc.New()

// Feedback records feedback on a history entry of the caller's and, when
// there is a pair to train (the entry's question with its SQL, or with the
// corrected sql), trains it or queues it. Training data is an admin's to
// add: an admin's feedback trains the entry's model at once, as Vanna's
// auto-train does; a member's is validated and kept on the entry as
// "pending" until an admin approves it (ReviewFeedback), so nothing a member
// wrote reaches retrieval, a prompt or the offline generator before then.
// Members reach only their own entries; anyone else's is 404.
func (s *Service) Feedback(ctx context.Context, historyID uuid.UUID, correct bool, sql *string) (FeedbackResult, error) {
	id, ok := tenant.FromContext(ctx)
	if !ok {
		return FeedbackResult{}, apperr.Errorf(apperr.Internal, "feedback without identity")
	}
	params := dbsqlc.GetFeedbackParams{ID: historyID}
	record := dbsqlc.RecordFeedbackParams{ID: historyID, Correct: correct, Sql: sql, UserID: id.UserID}
	if id.Role != tenant.Admin {
		params.UserID, record.OwnerID = &id.UserID, &id.UserID
	}
	var h dbsqlc.GetFeedbackRow
	err := s.DB.Once(ctx, func(tx tenant.Conn) error {
		var err error
		h, err = q.GetFeedback(ctx, tx, params)
		return err
	})
	if err != nil {
		return FeedbackResult{}, err
	}
	pair, ok := trainable(h.Question, h.GeneratedSql, correct, sql)
	switch {
	case !ok:
		// Nothing to train: kept as what the user said, and no review.
		return FeedbackResult{}, s.record(ctx, record)
	case id.Role != tenant.Admin:
		if err := s.Store.Check(ctx, []nlsql.NewItem{pair}); err != nil {
			return FeedbackResult{}, err
		}
		pending := ReviewPending
		record.Status = &pending
		return FeedbackResult{Review: &pending}, s.record(ctx, record)
	}
	approved := ReviewApproved
	record.Status, record.ReviewedBy = &approved, &id.UserID
	item, err := s.train(ctx, h.Model, pair, func(ctx context.Context, tx tenant.Conn, trainingID uuid.UUID) error {
		record.TrainingID = &trainingID
		_, err := q.RecordFeedback(ctx, tx, record)
		return err
	})
	if err != nil {
		return FeedbackResult{}, err
	}
	return FeedbackResult{Trained: true, TrainingDataID: &item}, nil
}

// ListFeedback pages through the tenant's feedback in one review state,
// newest first: admins see everyone's, members the feedback they gave.
func (s *Service) ListFeedback(ctx context.Context, f FeedbackFilter) ([]Feedback, error) {
	id, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, apperr.Errorf(apperr.Internal, "feedback without identity")
	}
	if !slices.Contains(ReviewStatuses, f.Status) {
		return nil, apperr.Field("status", "must be one of %v", ReviewStatuses)
	}
	p := dbsqlc.ListFeedbackParams{Status: f.Status, BeforeAt: f.BeforeAt, BeforeID: f.BeforeID, MaxRows: int32(f.Limit)}
	if id.Role != tenant.Admin {
		p.UserID = &id.UserID
	}
	var rows []dbsqlc.ListFeedbackRow
	err := s.DB.Once(ctx, func(tx tenant.Conn) error {
		var err error
		rows, err = q.ListFeedback(ctx, tx, p)
		return err
	})
	out := make([]Feedback, 0, len(rows))
	for _, r := range rows {
		out = append(out, feedbackOf(dbsqlc.GetFeedbackRow(r)))
	}
	return out, err
}

// ReviewFeedback approves or rejects an entry's pending feedback (admins
// only). Approval trains the pair exactly as an admin's own feedback does,
// and marks the feedback approved in the same transaction as the training
// row's insert; rejection trains nothing. Feedback that is not pending is a
// conflict, as is feedback replaced while the admin was deciding.
func (s *Service) ReviewFeedback(ctx context.Context, historyID uuid.UUID, approve bool) (Feedback, error) {
	id, _ := tenant.FromContext(ctx)
	if id.Role != tenant.Admin {
		return Feedback{}, apperr.Errorf(apperr.Forbidden, "only tenant admins may review feedback")
	}
	var h dbsqlc.GetFeedbackRow
	err := s.DB.Once(ctx, func(tx tenant.Conn) error {
		var err error
		h, err = q.GetFeedback(ctx, tx, dbsqlc.GetFeedbackParams{ID: historyID})
		return err
	})
	switch {
	case err != nil:
		return Feedback{}, err
	case h.FeedbackAt == nil || h.FeedbackStatus == nil:
		return Feedback{}, apperr.Errorf(apperr.NotFound, "no feedback to review on this entry")
	case *h.FeedbackStatus != ReviewPending:
		return Feedback{}, apperr.Errorf(apperr.Conflict, "this feedback was already %s", *h.FeedbackStatus)
	}
	review := dbsqlc.ReviewFeedbackParams{ID: historyID, ReviewedBy: id.UserID, FeedbackAt: *h.FeedbackAt, Status: ReviewRejected}
	mark := func(ctx context.Context, tx tenant.Conn) error {
		n, err := q.ReviewFeedback(ctx, tx, review)
		if err == nil && n == 0 {
			err = apperr.Errorf(apperr.Conflict, "the feedback was reviewed or replaced meanwhile: read it again")
		}
		return err
	}
	if !approve {
		err = s.DB.Once(ctx, func(tx tenant.Conn) error { return mark(ctx, tx) })
	} else {
		review.Status = ReviewApproved
		pair, ok := trainable(h.Question, h.GeneratedSql, *h.FeedbackCorrect, h.FeedbackSql)
		if !ok { // not queued so; kept as a guard
			return Feedback{}, apperr.Errorf(apperr.Conflict, "this feedback has nothing to train")
		}
		_, err = s.train(ctx, h.Model, pair, func(ctx context.Context, tx tenant.Conn, trainingID uuid.UUID) error {
			review.TrainingID = &trainingID
			return mark(ctx, tx)
		})
	}
	if err != nil {
		return Feedback{}, err
	}
	err = s.DB.Once(ctx, func(tx tenant.Conn) error {
		h, err = q.GetFeedback(ctx, tx, dbsqlc.GetFeedbackParams{ID: historyID})
		return err
	})
	return feedbackOf(h), err
}

// trainable is the pair feedback trains, if any: the question with the
// corrected SQL, or with the generated SQL when confirmed as correct.
func trainable(question, generated *string, correct bool, sql *string) (nlsql.NewItem, bool) {
	if sql == nil && correct {
		sql = generated
	}
	if question == nil || sql == nil {
		return nlsql.NewItem{}, false
	}
	return nlsql.NewItem{Kind: nlsql.KindSQL, Question: *question, Content: *sql}, true
}

// train adds pair to the model named model (the default model when the
// entry's model was deleted) and runs then, with the new row's id, in the
// same transaction.
func (s *Service) train(ctx context.Context, model *string, pair nlsql.NewItem,
	then func(ctx context.Context, tx tenant.Conn, trainingID uuid.UUID) error) (uuid.UUID, error) {
	name := provision.DefaultModel
	if model != nil {
		name = *model
	}
	var modelID uuid.UUID
	err := s.DB.Once(ctx, func(tx tenant.Conn) error {
		var err error
		modelID, err = nlsql.ModelID(ctx, tx, name)
		return err
	})
	if err != nil {
		return uuid.Nil, err
	}
	items, err := s.Store.AddWith(ctx, modelID, []nlsql.NewItem{pair}, nlsql.SourceFeedback,
		func(ctx context.Context, tx tenant.Conn, added []nlsql.Item) error { return then(ctx, tx, added[0].ID) })
	if err != nil {
		return uuid.Nil, err
	}
	return items[0].ID, nil
}

// record stores feedback that trains nothing now.
func (s *Service) record(ctx context.Context, p dbsqlc.RecordFeedbackParams) error {
	return s.DB.Once(ctx, func(tx tenant.Conn) error {
		_, err := q.RecordFeedback(ctx, tx, p)
		return err
	})
}

func feedbackOf(r dbsqlc.GetFeedbackRow) Feedback {
	f := Feedback{
		HistoryID: r.ID, AskedBy: r.UserID, Model: r.Model, Question: r.Question, GeneratedSQL: r.GeneratedSql,
		SQL: r.FeedbackSql, GivenBy: r.FeedbackUserID, Status: r.FeedbackStatus,
		ReviewedBy: r.FeedbackReviewedBy, ReviewedAt: r.FeedbackReviewedAt, TrainingDataID: r.FeedbackTrainingID,
	}
	if r.FeedbackCorrect != nil {
		f.Correct = *r.FeedbackCorrect
	}
	if r.FeedbackAt != nil {
		f.GivenAt = *r.FeedbackAt
	}
	return f
}
