// Package probe is the live isolation self-test behind `dbchat audit
// --probe`. It creates two throwaway tenants, A and B, through the real
// operator path; writes rows carrying a unique marker into every platform
// table, a managed data table, training data and query history of each; then
// has each tenant attack the other's rows:
//
//   - directly, on every table, as dbchat_app in a tenant transaction
//     (tenant.DB.TxAs) and as dbchat_query (a plain connection with
//     SET LOCAL app.tenant_id, as the sandbox runs it): read, update,
//     delete, and rewrite its own rows into the other tenant;
//   - through every HTTP route that takes an id (the API the caller builds
//     with Config.API on the probe's own services, in-process behind an
//     httptest server): the other tenant's ids must answer 404, and no
//     response may carry the other tenant's marker;
//   - through the SQL sandbox (sandbox.Service.Run) and POST /v1/ask (the
//     NL→SQL pipeline with the offline generator, see ask.go): the other
//     tenant's marker must never appear.
//
// Every attempt is paired with controls (the same tenant on its own data,
// which must work) so that "blocked" is never vacuous, and the victim's rows
// are checksummed before and after the other tenant's attempts. Everything
// is removed at the end with the privileged connection (tenant rows cascade;
// the tenant data schemas are dropped) and the removal is verified.
package probe

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pgvector/pgvector-go"

	"github.com/dbchat/dbchat/internal/ask"
	"github.com/dbchat/dbchat/internal/audit"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/migrate"
	"github.com/dbchat/dbchat/internal/nlsql"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Config names the three connections the probe needs.
type Config struct {
	// AppURL logs in as the runtime role (DATABASE_URL): tenants are created
	// and attacked through it, as the server would.
	AppURL string
	// QueryURL logs in as dbchat_query (DBCHAT_QUERY_DATABASE_URL).
	QueryURL string
	// AdminURL is privileged (DBCHAT_ADMIN_DATABASE_URL): it checksums the
	// victims' rows and removes everything the probe created, which the
	// runtime role cannot (it may not delete tenants or drop schemas).
	AdminURL string
	// API builds the HTTP API to attack on the probe's own connections and
	// services, and lists its routes. The caller supplies it (dbchat audit:
	// server.New), so that this package does not depend on the HTTP layer.
	API func(Services) (http.Handler, []Endpoint)
}

// Services are what the probe connects and hands to Config.API: the runtime
// pool's DB, the SQL sandbox and the NL→SQL pipeline (offline generator,
// local embedder).
type Services struct {
	DB  *tenant.DB
	SQL *sandbox.Service
	Ask *ask.Service
}

// Endpoint is one routed method and path, in the router's syntax
// (/v1/users/:id).
type Endpoint struct {
	Method string
	Path   string
}

// DataTable is the managed data table each probe tenant gets.
const DataTable = "probe_data"

// probeTenant is one throwaway tenant and the ids of its marked rows.
type probeTenant struct {
	label     string
	modelName string // a model of its own (named without the marker: names are echoed in errors)
	id        uuid.UUID
	schema    string
	marker    string
	key       string
	identity  tenant.Identity
	ids       map[string]uuid.UUID // kind -> id of its marked row
	idp       probeIdP             // its identity provider, to sign tokens with (tokens.go)
}

// relation is a table the probe attacks.
type relation struct {
	schema, name string
	tcol         string // the tenant column: id on dbchat.tenants, tenant_id elsewhere
	updCol       string // a column dbchat_app may UPDATE ("" if none)
	owner        string // "" for platform tables, else the label of the tenant whose schema holds it
}

// unmarked are the platform tables whose rows have no column free text can
// go in (counters: a rate bucket, a quota's use, a credential epoch): a
// tenant's rows there are marked by its id, which every row carries,
// instead of its marker.
var unmarked = map[string]bool{"rate_buckets": true, "quota_usage": true, "credential_epochs": true}

// markOf is what marks t's rows in r.
func markOf(t *probeTenant, r relation) string {
	if r.schema == "dbchat" && unmarked[r.name] {
		return t.id.String()
	}
	return t.marker
}

func (r relation) ident() string { return pgx.Identifier{r.schema, r.name}.Sanitize() }
func (r relation) String() string {
	return r.schema + "." + r.name
}

type prober struct {
	cfg     Config
	admin   *pgx.Conn
	pool    *pgxpool.Pool
	appUser string
	db      *tenant.DB
	box     *tenant.Sandbox
	queries map[string]*pgx.Conn // a plain connection per query login, opened when needed
	svc     *sandbox.Service
	store   *nlsql.Store
	ask     *ask.Service
	res     *audit.ProbeResult
	tenants []*probeTenant
}

// Run runs the probe. An error means it could not run (a connection, the
// setup); what it created is removed even then. Attempts that do not go as
// expected are not errors: they are in the result, with Passed false.
func Run(ctx context.Context, cfg Config) (*audit.ProbeResult, error) {
	p := &prober{cfg: cfg, res: &audit.ProbeResult{StartedAt: time.Now().UTC(), Attempts: []audit.Attempt{}, Unavailable: []audit.Unavailable{}}}
	if err := p.connect(ctx); err != nil {
		p.close()
		return nil, err
	}
	defer p.close()
	err := p.run(ctx)
	p.res.Cleanup = p.cleanup(ctx)
	p.res.FinishedAt = time.Now().UTC()
	if err != nil {
		if !p.res.Cleanup.Done || len(p.res.Cleanup.Residue) > 0 {
			err = fmt.Errorf("%w; cleanup: %s", err, cleanupProblem(p.res.Cleanup))
		}
		return nil, err
	}
	return p.res, nil
}

