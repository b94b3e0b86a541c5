package nlsql

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/pgvector/pgvector-go"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/sqlguard"
	"github.com/dbchat/dbchat/internal/tenant"
)

// NewItem is a training row to add. For KindSQL, Content is the SQL.
type NewItem struct {
	Kind     string
	Question string
	Content  string
}

// Store writes training data: it validates, embeds and inserts, each write
// embedded with Embedder and labelled with its name.
type Store struct {
	DB       *tenant.DB
	Embedder embed.Embedder
	// QuestionWriter writes the question for a SQL pair given without one,
	// as Vanna's generate_question does.
	//
	// HOOK for the generation half: set it to a function that asks the LLM
	// (generate.Generator.Question). While it is nil, a pair without a
	// question is refused with 400 "question required".
	QuestionWriter func(ctx context.Context, sql string) (string, error)
	// Quota, if set, runs in every write's transaction after its rows are
	// in; its error rolls them back (training_rows, limits.Service).
	Quota func(ctx context.Context, tx tenant.Conn) error
}

// insertBatch is how many rows one INSERT statement carries.
const insertBatch = 500

// Add validates items (a pair's SQL must pass the sandbox's validator
// against the tenant's current tables), embeds them and inserts them in one
// transaction: all or nothing. Errors name the item ("items[2].sql: ...";
// a single item is named by its field alone).
func (s *Store) Add(ctx context.Context, modelID uuid.UUID, items []NewItem, source string) ([]Item, error) {
	return s.AddWith(ctx, modelID, items, source, nil)
}

