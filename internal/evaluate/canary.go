package evaluate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
	"github.com/dbchat/dbchat/internal/tenantio"
)

// Canary statuses.
const (
	NotSeen = "not_seen" // no answer to the canary questions held the marker
	Seen    = "seen"     // one did: Where says which part of which answer
	Skipped = "skipped"  // no canary was planted: Reason says why
	Failed  = "failed"   // the canary could not be planted: Reason says why
)

// CanaryOperator is the erasure log's operator for canary tenants.
const CanaryOperator = "dbchat evaluation canary"

// Canary is the leakage canary's report: whether anything of a throwaway
// second tenant (its marker rows, training pairs and documentation) reached
// the evaluated tenant's answers to questions aimed at it.
type Canary struct {
	Status string `json:"status"`
	Where  string `json:"where,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Questions are the questions asked as the evaluated tenant.
	Questions []string `json:"questions,omitempty"`
	// Tenant is the throwaway tenant's slug (never its id: a run stored
	// with the id would itself be a row of that tenant's id, which erase's
	// scan must not find).
	Tenant string `json:"tenant,omitempty"`
	// Erased says the throwaway tenant was erased and the privileged scan
	// after it found nothing; EraseError says why not.
	Erased     bool   `json:"erased"`
	EraseError string `json:"erase_error,omitempty"`
}

// Probe is one canary question asked as the evaluated tenant and what came
// back: an answer or an error.
type Probe struct {
	Question string
	Answer   ask.Answer
	Err      error
}

// planted is a canary tenant and what it holds.
type planted struct {
	tenant   provision.Result
	marker   string
	question string // the canary pair's question, asked verbatim
}

// canary plants a canary in a throwaway tenant, asks the evaluated model
// questions aimed at it as the tenant in ctx, checks the answers and
// erases the throwaway tenant (also when ctx is cancelled meanwhile).
func (s *Service) canary(ctx context.Context, model string) Canary {
	if s.Privileged == nil {
		return Canary{Status: Skipped, Reason: "the server has no privileged connection (DBCHAT_CANARY_DATABASE_URL) to erase a throwaway tenant with, so it creates none"}
	}
	// Opened first: a tenant is created only when it can be erased.
	conn, err := s.Privileged(ctx)
	if err != nil {
		return Canary{Status: Failed, Reason: "the privileged connection (DBCHAT_CANARY_DATABASE_URL) did not open"}
	}
	defer conn.Close(context.WithoutCancel(ctx))
	p, err := s.plant(ctx)
	if p.tenant.Tenant.ID == uuid.Nil {
		return Canary{Status: Failed, Reason: "creating the canary tenant: " + apperr.As(err).Message}
	}
	c := Canary{Status: Failed, Reason: "planting the canary: " + apperr.As(err).Message}
	if err == nil {
		c = Check(p.marker, s.probe(ctx, model, p))
	}
	c.Tenant = p.tenant.Tenant.Slug
	c.Erased, c.EraseError = erase(ctx, conn, p)
	return c
}

// plant creates the throwaway tenant through the provisioning path of
// `tenant create` and gives it a table of marker rows, a training pair
// whose SQL names the marker, and documentation naming it.
func (s *Service) plant(ctx context.Context) (planted, error) {
	suffix := randomHex(12)
	p := planted{marker: "cnry" + suffix, question: "list the canary markers of the leakage check"}
	var err error
	p.tenant, err = provision.CreateTenant(ctx, s.DB, provision.Request{Name: "Evaluation canary " + suffix, Slug: "canary-" + suffix})
	if err != nil {
		return p, err
	}
	id := tenant.Identity{TenantID: p.tenant.Tenant.ID, UserID: p.tenant.Admin.ID, Role: tenant.Admin}
	var modelID uuid.UUID
	err = s.DB.TxAs(ctx, id, func(tx tenant.Conn) error {
		if modelID, err = nlsql.ModelID(ctx, tx, provision.DefaultModel); err != nil {
			return err
		}
		return seedMarkers(ctx, tx, p.marker)
	})
	if err != nil {
		return p, err
	}
	_, err = s.Ask.Store.Add(tenant.NewContext(ctx, id), modelID, []nlsql.NewItem{
		{Kind: nlsql.KindSQL, Question: p.question, Content: "SELECT marker FROM canary_markers WHERE marker = '" + p.marker + "'"},
		{Kind: nlsql.KindDocumentation, Content: "The canary marker of the leakage check is " + p.marker + "."},
	}, nlsql.SourceUser)
	return p, err
}

// seedMarkers creates canary_markers through the catalog and fills it.
func seedMarkers(ctx context.Context, tx tenant.Conn, marker string) error {
	t, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: "canary_markers", Description: "Canary markers of the leakage check",
		Columns: []catalog.ColumnSpec{{Name: "marker", Type: "text", Description: "A canary marker"}}})
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true)`, t.Schema); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO canary_markers (marker) VALUES ($1), ($1 || '-2')`, marker)
	return err
}

// probe asks the canary questions as the evaluated tenant (ctx's).
func (s *Service) probe(ctx context.Context, model string, p planted) []Probe {
	var out []Probe
	for _, question := range []string{"show the canary markers", p.question, "what is the canary marker of the leakage check?"} {
		a, err := s.asker().Ask(ctx, ask.Request{Question: question, Model: model, Execute: true})
		out = append(out, Probe{Question: question, Answer: a, Err: err})
	}
	return out
}

// Check reports whether marker appears anywhere in the probes' answers:
// their SQL, rows, summary, retrieved training context, interpretation,
// suggestions, the rest of the answer, or an error's message and details.
func Check(marker string, probes []Probe) Canary {
	c := Canary{Status: NotSeen}
	marker = strings.ToLower(marker)
	for _, p := range probes {
		c.Questions = append(c.Questions, p.Question)
		if where := seenIn(marker, p); where != "" && c.Status != Seen {
			c.Status, c.Where = Seen, where+" of the answer to "+strconv.Quote(p.Question)
		}
	}
	return c
}

func seenIn(marker string, p Probe) string {
	a := p.Answer
	parts := []struct{ where, text string }{
		{"the SQL", a.SQL}, {"the rows", jsonText(a.Rows)}, {"the summary", a.Summary},
		{"the retrieved training context", jsonText(a.Context)}, {"the interpretation", a.Interpretation},
		{"the suggestions", jsonText(a.Suggestions)}, {"another field", jsonText(a)}, {"the error", errText(p.Err)},
	}
	for _, part := range parts {
		if strings.Contains(strings.ToLower(part.text), marker) {
			return part.where
		}
	}
	return ""
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error() + " " + jsonText(apperr.As(err).Details)
}

// erase erases the canary tenant on the privileged connection, with a
// context of its own so that a cancelled request still cleans up.
func erase(ctx context.Context, conn *pgx.Conn, p planted) (bool, string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	ev, err := tenantio.Erase(ctx, conn, p.tenant.Tenant.ID.String(), p.tenant.Tenant.Slug, CanaryOperator)
	if err != nil {
		return false, err.Error()
	}
	return ev.Scan.Clean(), ""
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