func cleanupProblem(c audit.Cleanup) string {
	if c.Error != "" {
		return c.Error
	}
	return "residue: " + strings.Join(c.Residue, "; ")
}

func (p *prober) connect(ctx context.Context) error {
	for name, u := range map[string]string{"DATABASE_URL": p.cfg.AppURL, "DBCHAT_QUERY_DATABASE_URL": p.cfg.QueryURL, "DBCHAT_ADMIN_DATABASE_URL": p.cfg.AdminURL} {
		if u == "" {
			return fmt.Errorf("the probe needs %s", name)
		}
	}
	if p.cfg.API == nil {
		return errors.New("the probe needs the API to attack (Config.API)")
	}
	var err error
	if p.admin, err = pgx.Connect(ctx, p.cfg.AdminURL); err != nil {
		return fmt.Errorf("DBCHAT_ADMIN_DATABASE_URL: %w", err)
	}
	var canOwn bool
	if err := p.admin.QueryRow(ctx, `SELECT pg_has_role($1, 'MEMBER')`, migrate.OwnerRole).Scan(&canOwn); err != nil {
		return fmt.Errorf("DBCHAT_ADMIN_DATABASE_URL: %w", err)
	}
	if !canOwn {
		return fmt.Errorf("DBCHAT_ADMIN_DATABASE_URL must be a superuser or a member of %s (to remove the probe's tenants)", migrate.OwnerRole)
	}
	pcfg, err := pgxpool.ParseConfig(p.cfg.AppURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	pcfg.MaxConns = 4
	if p.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := p.pool.QueryRow(ctx, `SELECT current_user::text`).Scan(&p.appUser); err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	p.db = tenant.New(p.pool)
	if p.box, err = tenant.NewSandbox(ctx, p.cfg.QueryURL, 2); err != nil {
		return fmt.Errorf("DBCHAT_QUERY_DATABASE_URL: %w", err)
	}
	if err := p.box.FollowQueryShards(ctx, p.db); err != nil {
		return fmt.Errorf("DBCHAT_QUERY_DATABASE_URL: %w", err)
	}
	p.svc = sandbox.New(p.db, p.box)
	p.newAsk()
	p.queries = map[string]*pgx.Conn{}
	return nil
}

// queryConn is a plain connection as the query login of tenant id
// (the sandbox's split), the only one that may become its roles.
func (p *prober) queryConn(ctx context.Context, id uuid.UUID) (*pgx.Conn, error) {
	login := p.box.Login(id)
	if c := p.queries[login]; c != nil {
		return c, nil
	}
	cfg, err := pgx.ParseConfig(p.cfg.QueryURL)
	if err != nil {
		return nil, fmt.Errorf("DBCHAT_QUERY_DATABASE_URL: %w", err)
	}
	cfg.User = login
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("DBCHAT_QUERY_DATABASE_URL as %s: %w", login, err)
	}
	p.queries[login] = c
	return c, nil
}

func (p *prober) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, c := range p.queries {
		_ = c.Close(ctx)
	}
	if p.box != nil {
		p.box.Close()
	}
	if p.pool != nil {
		p.pool.Close()
	}
	if p.admin != nil {
		_ = p.admin.Close(ctx)
	}
}

func (p *prober) run(ctx context.Context) error {
	nonce := randomHex(5)
	for _, label := range []string{"A", "B"} {
		if err := p.createTenant(ctx, nonce, label); err != nil {
			return err
		}
	}
	a, b := p.tenants[0], p.tenants[1]
	for _, t := range p.tenants {
		p.res.Tenants = append(p.res.Tenants, audit.ProbeTenant{Label: t.label, ID: t.id.String(), Schema: t.schema, Marker: t.marker})
	}
	rels, err := p.relations(ctx)
	if err != nil {
		return err
	}
	if err := p.checkSeeded(ctx, rels); err != nil {
		return err
	}

	ts := p.newHTTP()
	defer ts.close()
	for _, pair := range [][2]*probeTenant{{a, b}, {b, a}} {
		actor, victim := pair[0], pair[1]
		before, err := p.snapshot(ctx, victim, rels)
		if err != nil {
			return err
		}
		if err := p.attackDirect(ctx, actor, victim, rels); err != nil {
			return err
		}
		if err := p.attackQueryRole(ctx, actor, victim, rels); err != nil {
			return err
		}
		p.reachAsQueryRole(ctx, actor, victim)
		if err := ts.attack(ctx, p, actor, victim); err != nil {
			return err
		}
		if err := ts.attackTokens(ctx, p, actor, victim); err != nil {
			return err
		}
		p.attackSandbox(ctx, actor, victim)
		after, err := p.snapshot(ctx, victim, rels)
		if err != nil {
			return err
		}
		p.integrity(actor, victim, before, after)
	}
	return nil
}

// createTenant provisions one tenant through the operator path and writes
// its marked rows.
func (p *prober) createTenant(ctx context.Context, nonce, label string) error {
	marker := "zzaudit" + nonce + strings.ToLower(label) + "marker"
	res, err := provision.CreateTenant(ctx, p.db, provision.Request{
		Name: "dbchat audit probe " + marker,
		Slug: "audit-probe-" + nonce + "-" + strings.ToLower(label),
	})
	if err != nil {
		return fmt.Errorf("probe: create tenant %s: %w", label, err)
	}
	t := &probeTenant{
		label: label, modelName: "audit-probe-" + nonce + "-" + strings.ToLower(label), id: res.Tenant.ID, schema: tenant.Schema(res.Tenant.ID), marker: marker, key: res.APIKey,
		identity: tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin},
		ids:      map[string]uuid.UUID{},
	}
	p.tenants = append(p.tenants, t) // from here on, cleanup removes it
	if err := p.seed(ctx, t); err != nil {
		return fmt.Errorf("probe: seed tenant %s: %w", label, err)
	}
	if err := p.seedRetrieval(ctx, t, t.question(), t.sql()); err != nil {
		return fmt.Errorf("probe: train tenant %s: %w", label, err)
	}
	return nil
}

