// Package nlsql is the storage and retrieval half of dbchat's NL->SQL engine
// (the seed's TenantVannaService): a tenant's named models, their training
// data (DDL, documentation, question->SQL pairs) with embeddings in pgvector,
// and retrieval of the nearest training rows for a question. Everything runs
// in tenant transactions (internal/tenant), so isolation is the RLS policy's,
// as everywhere else; nothing here filters by tenant_id.
//
// Functions taking a tenant.Conn run inside the caller's transaction. Store's
// methods open their own transactions, because they embed text (possibly a
// network call) between reading and writing and should not hold a
// transaction open meanwhile.
package nlsql

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Training data kinds (dbchat.training_data.kind).
const (
	KindSQL           = "sql"           // a question->SQL pair: Question and the SQL in Content
	KindDDL           = "ddl"           // a CREATE TABLE statement
	KindDocumentation = "documentation" // free text about the data
)

// Kinds lists the kinds in the order retrieval and counts report them.
var Kinds = []string{KindSQL, KindDDL, KindDocumentation}

// Sources: who wrote a training row (dbchat.training_data.source).
const (
	SourceUser     = "user"     // POST /v1/models/{name}/training-data
	SourceCatalog  = "catalog"  // train-from-catalog; replaced on every re-run
	SourceImport   = "import"   // a Vanna get_training_data() import
	SourceFeedback = "feedback" // a confirmed or corrected answer
)

// Sources lists the valid sources.
var Sources = []string{SourceUser, SourceCatalog, SourceImport, SourceFeedback}

// Size limits for training rows.
const (
	MaxContentBytes  = 100_000
	MaxQuestionBytes = 10_000
)

var q = dbsqlc.New()

// Counts is a number of training rows per kind.
type Counts struct {
	SQL           int `json:"sql"`
	DDL           int `json:"ddl"`
	Documentation int `json:"documentation"`
	Total         int `json:"total"`
}

func (c *Counts) add(kind string, n int) {
	switch kind {
	case KindSQL:
		c.SQL += n
	case KindDDL:
		c.DDL += n
	case KindDocumentation:
		c.Documentation += n
	}
	c.Total += n
}

// Model is a tenant's named NL->SQL model with its training counts.
type Model struct {
	ID            uuid.UUID  `json:"id"`
	Name          string     `json:"name"`
	LLMModel      string     `json:"llm_model"`
	Description   string     `json:"description"`
	CreatedAt     time.Time  `json:"created_at"`
	Training      Counts     `json:"training"`
	LastTrainedAt *time.Time `json:"last_trained_at"`
}

var modelName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// ValidateModelName checks a model name as the database will.
func ValidateModelName(name string) error {
	if !modelName.MatchString(name) {
		return apperr.Field("name", "must be 1-63 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit")
	}
	return nil
}

// NewModel describes a model to create.
type NewModel struct {
	Name        string `json:"name"`
	LLMModel    string `json:"llm_model"`
	Description string `json:"description"`
}

// Validate checks the fields at the edge.
func (m NewModel) Validate() error {
	if err := ValidateModelName(m.Name); err != nil {
		return err
	}
	if len(m.LLMModel) > 200 {
		return apperr.Field("llm_model", "at most 200 bytes")
	}
	if len(m.Description) > 10_000 {
		return apperr.Field("description", "at most 10000 bytes")
	}
	return nil
}

// CreateModel creates a model; a duplicate name is a Conflict.
func CreateModel(ctx context.Context, tx tenant.Conn, m NewModel) (Model, error) {
	if err := m.Validate(); err != nil {
		return Model{}, err
	}
	row, err := q.CreateModel(ctx, tx, dbsqlc.CreateModelParams{Name: m.Name, LlmModel: m.LLMModel, Description: m.Description})
	if err != nil {
		if apperr.CodeOf(tenant.Translate(err)) == apperr.Conflict {
			return Model{}, apperr.Errorf(apperr.Conflict, "a model named %q already exists", m.Name)
		}
		return Model{}, err
	}
	return Model{ID: row.ID, Name: row.Name, LLMModel: row.LlmModel, Description: row.Description, CreatedAt: row.CreatedAt}, nil
}

// ListModels lists the tenant's models with their training counts, by name.
func ListModels(ctx context.Context, tx tenant.Conn) ([]Model, error) {
	return listModels(ctx, tx, nil)
}

// GetModel returns the named model with its counts; an unknown name (or
// another tenant's) is NotFound.
func GetModel(ctx context.Context, tx tenant.Conn, name string) (Model, error) {
	ms, err := listModels(ctx, tx, &name)
	if err != nil {
		return Model{}, err
	}
	if len(ms) == 0 {
		return Model{}, modelNotFound(name)
	}
	return ms[0], nil
}

func listModels(ctx context.Context, tx tenant.Conn, name *string) ([]Model, error) {
	rows, err := q.ListModelsWithCounts(ctx, tx, name)
	if err != nil {
		return nil, err
	}
	out := make([]Model, 0, len(rows))
	for _, r := range rows {
		m := Model{ID: r.ID, Name: r.Name, LLMModel: r.LlmModel, Description: r.Description, CreatedAt: r.CreatedAt}
		m.Training.add(KindSQL, int(r.SqlCount))
		m.Training.add(KindDDL, int(r.DdlCount))
		m.Training.add(KindDocumentation, int(r.DocumentationCount))
		if t, ok := r.LastTrainedAt.(time.Time); ok {
			m.LastTrainedAt = &t
		}
		out = append(out, m)
	}
	return out, nil
}