// AddWith is Add, with then (if not nil) run inside the inserting
// transaction after the rows are in: its error rolls the rows back, so what
// then records and the training data commit together or not at all.
func (s *Store) AddWith(ctx context.Context, modelID uuid.UUID, items []NewItem, source string,
	then func(ctx context.Context, tx tenant.Conn, added []Item) error) ([]Item, error) {
	items, err := s.prepare(ctx, items, itemLabel(len(items)))
	if err != nil {
		return nil, err
	}
	vecs, err := s.embedItems(ctx, items)
	if err != nil {
		return nil, err
	}
	var out []Item
	var insertErr error
	err = s.DB.Tx(ctx, func(tx tenant.Conn) error {
		if out, insertErr = s.insert(ctx, tx, modelID, items, vecs, source); insertErr != nil || then == nil {
			return insertErr
		}
		return then(ctx, tx, out)
	})
	// A missing model fails the insert's foreign key (translated by Tx).
	if insertErr != nil && apperr.CodeOf(err) == apperr.NotFound {
		return nil, apperr.Errorf(apperr.NotFound, "model not found")
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Check validates items as Add would (shape, and a pair's SQL against the
// tenant's current tables) without embedding or storing them: for input that
// is kept for later, such as a member's feedback awaiting an admin.
func (s *Store) Check(ctx context.Context, items []NewItem) error {
	_, err := s.prepare(ctx, items, itemLabel(len(items)))
	return err
}

// itemLabel names a field of item i in errors ("items[2].sql"); a single
// item is named by its field alone.
func itemLabel(n int) func(i int, field string) string {
	return func(i int, field string) string {
		if n == 1 {
			return field
		}
		return fmt.Sprintf("items[%d].%s", i, field)
	}
}

// prepare checks the items' shape, writes missing questions (QuestionWriter)
// and validates pairs' SQL against the tenant's tables, read in one
// statement.
// label(i, field) names a field of item i in errors.
func (s *Store) prepare(ctx context.Context, items []NewItem, label func(i int, field string) string) ([]NewItem, error) {
	if len(items) == 0 {
		return nil, apperr.Errorf(apperr.Invalid, "no training data given")
	}
	items = append([]NewItem(nil), items...)
	hasSQL := false
	for i := range items {
		it := &items[i]
		it.Kind = strings.TrimSpace(it.Kind)
		it.Question = strings.TrimSpace(it.Question)
		it.Content = strings.TrimSpace(it.Content)
		if err := checkShape(*it, func(field string) string { return label(i, field) }); err != nil {
			return nil, err
		}
		if it.Kind == KindSQL {
			hasSQL = true
		} else {
			it.Question = ""
		}
	}
	if !hasSQL {
		return items, nil
	}
	id, ok := tenant.FromContext(ctx)
	if !ok {
		return nil, apperr.Errorf(apperr.Internal, "training data without identity")
	}
	var policy sqlguard.Policy
	err := s.DB.Once(ctx, func(tx tenant.Conn) error {
		var err error
		policy, err = sandbox.TenantPolicy(ctx, tx, id.TenantID)
		return err
	})
	if err != nil {
		return nil, err
	}
	for i := range items {
		it := &items[i]
		if it.Kind != KindSQL {
			continue
		}
		if err := sqlguard.Check(it.Content, policy); err != nil {
			var rej *sqlguard.Rejection
			if errors.As(err, &rej) {
				e := apperr.Errorf(apperr.SQLRejected, "%s: %s", label(i, "sql"), rej.Reason)
				e.Details = map[string]any{"field": label(i, "sql")}
				return nil, e
			}
			return nil, err
		}
		if it.Question == "" {
			if s.QuestionWriter == nil {
				return nil, apperr.Field(label(i, "question"), "question required (writing one from the SQL needs an LLM, which is not configured)")
			}
			question, err := s.QuestionWriter(ctx, it.Content)
			if err != nil {
				return nil, err
			}
			if it.Question = strings.TrimSpace(question); it.Question == "" {
				return nil, apperr.Field(label(i, "question"), "question required (the LLM wrote none)")
			}
		}
	}
	return items, nil
}

// checkShape validates one item without the database; at names a field.
func checkShape(it NewItem, at func(field string) string) error {
	if !validKind(it.Kind) {
		return apperr.Field(at("kind"), "must be one of %s", strings.Join(Kinds, ", "))
	}
	content := "content"
	if it.Kind == KindSQL {
		content = "sql"
	}
	switch {
	case it.Content == "":
		return apperr.Field(at(content), "is required")
	case len(it.Content) > MaxContentBytes:
		return apperr.Field(at(content), "at most %d bytes", MaxContentBytes)
	case !utf8.ValidString(it.Content) || strings.ContainsRune(it.Content, 0):
		return apperr.Field(at(content), "must be valid UTF-8 text")
	case len(it.Question) > MaxQuestionBytes:
		return apperr.Field(at("question"), "at most %d bytes", MaxQuestionBytes)
	case !utf8.ValidString(it.Question) || strings.ContainsRune(it.Question, 0):
		return apperr.Field(at("question"), "must be valid UTF-8 text")
	case it.Kind != KindSQL && it.Question != "":
		return apperr.Field(at("question"), "only sql pairs have a question")
	}
	return nil
}

// embedText is what a row's vector is made from: a pair's question (a new
// question is compared with trained questions), otherwise its content.
func embedText(it NewItem) string {
	if it.Kind == KindSQL {
		return it.Question
	}
	return it.Content
}

func (s *Store) embedItems(ctx context.Context, items []NewItem) ([][]float32, error) {
	texts := make([]string, len(items))
	for i, it := range items {
		texts[i] = embedText(it)
	}
	vecs, err := s.Embedder.Embed(ctx, texts)
	if err != nil {
		return nil, embedErr(err)
	}
	if len(vecs) != len(items) {
		return nil, embedErr(fmt.Errorf("%s returned %d vectors for %d texts", s.Embedder.Name(), len(vecs), len(items)))
	}
	for i, v := range vecs {
		if len(v) != embed.Dim {
			return nil, embedErr(fmt.Errorf("%s returned %d dimensions for text %d, want %d", s.Embedder.Name(), len(v), i, embed.Dim))
		}
	}
	return vecs, nil
}

// insert writes prepared, embedded items in batches within tx.
func (s *Store) insert(ctx context.Context, tx tenant.Conn, modelID uuid.UUID, items []NewItem, vecs [][]float32, source string) ([]Item, error) {
	out := make([]Item, 0, len(items))
	for start := 0; start < len(items); start += insertBatch {
		end := min(start+insertBatch, len(items))
		p := dbsqlc.InsertTrainingDataParams{ModelID: modelID, Embedder: s.Embedder.Name(), Source: source}
		for i := start; i < end; i++ {
			p.Kinds = append(p.Kinds, items[i].Kind)
			p.Questions = append(p.Questions, items[i].Question)
			p.Contents = append(p.Contents, items[i].Content)
			p.Embeddings = append(p.Embeddings, pgvector.NewVector(vecs[i]).String())
		}
		rows, err := q.InsertTrainingData(ctx, tx, p)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out = append(out, itemOf(dbsqlc.GetTrainingDataRow(r)))
		}
	}
	if s.Quota != nil {
		if err := s.Quota(ctx, tx); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// digest identifies a row's (kind, question, content), as the
// TrainingDigests query computes it.
func digest(it NewItem) string {
	sum := md5.Sum([]byte(it.Kind + "\x01" + it.Question + "\x01" + it.Content))
	return hex.EncodeToString(sum[:])
}

// Reembed re-embeds a model's rows with the store's embedder: the rows of
// any other embedder, or every row when all is set. It works in batches,
// each embedded outside and written in its own transaction, so it can run
// while the service serves; it returns how many rows it re-embedded.
func (s *Store) Reembed(ctx context.Context, modelID uuid.UUID, all bool) (int, error) {
	const batch = 200
	name := s.Embedder.Name()
	after := uuid.Nil
	total := 0
	for {
		var rows []dbsqlc.ListToReembedRow
		err := s.DB.Once(ctx, func(tx tenant.Conn) error {
			var err error
			rows, err = q.ListToReembed(ctx, tx, dbsqlc.ListToReembedParams{
				ModelID: modelID, AfterID: after, AllRows: all, Embedder: name, MaxRows: batch})
			return err
		})
		if err != nil || len(rows) == 0 {
			return total, err
		}
		items := make([]NewItem, len(rows))
		ids := make([]uuid.UUID, len(rows))
		for i, r := range rows {
			items[i] = NewItem{Kind: r.Kind, Content: r.Content}
			if r.Question != nil {
				items[i].Question = *r.Question
			}
			ids[i] = r.ID
		}
		vecs, err := s.embedItems(ctx, items)
		if err != nil {
			return total, err
		}
		p := dbsqlc.UpdateEmbeddingsParams{Embedder: name, ModelID: modelID, Ids: ids}
		for _, v := range vecs {
			p.Embeddings = append(p.Embeddings, pgvector.NewVector(v).String())
		}
		var n int64
		err = s.DB.Once(ctx, func(tx tenant.Conn) error {
			var err error
			n, err = q.UpdateEmbeddings(ctx, tx, p)
			return err
		})
		if err != nil {
			return total, err
		}
		total += int(n)
		after = rows[len(rows)-1].ID
	}
}
