package generate

import (
	"fmt"
	"strings"
)

// System is the instruction every LLM generator sends.
const System = `You write PostgreSQL for a database chat service. Answer with exactly one read-only SELECT statement (WITH … SELECT is fine) in a single ` + "```sql" + ` code block and nothing else. Use only the tables and columns in the context; refer to tables by their unqualified names. If the question cannot be answered from them, reply with the single word NO_SQL.`

// MaxPromptBytes bounds the context sent to an LLM; MaxTurnsBytes the
// conversation's previous turns within it (the latest turns first).
const (
	MaxPromptBytes = 24 << 10
	MaxTurnsBytes  = 6 << 10
)

// Prompt renders the question and the retrieved context, most relevant
// first, within MaxPromptBytes: examples, then DDL, then documentation, each
// item whole or not at all. No result rows are ever included.
func Prompt(in Input) string {
	var b strings.Builder
	budget := MaxPromptBytes - len(in.Question) - 512
	add := func(s string) bool {
		if len(s) > budget {
			return false
		}
		budget -= len(s)
		b.WriteString(s)
		return true
	}
	if len(in.Examples) > 0 {
		add("Questions answered before, with their SQL:\n\n")
		for _, e := range in.Examples {
			if !add(fmt.Sprintf("Q: %s\n```sql\n%s\n```\n\n", e.Question, e.SQL)) {
				break
			}
		}
	}
	if len(in.DDL) > 0 {
		add("Tables:\n\n")
		for _, d := range in.DDL {
			if !add(d + "\n\n") {
				break
			}
		}
	}
	if len(in.Docs) > 0 {
		add("Documentation:\n\n")
		for _, d := range in.Docs {
			if !add("- " + d + "\n") {
				break
			}
		}
		b.WriteString("\n")
	}
	b.WriteString(turns(in.Turns))
	if in.PriorSQL != "" {
		fmt.Fprintf(&b, "Your previous answer\n```sql\n%s\n```\nfailed with: %s\nWrite a corrected statement.\n\n", in.PriorSQL, in.PriorError)
	}
	fmt.Fprintf(&b, "Question: %s\n", in.Question)
	return b.String()
}

// turns renders a conversation's previous turns (questions and SQL, never
// rows), as many of the latest as fit in MaxTurnsBytes, oldest first, with
// the instruction to answer the question as a standalone statement.
func turns(ts []Turn) string {
	if len(ts) == 0 {
		return ""
	}
	var kept []string
	budget := MaxTurnsBytes
	for i := len(ts) - 1; i >= 0; i-- {
		s := fmt.Sprintf("Q: %s\n```sql\n%s\n```\n\n", ts[i].Question, ts[i].SQL)
		if len(s) > budget {
			break
		}
		budget -= len(s)
		kept = append([]string{s}, kept...)
	}
	return "Earlier turns of this conversation, oldest first:\n\n" + strings.Join(kept, "") +
		"The question may refine the last turn (a follow-up such as \"and only for 2024?\"): answer it with one standalone statement.\n\n"
}

// QuestionPrompt asks an LLM for the question a SQL statement answers.
func QuestionPrompt(sql string) string {
	return "Write the one question, in plain English, that this PostgreSQL query answers. Reply with the question only.\n\n```sql\n" + sql + "\n```\n"
}

// fromReply turns an LLM reply into Output, or ErrNoSQL when it declined.
func fromReply(reply string) (Output, error) {
	sql := ExtractSQL(reply)
	up := strings.ToUpper(sql)
	if sql == "" || strings.Contains(up, "NO_SQL") || !(strings.HasPrefix(up, "SELECT") || strings.HasPrefix(up, "WITH") || strings.HasPrefix(up, "VALUES") || strings.HasPrefix(up, "(")) {
		return Output{}, ErrNoSQL("the model did not answer with a query")
	}
	return Output{SQL: sql}, nil
}
