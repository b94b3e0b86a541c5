// Package evalset scores a SQL generator on schemas its code has never
// seen: each Schema has tables, rows and questions, answerable ones with the
// SQL a person would write and unanswerable ones that must be refused. A
// generated statement is correct when it returns the same rows as the
// person's (results, not SQL text, are compared); an answer to an
// unanswerable question, or one with other rows, is wrong. The tests
// require no wrong answer; `make bench` reports the counts.
package evalset

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Case is one question; Want is the SQL that answers it, or "" when the
// schema cannot answer it and the generator must refuse.
type Case struct {
	Question, Want string
}

// Schema is a tenant's tables, their rows (INSERT statements with
// unqualified table names) and the questions asked of them.
type Schema struct {
	Name   string
	Tables []catalog.TableSpec
	Rows   string
	Cases  []Case
}

// Verdicts of one question.
const (
	Correct = "correct" // same rows as the person's SQL
	Refused = "refused" // the generator said it cannot answer
	Wrong   = "wrong"   // other rows, an answer to an unanswerable question, or SQL that fails
)

// Outcome is one question's result.
type Outcome struct {
	Case
	SQL, Verdict, Detail string
}

// Score is a schema's tally.
type Score struct {
	Schema                  string
	Correct, Refused, Wrong int
	Outcomes                []Outcome
}

// Load creates s's tables through the catalog and fills them, in the
// caller's tenant transaction.
func Load(ctx context.Context, tx tenant.Conn, s Schema) error {
	var schema string
	for _, spec := range s.Tables {
		t, err := catalog.Create(ctx, tx, spec)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", s.Name, spec.Name, err)
		}
		schema = t.Schema
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true)`, schema); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, s.Rows)
	return err
}

// Tables is s's catalog as a generator sees it.
func Tables(s Schema) []generate.Table {
	out := make([]generate.Table, 0, len(s.Tables))
	for _, spec := range s.Tables {
		t := generate.Table{Name: spec.Name, Description: spec.Description}
		for _, c := range spec.Columns {
			t.Columns = append(t.Columns, generate.Column{Name: c.Name, Type: c.Type, Description: c.Description})
		}
		out = append(out, t)
	}
	return out
}

// Run asks gen every question of s as the tenant in ctx (whose tables Load
// created) and judges each answer by running it and the person's SQL
// through svc.
func Run(ctx context.Context, gen generate.Generator, svc *sandbox.Service, s Schema) (Score, error) {
	score := Score{Schema: s.Name}
	tables := Tables(s)
	for _, c := range s.Cases {
		o := Outcome{Case: c}
		out, err := gen.Generate(ctx, generate.Input{Question: c.Question, Tables: tables, FindValues: svc.FindValues})
		switch {
		case apperr.CodeOf(err) == apperr.NoSQL:
			o.Verdict, o.Detail = Refused, apperr.As(err).Message
		case err != nil:
			return score, fmt.Errorf("%s: %q: %w", s.Name, c.Question, err)
		default:
			o.SQL = out.SQL
			o.Verdict, o.Detail, err = judge(ctx, svc, c, out.SQL)
			if err != nil {
				return score, err
			}
		}
		switch o.Verdict {
		case Correct:
			score.Correct++
		case Refused:
			score.Refused++
		default:
			score.Wrong++
		}
		score.Outcomes = append(score.Outcomes, o)
	}
	return score, nil
}

// judge compares the rows of got with those of c.Want.
func judge(ctx context.Context, svc *sandbox.Service, c Case, got string) (verdict, detail string, err error) {
	if c.Want == "" {
		return Wrong, "answered a question the schema cannot answer", nil
	}
	want, err := rows(ctx, svc, c.Want)
	if err != nil {
		return "", "", fmt.Errorf("the expected SQL of %q: %w", c.Question, err)
	}
	have, err := rows(ctx, svc, got)
	if err != nil {
		return Wrong, "the generated SQL failed: " + err.Error(), nil
	}
	if have != want {
		return Wrong, "rows " + have + ", want " + want, nil
	}
	return Correct, "", nil
}

func rows(ctx context.Context, svc *sandbox.Service, sql string) (string, error) {
	res, err := svc.Run(ctx, sandbox.Request{SQL: sql})
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(res.Rows)
	return string(b), err
}