// question and sql are the tenant's marked training pair.
func (t *probeTenant) question() string { return "which rows hold " + t.marker + "?" }
func (t *probeTenant) sql() string {
	return "SELECT v FROM " + DataTable + " WHERE v = '" + t.marker + "'"
}

// seedEvaluation verifies pair and records a marked evaluation run of
// it with one result.
func seedEvaluation(ctx context.Context, tx tenant.Conn, pair dbsqlc.TrainingData, marker string) (uuid.UUID, error) {
	q := dbsqlc.New()
	if _, err := q.SetTrainingVerifiedMany(ctx, tx, dbsqlc.SetTrainingVerifiedManyParams{ModelID: pair.ModelID, Ids: []uuid.UUID{pair.ID}}); err != nil {
		return uuid.Nil, err
	}
	run, err := q.CreateEvaluation(ctx, tx, dbsqlc.CreateEvaluationParams{ModelID: pair.ModelID, Generator: marker, Embedder: marker,
		Pairs: 1, ExactCorrect: 1, SubsetCorrect: 1, Canary: []byte(`{"status":"not_seen","tenant":"` + marker + `"}`)})
	if err != nil {
		return uuid.Nil, err
	}
	return run.ID, q.InsertEvaluationResults(ctx, tx, dbsqlc.InsertEvaluationResultsParams{EvaluationID: run.ID, Positions: []int32{1},
		TrainingIds: []uuid.UUID{pair.ID}, Questions: []string{*pair.Question}, GoldSqls: []string{pair.Content},
		GeneratedSqls: []string{pair.Content}, Outcomes: []string{"correct"}, ExactMatches: []bool{true}, SubsetMatches: []bool{true},
		Errors: []string{marker}, LatenciesMs: []float64{1}})
}

// seed writes a marked row into every platform table (the tenant row, via
// its name, exists already), a managed data table with a marked row,
// training data, query history and a conversation with one turn.
func (p *prober) seed(ctx context.Context, t *probeTenant) error {
	q := dbsqlc.New()
	return p.db.TxAs(ctx, t.identity, func(tx tenant.Conn) error {
		u, err := q.CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: t.marker + "@example.invalid", Name: t.marker, Role: "member"})
		if err != nil {
			return err
		}
		t.ids["user"] = u.ID
		k, err := auth.Generate(t.id)
		if err != nil {
			return err
		}
		key, err := q.CreateAPIKey(ctx, tx, dbsqlc.CreateAPIKeyParams{UserID: u.ID, Name: t.marker, Prefix: k.Prefix, KeyHash: k.Hash})
		if err != nil {
			return err
		}
		t.ids["api key"] = key.ID
		// A browser session of the probe's user, marked by its User-Agent.
		sh := make([]byte, 32)
		if _, err := rand.Read(sh); err != nil {
			return err
		}
		if _, err := q.CreateSession(ctx, tx, dbsqlc.CreateSessionParams{TokenHash: sh,
			UserAgent: t.marker, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			return err
		}
		m, err := q.CreateModel(ctx, tx, dbsqlc.CreateModelParams{Name: t.modelName, Description: t.marker})
		if err != nil {
			return err
		}
		t.ids["model"] = m.ID
		tbl, err := catalog.Create(ctx, tx, catalog.TableSpec{Name: DataTable, Description: t.marker,
			Columns: []catalog.ColumnSpec{{Name: "v", Type: "text", Description: t.marker}}})
		if err != nil {
			return err
		}
		t.ids["table"] = tbl.ID
		t.ids["column"] = tbl.Columns[0].ID
		if _, err := tx.Exec(ctx, `INSERT INTO `+tbl.Ident().Sanitize()+` (v) VALUES ($1)`, t.marker); err != nil {
			return err
		}
		// A claim policy on it that tenant admins bypass: the probe acts as
		// the admin, so its controls still see the marked row.
		cp, err := q.CreateClaimPolicy(ctx, tx, dbsqlc.CreateClaimPolicyParams{TableID: tbl.ID, Name: "p_" + t.marker,
			ColumnName: "v", Claim: t.marker, Op: "eq", AdminsBypass: true})
		if err != nil {
			return err
		}
		t.ids["claim policy"] = cp
		question, sql := t.question(), t.sql()
		// Embedded under the marker as the embedder's name, so that the
		// count the trigger keeps (dbchat.training_counts) is marked too;
		// no question is ever embedded by that name.
		vec := make([]float32, 768)
		vec[0] = 1
		emb := pgvector.NewVector(vec)
		td, err := q.CreateTrainingData(ctx, tx, dbsqlc.CreateTrainingDataParams{ModelID: m.ID, Kind: "sql", Question: &question, Content: sql,
			Embedding: &emb, Embedder: &t.marker})
		if err != nil {
			return err
		}
		t.ids["training data"] = td.ID
		if t.ids["evaluation"], err = seedEvaluation(ctx, tx, td, t.marker); err != nil {
			return err
		}
		h, err := q.CreateQueryHistory(ctx, tx, dbsqlc.CreateQueryHistoryParams{ModelID: &m.ID, Question: &question, GeneratedSql: &sql, Status: "success"})
		if err != nil {
			return err
		}
		t.ids["history"] = h.ID
		c, err := q.CreateConversation(ctx, tx, dbsqlc.CreateConversationParams{ModelID: m.ID, Title: t.marker})
		if err != nil {
			return err
		}
		t.ids["conversation"] = c.ID
		if _, err = q.CreateMessage(ctx, tx, dbsqlc.CreateMessageParams{ConversationID: c.ID, UserID: c.UserID,
			Question: question, ResolvedQuestion: question, Sql: &sql, HistoryID: &h.ID}); err != nil {
			return err
		}
		// Usage (the marker as generator and model), a quota's use and a
		// rate bucket (marked by the tenant id: see unmarked).
		if err := q.RecordUsage(ctx, tx, dbsqlc.RecordUsageParams{Kind: "sql", Outcome: "answered", Generator: t.marker, LlmModel: t.marker,
			RetrieveHist: []int32{}, GenerateHist: []int32{}, ValidateHist: []int32{}, ExecuteHist: []int32{}}); err != nil {
			return err
		}
		if err := q.AddQuotaUsage(ctx, tx, dbsqlc.AddQuotaUsageParams{Quota: "questions_per_day", Period: "day", N: 1}); err != nil {
			return err
		}
		rate := 1000.0
		if _, err := q.TakeRequestToken(ctx, tx, dbsqlc.TakeRequestTokenParams{DefaultRate: &rate, DefaultBurst: &rate}); err != nil {
			return err
		}
		// An identity provider (an inline key set: nothing is fetched) and
		// a user it provisioned.
		jwks, idpKey, err := probeJWKS(t.marker)
		if err != nil {
			return err
		}
		t.idp = probeIdP{issuer: "https://" + t.marker + ".probe.invalid", audience: t.marker, kid: t.marker, key: idpKey, jwks: jwks}
		idp, err := q.CreateIdentityProvider(ctx, tx, dbsqlc.CreateIdentityProviderParams{
			Issuer: t.idp.issuer, Audience: t.idp.audience, Jwks: jwks, UserClaim: "sub",
			EmailClaim: "email", RoleClaim: "role", AdminValues: []string{t.marker}, PassClaims: []string{t.marker},
		})
		if err != nil {
			return err
		}
		t.ids["identity provider"] = idp.ID
		_, err = q.ProvisionUser(ctx, tx, dbsqlc.ProvisionUserParams{Email: t.marker + "-idp@example.invalid",
			FallbackEmail: t.marker + "-idp@users.invalid", Name: t.marker, Role: "member", IdentityProviderID: idp.ID, Subject: t.marker})
		return err
	})
}

