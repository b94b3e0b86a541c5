package probe

import (
	"context"

	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/embed"
	"github.com/dbchat/dbchat/internal/generate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// The NL→SQL path under test. The probe always uses the offline generator
// and the local embedder: deterministic, no network, no LLM cost. What the
// probe checks does not depend on the generator: retrieval reads training
// data under the tenant's policy, and generated SQL runs in the sandbox, so
// whatever a generator writes, the other tenant's marker must not come back.

func (p *prober) newAsk() {
	p.store = &nlsql.Store{DB: p.db, Embedder: embed.NewLocal()}
	p.ask = ask.New(p.db, p.svc, p.store, generate.NewOffline())
}

// seedRetrieval trains the tenant's default model with an embedded,
// marked question/SQL pair, so that retrieval for a similar question would
// find it (and, were isolation broken, the other tenant's too).
func (p *prober) seedRetrieval(ctx context.Context, t *probeTenant, question, sql string) error {
	var modelID uuid.UUID
	err := p.db.TxAs(ctx, t.identity, func(tx tenant.Conn) error {
		var err error
		modelID, err = nlsql.ModelID(ctx, tx, provision.DefaultModel)
		return err
	})
	if err != nil {
		return err
	}
	items, err := p.store.Add(tenant.NewContext(ctx, t.identity), modelID,
		[]nlsql.NewItem{{Kind: nlsql.KindSQL, Question: question, Content: sql}}, nlsql.SourceUser)
	if err != nil {
		return err
	}
	if len(items) > 0 {
		t.ids["training data (embedded)"] = items[0].ID
	}
	return nil
}