// ModelID resolves a model name to its id (NotFound if the tenant has no
// such model).
func ModelID(ctx context.Context, tx tenant.Conn, name string) (uuid.UUID, error) {
	if !modelName.MatchString(name) {
		return uuid.Nil, modelNotFound(name)
	}
	m, err := q.GetModelByName(ctx, tx, name)
	if err != nil {
		if apperr.CodeOf(tenant.Translate(err)) == apperr.NotFound {
			return uuid.Nil, modelNotFound(name)
		}
		return uuid.Nil, err
	}
	return m.ID, nil
}

// DeleteModel deletes a model and its training data (the seed's cleanup)
// and reports how many training rows went. Its query history stays, with
// the model unset. The default model cannot be deleted.
func DeleteModel(ctx context.Context, tx tenant.Conn, name string) (Counts, error) {
	if name == provision.DefaultModel {
		return Counts{}, apperr.Errorf(apperr.Invalid, "the %q model cannot be deleted", provision.DefaultModel)
	}
	id, err := ModelID(ctx, tx, name)
	if err != nil {
		return Counts{}, err
	}
	rows, err := q.DeleteModelTrainingData(ctx, tx, id)
	if err != nil {
		return Counts{}, err
	}
	var c Counts
	for _, r := range rows {
		c.add(r.Kind, int(r.N))
	}
	n, err := q.DeleteModel(ctx, tx, id)
	if err != nil {
		return Counts{}, err
	}
	if n == 0 {
		return Counts{}, modelNotFound(name)
	}
	return c, nil
}

func modelNotFound(name string) error {
	return apperr.Errorf(apperr.NotFound, "model %q not found", name)
}

// Item is a stored training row as the API shows it (without its vector).
type Item struct {
	ID        uuid.UUID  `json:"id"`
	ModelID   uuid.UUID  `json:"model_id"`
	Kind      string     `json:"kind"`
	Question  *string    `json:"question"`
	Content   string     `json:"content"`
	Source    string     `json:"source"`
	Embedder  *string    `json:"embedder"`
	UserID    *uuid.UUID `json:"user_id"`
	CreatedAt time.Time  `json:"created_at"`
	// Verified says a tenant admin vouched for a pair's SQL (verified_at,
	// verified_by); evaluations measure a model on its verified pairs.
	Verified   bool       `json:"verified"`
	VerifiedBy *uuid.UUID `json:"verified_by"`
	VerifiedAt *time.Time `json:"verified_at"`
}

// ListFilter selects a page of training data.
type ListFilter struct {
	Kind   string // "" = every kind
	Source string // "" = every source
	Limit  int
	Offset int
}

// ListTrainingData returns a page of a model's training data, newest first,
// and whether more follow.
func ListTrainingData(ctx context.Context, tx tenant.Conn, modelID uuid.UUID, f ListFilter) ([]Item, bool, error) {
	if f.Kind != "" && !validKind(f.Kind) {
		return nil, false, apperr.Field("kind", "must be one of %s", strings.Join(Kinds, ", "))
	}
	if f.Source != "" && !validSource(f.Source) {
		return nil, false, apperr.Field("source", "must be one of %s", strings.Join(Sources, ", "))
	}
	if f.Limit <= 0 {
		return nil, false, apperr.Field("limit", "must be positive")
	}
	p := dbsqlc.ListTrainingDataParams{ModelID: modelID, MaxRows: int32(f.Limit + 1), Skip: int32(f.Offset)}
	if f.Kind != "" {
		p.Kind = &f.Kind
	}
	if f.Source != "" {
		p.Source = &f.Source
	}
	rows, err := q.ListTrainingData(ctx, tx, p)
	if err != nil {
		return nil, false, err
	}
	more := len(rows) > f.Limit
	if more {
		rows = rows[:f.Limit]
	}
	out := make([]Item, len(rows))
	for i, r := range rows {
		out[i] = itemOf(dbsqlc.GetTrainingDataRow(r))
	}
	err = withVerification(ctx, tx, modelID, out)
	return out, more, err
}

// GetTrainingData returns one row of the model.
func GetTrainingData(ctx context.Context, tx tenant.Conn, modelID, id uuid.UUID) (Item, error) {
	r, err := q.GetTrainingData(ctx, tx, dbsqlc.GetTrainingDataParams{ModelID: modelID, ID: id})
	if err != nil {
		return Item{}, err
	}
	items := []Item{itemOf(r)}
	err = withVerification(ctx, tx, modelID, items)
	return items[0], err
}

func itemOf(r dbsqlc.GetTrainingDataRow) Item {
	return Item{ID: r.ID, ModelID: r.ModelID, Kind: r.Kind, Question: r.Question, Content: r.Content,
		Source: r.Source, Embedder: r.Embedder, UserID: r.UserID, CreatedAt: r.CreatedAt}
}

// DeleteTrainingData deletes one row of the model; an id that is not the
// model's (another model's, another tenant's, none) is NotFound.
func DeleteTrainingData(ctx context.Context, tx tenant.Conn, modelID, id uuid.UUID) error {
	n, err := q.DeleteTrainingData(ctx, tx, dbsqlc.DeleteTrainingDataParams{ModelID: modelID, ID: id})
	if err != nil {
		return err
	}
	if n == 0 {
		return apperr.Errorf(apperr.NotFound, "training data not found")
	}
	return nil
}

func validKind(k string) bool {
	return k == KindSQL || k == KindDDL || k == KindDocumentation
}

func validSource(s string) bool {
	for _, v := range Sources {
		if s == v {
			return true
		}
	}
	return false
}

// embedErr reports an embedder failure without its details (they are for
// the logs).
func embedErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return tenant.Translate(err)
	}
	return apperr.Wrap(apperr.Unavailable, fmt.Errorf("embed: %w", err), "the embedder did not answer; try again later")
}