// probeJWKS is a one-key JWK set (a fresh Ed25519 public key) for the
// probe's identity providers, and its private key.
func probeJWKS(kid string) ([]byte, ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: kid, Use: "sig"}}})
	return jwks, priv, err
}

// relations lists every platform table and the probe tenants' data tables,
// from the catalog, so a table added later is attacked too.
func (p *prober) relations(ctx context.Context) ([]relation, error) {
	schemas := []string{p.tenants[0].schema, p.tenants[1].schema}
	rows, err := p.admin.Query(ctx, `
		SELECT n.nspname::text, c.relname::text,
		       CASE WHEN n.nspname = 'dbchat' AND c.relname = 'tenants' THEN 'id' ELSE 'tenant_id' END,
		       coalesce((SELECT a.attname::text FROM pg_catalog.pg_attribute a
		                 WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		                   AND a.attidentity = '' AND a.attgenerated = ''
		                   AND has_column_privilege($2, c.oid, a.attnum, 'UPDATE')
		                 ORDER BY a.attname IN ('id', 'tenant_id'), a.attnum LIMIT 1), '')
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND (n.nspname = 'dbchat' OR n.nspname = ANY ($1))
		ORDER BY n.nspname <> 'dbchat', 1, 2`, schemas, p.appUser)
	if err != nil {
		return nil, fmt.Errorf("probe: list tables: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (relation, error) {
		var r relation
		err := row.Scan(&r.schema, &r.name, &r.tcol, &r.updCol)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("probe: list tables: %w", err)
	}
	for i := range out {
		for _, t := range p.tenants {
			if out[i].schema == t.schema {
				out[i].owner = t.label
			}
		}
	}
	return out, nil
}

// asOwner runs fn on the admin connection in a transaction as dbchat_owner
// scoped to id (its tenant, and its user: the tenant's admin), rolled back
// unless commit: the forced policies then show exactly that tenant's rows,
// whether the admin is a superuser or not.
func (p *prober) asOwner(ctx context.Context, id tenant.Identity, commit bool, fn func(tx pgx.Tx) error) error {
	tx, err := p.admin.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
	if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+migrate.OwnerRole); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true), set_config('app.role', $3, true)`,
		id.TenantID.String(), id.UserID.String(), string(id.Role)); err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return err
	}
	if commit {
		return tx.Commit(ctx)
	}
	return nil
}

// checkSeeded verifies each tenant has a marked row in every table it should,
// so that no attack below is vacuous. A table the probe does not write yet
// (added after it) is reported as a failed attempt.
func (p *prober) checkSeeded(ctx context.Context, rels []relation) error {
	for _, t := range p.tenants {
		for _, r := range rels {
			if r.owner != "" && r.owner != t.label {
				continue
			}
			var n int64
			err := p.asOwner(ctx, t.identity, false, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM `+r.ident()+` x WHERE x::text LIKE '%' || $1 || '%'`, markOf(t, r)).Scan(&n)
			})
			if err != nil {
				return fmt.Errorf("probe: check seeded rows in %s: %w", r, err)
			}
			if n == 0 {
				p.add(audit.Attempt{Channel: "setup", Actor: t.label, Victim: t.label, Action: "seed", Target: r.String(),
					Expected: "a marked row of the tenant, so attacks on this table are not vacuous",
					Outcome:  "no marked row: the probe does not write this table yet (extend internal/audit/probe seed)", Passed: false})
			}
		}
	}
	return nil
}

