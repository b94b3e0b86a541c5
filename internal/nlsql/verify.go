package nlsql

import (
	"context"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/tenant"
)

// SetVerified verifies or unverifies one pair of the model and returns it.
// Verifying a verified pair keeps its first verification (time and admin);
// verified_by is the transaction's user. An id that is not a pair of the
// model (a DDL or documentation item, another model's, another tenant's)
// is NotFound: only pairs have gold SQL to vouch for.
func SetVerified(ctx context.Context, tx tenant.Conn, modelID, id uuid.UUID, verified bool) (Item, error) {
	_, err := q.SetTrainingVerified(ctx, tx, dbsqlc.SetTrainingVerifiedParams{Verified: verified, ModelID: modelID, ID: id})
	if apperr.CodeOf(tenant.Translate(err)) == apperr.NotFound {
		return Item{}, apperr.Errorf(apperr.NotFound, "no question->SQL pair %s in this model (only pairs can be verified)", id)
	}
	if err != nil {
		return Item{}, err
	}
	return GetTrainingData(ctx, tx, modelID, id)
}

// MarkVerified verifies the pairs among items, just added in tx (training
// data posted with "verified": true), and updates them in place. Items of
// another kind are refused: only pairs can be verified.
func MarkVerified(ctx context.Context, tx tenant.Conn, modelID uuid.UUID, items []Item) error {
	ids := make([]uuid.UUID, 0, len(items))
	for _, it := range items {
		if it.Kind != KindSQL {
			return apperr.Field("verified", "only question->SQL pairs can be verified, not %s", it.Kind)
		}
		ids = append(ids, it.ID)
	}
	if _, err := q.SetTrainingVerifiedMany(ctx, tx, dbsqlc.SetTrainingVerifiedManyParams{ModelID: modelID, Ids: ids}); err != nil {
		return err
	}
	return withVerification(ctx, tx, modelID, items)
}

// withVerification fills the verification of items (rows of the model) in
// place, with one statement.
func withVerification(ctx context.Context, tx tenant.Conn, modelID uuid.UUID, items []Item) error {
	if len(items) == 0 {
		return nil
	}
	ids := make([]uuid.UUID, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	rows, err := q.TrainingVerification(ctx, tx, dbsqlc.TrainingVerificationParams{ModelID: modelID, Ids: ids})
	if err != nil {
		return err
	}
	byID := make(map[uuid.UUID]dbsqlc.TrainingVerificationRow, len(rows))
	for _, r := range rows {
		byID[r.ID] = r
	}
	for i := range items {
		if r, ok := byID[items[i].ID]; ok {
			items[i].Verified, items[i].VerifiedBy, items[i].VerifiedAt = true, r.VerifiedBy, r.VerifiedAt
		}
	}
	return nil
}
