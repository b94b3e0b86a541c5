// Package generate turns a question into SQL. A Generator sees the question
// and what retrieval found for the tenant's model (DDL, documentation and
// similar question→SQL pairs) and never result rows. Three implementations:
// gemini and openai (any OpenAI-compatible server) call an LLM; offline needs
// no network and answers common question shapes from the catalog, saying so
// when it cannot. Whatever a generator returns is untrusted: the caller runs
// it through the SQL sandbox.
package generate

import (
	"context"
	"regexp"
	"strings"

	"github.com/dbchat/dbchat/internal/apperr"
)

// Example is a trained question→SQL pair close to the question.
type Example struct {
	Question string
	SQL      string
	Distance float64 // cosine distance to the question, 0 = identical
}

// Column is a catalog column.
type Column struct {
	Name, Type, Description string
}

// Table is a catalog table.
type Table struct {
	Name, Description string
	Columns           []Column
}

// Input is everything a generator may use.
type Input struct {
	Question string
	DDL      []string
	Docs     []string
	Examples []Example
	// Tables is the tenant's catalog (the offline generator's knowledge).
	Tables []Table
	// FindValues reports which of values table.column holds (one sandbox
	// statement per call); the offline generator uses it, within its probe
	// budget, to turn named values into filters. May be nil.
	FindValues func(ctx context.Context, table, column string, values []string) ([]string, error)
	// PriorSQL and PriorError drive one correction round.
	PriorSQL, PriorError string
	// Turns are the conversation's previous turns, oldest first (standalone
	// questions and their SQL, never result rows): the question may be a
	// follow-up ("and only for 2024?") that refines the last one.
	Turns []Turn
}

// Turn is a previous turn of a conversation.
type Turn struct {
	Question string // the standalone (resolved) question
	SQL      string
}

// Output is a generator's answer.
type Output struct {
	SQL string
	// Resolved is the standalone question SQL answers, when the generator
	// knows it (the question itself, or a follow-up merged with the turn it
	// refines); empty leaves it to Resolve.
	Resolved string
	// Usage is what producing it cost at the LLM, also when Generate
	// returns an error after a reply (a refusal); usage analytics adds it up.
	Usage Usage
}

// Usage counts LLM calls and the tokens the provider reported for them;
// zero for the offline generator, which calls none.
type Usage struct {
	Calls     int
	TokensIn  int64
	TokensOut int64
}

// Resolve writes a follow-up as a standalone question: the refined turn's
// question and the follow-up, so history and training pairs read on their
// own.
func Resolve(turns []Turn, question string) string {
	if len(turns) == 0 {
		return question
	}
	return strings.TrimRight(turns[len(turns)-1].Question, "?. ") + " — " + question
}

// Generator writes SQL for a question.
type Generator interface {
	// Name identifies the generator (and model) in history and responses.
	Name() string
	Generate(ctx context.Context, in Input) (Output, error)
	// Question writes the question a SQL statement answers (for training
	// pairs given without one, as Vanna does).
	Question(ctx context.Context, sql string, in Input) (string, error)
}

// ErrNoSQL is the honest "I don't know" (HTTP 422 no_sql_generated).
func ErrNoSQL(reason string) error {
	return apperr.Errorf(apperr.NoSQL, "no SQL generated: %s", reason)
}

var (
	fenced  = regexp.MustCompile("(?s)```(?:sql|postgresql|postgres)?\\s*(.*?)```")
	leading = regexp.MustCompile(`(?is)\b(WITH|SELECT)\b.*`)
)

// ExtractSQL pulls the statement out of an LLM reply: the first fenced code
// block if there is one, else the text from the first WITH or SELECT; a
// trailing semicolon is dropped.
func ExtractSQL(reply string) string {
	s := reply
	if m := fenced.FindStringSubmatch(reply); m != nil {
		s = m[1]
	} else if m := leading.FindString(reply); m != "" {
		s = m
	}
	s = strings.TrimSpace(s)
	return strings.TrimSpace(strings.TrimSuffix(s, ";"))
}