// snapshot checksums a tenant's rows in every platform table and its data
// tables, and lists the relations of its schema.
func (p *prober) snapshot(ctx context.Context, t *probeTenant, rels []relation) (map[string]string, error) {
	out := map[string]string{}
	err := p.asOwner(ctx, t.identity, false, func(tx pgx.Tx) error {
		for _, r := range rels {
			if r.owner != "" && r.owner != t.label {
				continue
			}
			var n int64
			var sum string
			if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '')
				FROM %s x WHERE x.%s = $1`, r.ident(), pgx.Identifier{r.tcol}.Sanitize()), t.id).Scan(&n, &sum); err != nil {
				return err
			}
			out[r.String()] = fmt.Sprintf("%d rows, md5 %s", n, sum)
		}
		var rels string
		if err := tx.QueryRow(ctx, `SELECT coalesce(string_agg(c.relname::text, ',' ORDER BY c.relname), '')
			FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`, t.schema).Scan(&rels); err != nil {
			return err
		}
		out["schema "+t.schema] = rels
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("probe: checksum tenant %s: %w", t.label, err)
	}
	return out, nil
}

func (p *prober) integrity(actor, victim *probeTenant, before, after map[string]string) {
	var changed []string
	for k, v := range before {
		if after[k] != v {
			changed = append(changed, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			changed = append(changed, k)
		}
	}
	a := audit.Attempt{Channel: "integrity", Actor: actor.label, Victim: victim.label, Action: "verify",
		Target:    fmt.Sprintf("tenant %s's rows in %d relations", victim.label, len(before)-1),
		Statement: "count and md5 of every row of the victim, per table, before and after the attempts",
		Expected:  "unchanged", Passed: len(changed) == 0,
		Cells: []string{audit.CellViewOther, audit.CellCreateOther, audit.CellExecOther, audit.CellTraining, audit.CellHistory}}
	if a.Passed {
		a.Outcome = "unchanged"
	} else {
		a.Outcome = "CHANGED: " + strings.Join(changed, ", ")
	}
	p.add(a)
}

func (p *prober) add(a audit.Attempt) {
	a.ID = len(p.res.Attempts) + 1
	p.res.Attempts = append(p.res.Attempts, a)
}

// errRollback ends a probe transaction without committing anything.
var errRollback = errors.New("probe: rollback")

// cellsFor maps a table to the matrix cells an attack on it backs.
func cellsFor(r relation, queryRole bool) []string {
	var cells []string
	switch {
	case r.owner != "":
		cells = append(cells, audit.CellViewOther)
		if queryRole {
			cells = append(cells, audit.CellExecOther)
		}
	case r.name == "database_tables" || r.name == "database_columns":
		cells = append(cells, audit.CellViewOther)
	case r.name == "training_data" || r.name == "models":
		cells = append(cells, audit.CellTraining)
	case r.name == "query_history" || r.name == "conversations" || r.name == "messages":
		cells = append(cells, audit.CellHistory)
	}
	return cells
}

// outcome describes a statement's result and whether it counts as blocked:
// a privilege error (42501, which is also what a WITH CHECK violation
// raises) or no row read or touched.
func outcome(n int64, err error, verb string) (string, bool) {
	var pg *pgconn.PgError
	switch {
	case err == nil && n == 0:
		return "0 rows " + verb, true
	case err == nil:
		return fmt.Sprintf("LEAK: %d rows %s", n, verb), false
	case errors.As(err, &pg) && pg.Code == "42501":
		return "refused: " + pg.Code + " " + pg.Message, true
	case errors.As(err, &pg):
		return "unexpected error: " + pg.Code + " " + pg.Message, false
	}
	return "unexpected error: " + err.Error(), false
}

// scrub fails an attempt whose outcome text carries the victim's marker.
func scrub(a *audit.Attempt, victim *probeTenant) {
	if victim != nil && strings.Contains(a.Outcome, victim.marker) {
		a.Passed = false
		a.Outcome = "MARKER LEAKED: " + a.Outcome
	}
}

// sqlLogin is one of the two logins the probe attacks the tables with
// directly. run executes one statement as the actor and rolls it back: a
// read returns its count(*), a write the rows it touched.
type sqlLogin struct {
	channel string
	query   bool // dbchat_query in the actor's tenant role (SELECT only); else dbchat_app
	run     func(stmt string, read bool, args ...any) (int64, error)
}

// asApp runs statements as dbchat_app in the actor's tenant transaction
// (tenant.DB.TxAs), each in its own transaction.
func (p *prober) asApp(ctx context.Context, actor *probeTenant) sqlLogin {
	return sqlLogin{channel: "sql as dbchat_app", run: func(sql string, read bool, args ...any) (int64, error) {
		var n int64
		var stmtErr error
		err := p.db.TxAs(ctx, actor.identity, func(tx tenant.Conn) error {
			if read {
				stmtErr = tx.QueryRow(ctx, sql, args...).Scan(&n)
			} else {
				tag, err := tx.Exec(ctx, sql, args...)
				n, stmtErr = tag.RowsAffected(), err
			}
			return errRollback
		})
		if stmtErr == nil && err != nil && !errors.Is(err, errRollback) {
			stmtErr = err
		}
		return n, stmtErr
	}}
}

// asQuery runs statements as dbchat_query in a transaction scoped to the
// actor and in the actor's role, as the sandbox would (but READ WRITE and
// without the parser, to test the database layer alone).
func (p *prober) asQuery(ctx context.Context, actor *probeTenant) sqlLogin {
	return sqlLogin{channel: "sql as dbchat_query", query: true, run: func(sql string, read bool, args ...any) (int64, error) {
		conn, err := p.queryConn(ctx, actor.id)
		if err != nil {
			return 0, err
		}
		tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadWrite})
		if err != nil {
			return 0, err
		}
		defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // always rolled back
		// As the tenant's admin, so the claim policy (admins_bypass) on the
		// data table shows the admin every row, as the service would.
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL app.tenant_id = '%s'`, actor.id)); err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL app.role = 'admin'`); err != nil {
			return 0, err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+pgx.Identifier{actor.schema}.Sanitize()); err != nil {
			return 0, err
		}
		if read {
			var n int64
			err := tx.QueryRow(ctx, sql, args...).Scan(&n)
			return n, err
		}
		tag, err := tx.Exec(ctx, sql, args...)
		return tag.RowsAffected(), err
	}}
}

// attackTables runs, as one login, a control and the attacks on every
// table, each statement in its own transaction, rolled back: as dbchat_app
// a control on every platform table and on the actor's own data table,
// then read, update, delete and move (rewrite its own rows into the victim)
// on the victim's rows; as dbchat_query a control on its own data table and
// read, update and delete, which its SELECT-only rights must refuse.
func (p *prober) attackTables(ctx context.Context, l sqlLogin, actor, victim *probeTenant, rels []relation) error {
	move := func(r relation, expected string, cells []string) audit.Attempt {
		tcol := pgx.Identifier{r.tcol}.Sanitize()
		stmt := fmt.Sprintf(`UPDATE %s SET %s = $1 WHERE %s = $2`, r.ident(), tcol, tcol)
		n, err := l.run(stmt, false, victim.id, actor.id)
		a := audit.Attempt{Channel: l.channel, Actor: actor.label, Victim: victim.label, Action: "move", Target: r.String(),
			Statement: stmt, Expected: expected, Cells: cells}
		a.Outcome, a.Passed = outcome(n, err, "moved into the other tenant")
		if err == nil && n == 0 {
			a.Passed, a.Outcome = false, "inconclusive: the actor's own rows were not visible"
		}
		return a
	}
	for _, r := range rels {
		if err := ctx.Err(); err != nil {
			return err
		}
		tcol := pgx.Identifier{r.tcol}.Sanitize()
		cells := cellsFor(r, l.query)
		own := r.owner == actor.label
		if own || (r.owner == "" && !l.query) {
			// Control: the actor sees its own rows.
			stmt := fmt.Sprintf(`SELECT count(*) FROM %s x WHERE x::text LIKE '%%' || $1 || '%%'`, r.ident())
			n, err := l.run(stmt, true, markOf(actor, r))
			a := audit.Attempt{Channel: l.channel, Actor: actor.label, Victim: actor.label, Action: "control", Control: true,
				Target: r.String(), Statement: stmt, Expected: "its own marked rows are visible", Passed: err == nil && n > 0}
			if err != nil {
				a.Outcome, _ = outcome(0, err, "")
			} else {
				a.Outcome = fmt.Sprintf("%d own rows visible", n)
			}
			switch {
			case l.query:
				a.Cells = []string{audit.CellExecSame}
			case r.owner != "":
				a.Cells = []string{audit.CellViewSame}
			}
			p.add(a)
		}
		if own {
			// The actor's own data table holds nothing of the victim's; as
			// dbchat_app it can only try to rewrite its rows into the
			// victim (WITH CHECK).
			if !l.query {
				p.add(move(r, "refused (WITH CHECK)", nil))
			}
			continue
		}
		// Read: the victim's rows, by tenant column or by marker.
		stmt := fmt.Sprintf(`SELECT count(*) FROM %s x WHERE x.%s = $1 OR x::text LIKE '%%' || $2 || '%%'`, r.ident(), tcol)
		n, err := l.run(stmt, true, victim.id, victim.marker)
		a := audit.Attempt{Channel: l.channel, Actor: actor.label, Victim: victim.label, Action: "read", Target: r.String(),
			Statement: stmt, Expected: "no row of the other tenant", Cells: cells}
		a.Outcome, a.Passed = outcome(n, err, "visible")
		scrub(&a, victim)
		p.add(a)

		// Update (a column the runtime role may update) and delete the
		// victim's rows.
		col := r.updCol
		if col == "" {
			col = r.tcol
		}
		qcol := pgx.Identifier{col}.Sanitize()
		for _, w := range []struct{ action, stmt, verb string }{
			{"update", fmt.Sprintf(`UPDATE %s SET %s = %s WHERE %s = $1`, r.ident(), qcol, qcol, tcol), "updated"},
			{"delete", fmt.Sprintf(`DELETE FROM %s WHERE %s = $1`, r.ident(), tcol), "deleted"},
		} {
			expected := "no row " + w.verb
			if l.query {
				expected = "refused: SELECT only"
			}
			n, err := l.run(w.stmt, false, victim.id)
			a := audit.Attempt{Channel: l.channel, Actor: actor.label, Victim: victim.label, Action: w.action, Target: r.String(),
				Statement: w.stmt, Expected: expected, Cells: cells}
			a.Outcome, a.Passed = outcome(n, err, w.verb)
			scrub(&a, victim)
			p.add(a)
		}

		// Move: rewrite the actor's own rows into the victim (WITH CHECK).
		if r.owner == "" && !l.query {
			a := move(r, "refused (WITH CHECK or privilege)", cells)
			scrub(&a, victim)
			p.add(a)
		}
	}
	return nil
}

// attackDirect attacks every table as dbchat_app in the actor's
// transaction (attackTables), then tries DDL in the victim's schema.
func (p *prober) attackDirect(ctx context.Context, actor, victim *probeTenant, rels []relation) error {
	app := p.asApp(ctx, actor)
	if err := p.attackTables(ctx, app, actor, victim, rels); err != nil {
		return err
	}
	// Create: DDL in the victim's schema.
	stmt := fmt.Sprintf(`CREATE TABLE %s (x int)`, pgx.Identifier{victim.schema, "probe_intruder"}.Sanitize())
	n, err := app.run(stmt, false)
	a := audit.Attempt{Channel: app.channel, Actor: actor.label, Victim: victim.label, Action: "create", Target: "schema " + victim.schema,
		Statement: stmt, Expected: "refused: no DDL rights", Cells: []string{audit.CellCreateOther}}
	if err == nil {
		a.Outcome, a.Passed = "LEAK: table created in the other tenant's schema (rolled back)", false
	} else {
		a.Outcome, a.Passed = outcome(n, err, "")
	}
	p.add(a)
	return nil
}

// attackQueryRole attacks every table as dbchat_query in the actor's role
// (attackTables), then tries to change the tenant or the role from inside
// SQL.
func (p *prober) attackQueryRole(ctx context.Context, actor, victim *probeTenant, rels []relation) error {
	q := p.asQuery(ctx, actor)
	if err := p.attackTables(ctx, q, actor, victim, rels); err != nil {
		return err
	}
	// Escalation: change the tenant or the role from inside SQL.
	for _, e := range []struct{ stmt, expected string }{
		{fmt.Sprintf(`SELECT count(*) FROM (SELECT set_config('app.tenant_id', '%s', true)) s`, victim.id), "refused: EXECUTE on set_config is revoked"},
		{`SELECT count(*) FROM (SELECT set_config('role', 'dbchat_app', true)) s`, "refused: EXECUTE on set_config is revoked"},
	} {
		n, err := q.run(e.stmt, true)
		a := audit.Attempt{Channel: q.channel, Actor: actor.label, Victim: victim.label, Action: "escalate", Target: "set_config",
			Statement: e.stmt, Expected: e.expected, Cells: []string{audit.CellExecOther}}
		var pg *pgconn.PgError
		if errors.As(err, &pg) && pg.Code == "42501" {
			a.Outcome, a.Passed = "refused: "+pg.Code+" "+pg.Message, true
		} else if err != nil {
			a.Outcome, _ = outcome(n, err, "")
		} else {
			a.Outcome = "LEAK: set_config ran"
		}
		p.add(a)
	}
	var pg *pgconn.PgError
	conn, err := p.queryConn(ctx, actor.id)
	if err != nil {
		return err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `SET ROLE `+migrate.AppRole)
	_ = tx.Rollback(context.WithoutCancel(ctx))
	a := audit.Attempt{Channel: q.channel, Actor: actor.label, Victim: victim.label, Action: "escalate", Target: "role " + migrate.AppRole,
		Statement: "SET ROLE " + migrate.AppRole, Expected: "refused: dbchat_query is a member of the tenant roles only", Cells: []string{audit.CellExecOther}}
	switch {
	case errors.As(err, &pg) && pg.Code == "42501":
		a.Outcome, a.Passed = "refused: "+pg.Code+" "+pg.Message, true
	case err != nil:
		a.Outcome = "unexpected error: " + err.Error()
	default:
		a.Outcome = "LEAK: the query role became the runtime role"
	}
	p.add(a)
	return nil
}

// attackSandbox sends the other tenant's names through the one path
// untrusted SQL takes; the victim's marker must never come back.
func (p *prober) attackSandbox(ctx context.Context, actor, victim *probeTenant) {
	const channel = "sandbox"
	actx := tenant.NewContext(ctx, actor.identity)
	vs := pgx.Identifier{victim.schema}.Sanitize()

	res, err := p.svc.Run(actx, sandbox.Request{SQL: "SELECT v FROM " + DataTable})
	a := audit.Attempt{Channel: channel, Actor: actor.label, Victim: actor.label, Action: "control", Control: true,
		Target: DataTable, Statement: "SELECT v FROM " + DataTable, Expected: "its own marked row",
		Cells: []string{audit.CellExecSame}}
	body := sandboxText(res, err)
	a.Passed = err == nil && strings.Contains(body, actor.marker) && !strings.Contains(body, victim.marker)
	a.Outcome = sandboxOutcome(res, err)
	if err == nil && !strings.Contains(body, actor.marker) {
		a.Outcome += "; own marker missing"
	}
	scrub(&a, victim)
	p.add(a)

	vid := victim.id.String()
	attacks := []struct {
		sql   string
		cells []string
	}{
		{"SELECT v FROM " + vs + "." + DataTable, []string{audit.CellExecOther}},
		{"WITH x AS (SELECT * FROM " + vs + "." + DataTable + ") SELECT * FROM x", []string{audit.CellExecOther}},
		{"SELECT v FROM " + DataTable + " UNION ALL SELECT v FROM " + vs + "." + DataTable, []string{audit.CellExecOther}},
		{"SELECT set_config('app.tenant_id', '" + vid + "', true)", []string{audit.CellExecOther}},
		{"SELECT v FROM " + vs + "." + DataTable + " WHERE set_config('app.tenant_id', '" + vid + "', true) IS NOT NULL", []string{audit.CellExecOther}},
		{"SET app.tenant_id = '" + vid + "'", []string{audit.CellExecOther}},
		{"SELECT * FROM dbchat.users", nil},
		{"SELECT name, description FROM dbchat.database_tables", []string{audit.CellViewOther}},
		{"SELECT question, content FROM dbchat.training_data", []string{audit.CellTraining}},
		{"SELECT question, generated_sql FROM dbchat.query_history", []string{audit.CellHistory}},
		{"SELECT title FROM dbchat.conversations", []string{audit.CellHistory}},
		{"SELECT question, resolved_question, sql FROM dbchat.messages", []string{audit.CellHistory}},
		{"SELECT query FROM pg_stat_activity", []string{audit.CellExecOther}},
	}
	for _, at := range attacks {
		res, err := p.svc.Run(actx, sandbox.Request{SQL: at.sql})
		body := sandboxText(res, err)
		a := audit.Attempt{Channel: channel, Actor: actor.label, Victim: victim.label, Action: "read", Target: at.sql,
			Statement: at.sql, Expected: "no row or text of the other tenant", Cells: at.cells}
		a.Outcome = sandboxOutcome(res, err)
		a.Passed = !strings.Contains(body, victim.marker)
		if !a.Passed {
			a.Outcome = "MARKER LEAKED: " + a.Outcome
		}
		p.add(a)
	}
	// Around the rows: every one refused, none naming the victim.
	for _, at := range BeyondRows(victim.schema) {
		res, err := p.svc.Run(actx, sandbox.Request{SQL: at.SQL, Timeout: time.Second})
		body := sandboxText(res, err)
		a := audit.Attempt{Channel: channel, Actor: actor.label, Victim: victim.label, Action: "reach", Target: at.Class,
			Statement: at.SQL, Expected: "refused, naming nothing of the other tenant", Cells: []string{audit.CellExecOther}}
		a.Outcome = sandboxOutcome(res, err)
		a.Passed = err != nil && !strings.Contains(body, victim.marker) && !strings.Contains(body, victim.id.String())
		if err == nil {
			a.Outcome = "RAN: " + a.Outcome
		}
		scrub(&a, victim)
		p.add(a)
	}
}

// reachAsQueryRole runs the attacks around the rows as dbchat_query in the
// actor's role, without the parser: the database alone must refuse each.
func (p *prober) reachAsQueryRole(ctx context.Context, actor, victim *probeTenant) {
	const channel = "sql as dbchat_query"
	for _, at := range BeyondRows(victim.schema) {
		if strings.ContainsRune(at.SQL, 0) {
			continue // refused at the edge; no statement reaches the server
		}
		a := audit.Attempt{Channel: channel, Actor: actor.label, Victim: victim.label, Action: "reach", Target: at.Class,
			Statement: at.SQL, Expected: "refused by the tenant role's privileges", Cells: []string{audit.CellExecOther}}
		err := p.queryAsRole(ctx, actor, at.SQL)
		var pg *pgconn.PgError
		switch {
		case errors.As(err, &pg) && pg.Code == "42501":
			a.Outcome, a.Passed = "refused: "+pg.Code+" "+pg.Message, true
		case err != nil:
			a.Outcome = "unexpected error: " + err.Error()
		default:
			a.Outcome = "RAN"
		}
		scrub(&a, victim)
		p.add(a)
	}
}

// queryAsRole runs sql read-only, as the sandbox would: the actor's tenant
// and role set locally, a one-second timeout, rolled back.
func (p *prober) queryAsRole(ctx context.Context, actor *probeTenant, sql string) error {
	conn, err := p.queryConn(ctx, actor.id)
	if err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // always rolled back
	for _, set := range []string{fmt.Sprintf(`SET LOCAL app.tenant_id = '%s'`, actor.id), `SET LOCAL app.role = 'admin'`,
		`SET LOCAL ROLE ` + pgx.Identifier{actor.schema}.Sanitize(), `SET LOCAL statement_timeout = 1000`} {
		if _, err := tx.Exec(ctx, set); err != nil {
			return err
		}
	}
	rows, err := tx.Query(ctx, sql)
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	rows.Close()
	return rows.Err()
}

func sandboxText(res sandbox.Result, err error) string {
	var b strings.Builder
	for _, row := range res.Rows {
		for _, v := range row {
			b.Write(v)
			b.WriteByte(' ')
		}
	}
	if err != nil {
		b.WriteString(err.Error())
	}
	return b.String()
}

func sandboxOutcome(res sandbox.Result, err error) string {
	if err != nil {
		return "refused: " + err.Error()
	}
	return fmt.Sprintf("ran: %d rows", res.RowCount)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// httpProbe is the API, in-process, in front of the runtime pool.
type httpProbe struct {
	ts        *httptest.Server
	endpoints []Endpoint
}

func (p *prober) newHTTP() *httpProbe {
	api, endpoints := p.cfg.API(Services{DB: p.db, SQL: p.svc, Ask: p.ask})
	return &httpProbe{ts: httptest.NewServer(api), endpoints: endpoints}
}

func (h *httpProbe) close() { h.ts.Close() }
