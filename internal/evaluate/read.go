package evaluate

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/tenant"
)

// MaxListed caps how many runs List returns (the newest).
const MaxListed = 200

// List returns the model's runs, newest first, without their per-question
// results: the accuracy trend across runs, generators and models.
func List(ctx context.Context, tx tenant.Conn, model string) ([]Run, error) {
	modelID, err := nlsql.ModelID(ctx, tx, model)
	if err != nil {
		return nil, err
	}
	rows, err := q.ListEvaluations(ctx, tx, dbsqlc.ListEvaluationsParams{ModelID: modelID, MaxRows: MaxListed})
	if err != nil {
		return nil, err
	}
	out := make([]Run, 0, len(rows))
	for _, r := range rows {
		run, err := runOf(model, dbsqlc.GetEvaluationRow(r))
		if err != nil {
			return nil, err
		}
		out = append(out, run)
	}
	return out, nil
}

// Get returns one run of the model with its per-question results; an id
// that is not one of the model's runs is NotFound.
func Get(ctx context.Context, tx tenant.Conn, model string, id uuid.UUID) (Run, error) {
	modelID, err := nlsql.ModelID(ctx, tx, model)
	if err != nil {
		return Run{}, err
	}
	row, err := q.GetEvaluation(ctx, tx, dbsqlc.GetEvaluationParams{ModelID: modelID, ID: id})
	if apperr.CodeOf(tenant.Translate(err)) == apperr.NotFound {
		return Run{}, apperr.Errorf(apperr.NotFound, "evaluation %s of model %q not found", id, model)
	}
	if err != nil {
		return Run{}, err
	}
	run, err := runOf(model, row)
	if err != nil {
		return run, err
	}
	results, err := q.ListEvaluationResults(ctx, tx, id)
	run.Results = make([]Result, len(results))
	for i, r := range results {
		run.Results[i] = Result{Position: int(r.Position), TrainingID: r.TrainingID, Question: r.Question, GoldSQL: r.GoldSql,
			GeneratedSQL: r.GeneratedSql, Outcome: r.Outcome, ExactMatch: r.ExactMatch, SubsetMatch: r.SubsetMatch,
			Error: r.Error, LatencyMS: r.LatencyMs}
	}
	return run, err
}

func runOf(model string, r dbsqlc.GetEvaluationRow) (Run, error) {
	run := Run{ID: r.ID, Model: model, ModelID: r.ModelID, UserID: r.UserID, Generator: r.Generator, LLMModel: r.LlmModel,
		Embedder: r.Embedder, Pairs: int(r.Pairs), ExactCorrect: int(r.ExactCorrect), SubsetCorrect: int(r.SubsetCorrect),
		Wrong: int(r.Wrong), Refused: int(r.Refused), Errors: int(r.Errors), TokensIn: r.TokensIn, TokensOut: r.TokensOut,
		DurationMS: r.DurationMs, CreatedAt: r.CreatedAt}
	run.accuracy()
	return run, json.Unmarshal(r.Canary, &run.Canary)
}
