package dbtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/pgvector/pgvector-go"

	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Tenant is a tenant created for a test, with its first admin's key.
type Tenant struct {
	ID       uuid.UUID
	Slug     string
	AdminID  uuid.UUID
	APIKey   string
	Identity tenant.Identity
}

// NewTenant provisions a tenant through the real operator path.
func NewTenant(t testing.TB, db *tenant.DB, name string) Tenant {
	t.Helper()
	res, err := provision.CreateTenant(context.Background(), db, provision.Request{Name: name})
	if err != nil {
		t.Fatalf("dbtest: create tenant %q: %v", name, err)
	}
	return Tenant{
		ID: res.Tenant.ID, Slug: res.Tenant.Slug, AdminID: res.Admin.ID, APIKey: res.APIKey,
		Identity: tenant.Identity{TenantID: res.Tenant.ID, UserID: res.Admin.ID, Role: tenant.Admin},
	}
}

// SeededTables lists the platform tables SeedEveryTable writes to; the
// isolation tests compare it with the catalog, so a new table must be
// seeded (and thereby tested) before those tests pass.
var SeededTables = []string{
	"tenants", "users", "api_keys", "database_tables", "database_columns", "claim_policies",
	"models", "training_data", "training_counts", "query_history", "conversations", "messages",
	"rate_buckets", "quota_usage", "credential_epochs",
	"identity_providers", "usage_events", "usage_daily", "evaluations", "evaluation_results",
	"sessions",
}

// SeedEveryTable gives tn at least one row in every platform table (tenant,
// admin, key, default model and credential epoch exist already), each
// marked with marker.
func SeedEveryTable(t testing.TB, db *tenant.DB, tn Tenant, marker string) {
	t.Helper()
	ctx := context.Background()
	q := dbsqlc.New()
	err := db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		if _, err := q.CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: marker + "@example.com", Name: marker, Role: "member"}); err != nil {
			return err
		}
		tbl, err := q.CreateTable(ctx, tx, dbsqlc.CreateTableParams{Name: "t_" + marker, Description: marker})
		if err != nil {
			return err
		}
		if _, err := q.CreateColumn(ctx, tx, dbsqlc.CreateColumnParams{TableID: tbl.ID, Name: "c_" + marker, DataType: "text", Description: marker, IsNullable: true, Position: 1}); err != nil {
			return err
		}
		if err := seedClaimPolicy(ctx, tx, tbl, marker); err != nil {
			return err
		}
		model, err := q.GetModelByName(ctx, tx, provision.DefaultModel)
		if err != nil {
			return err
		}
		vec := make([]float32, 768)
		vec[0] = 1
		v := pgvector.NewVector(vec)
		embedder := "test"
		question := "what is " + marker + "?"
		pair, err := q.CreateTrainingData(ctx, tx, dbsqlc.CreateTrainingDataParams{ModelID: model.ID, Kind: "sql", Question: &question, Content: "SELECT '" + marker + "'", Embedding: &v, Embedder: &embedder})
		if err != nil {
			return err
		}
		if err := seedEvaluation(ctx, tx, pair, marker); err != nil {
			return err
		}
		sql := "SELECT '" + marker + "'"
		h, err := q.CreateQueryHistory(ctx, tx, dbsqlc.CreateQueryHistoryParams{ModelID: &model.ID, Question: &question, GeneratedSql: &sql, Status: "success"})
		if err != nil {
			return err
		}
		conv, err := q.CreateConversation(ctx, tx, dbsqlc.CreateConversationParams{ModelID: model.ID, Title: marker})
		if err != nil {
			return err
		}
		if _, err = q.CreateMessage(ctx, tx, dbsqlc.CreateMessageParams{ConversationID: conv.ID, UserID: conv.UserID,
			Question: question, ResolvedQuestion: question, Sql: &sql, HistoryID: &h.ID}); err != nil {
			return err
		}
		// A usage event and, by the same statement, its daily rollup row.
		if err := q.RecordUsage(ctx, tx, dbsqlc.RecordUsageParams{Kind: "ask", Outcome: "answered", HistoryID: &h.ID,
			Generator: marker, RetrieveHist: []int32{1}, GenerateHist: []int32{}, ValidateHist: []int32{}, ExecuteHist: []int32{}}); err != nil {
			return err
		}
		if err := seedLimits(ctx, tx); err != nil {
			return err
		}
		if err := seedSession(ctx, tx, marker); err != nil {
			return err
		}
		return seedIdentityProvider(ctx, tx, marker)
	})
	if err != nil {
		t.Fatalf("dbtest: seed %s: %v", tn.Slug, err)
	}
}

// seedLimits takes a request token (the tenant's rate bucket) and counts a
// question (its quota use) under a default rate limit.
func seedLimits(ctx context.Context, tx tenant.Conn) error {
	q, rate := dbsqlc.New(), 1.0
	if _, err := q.TakeRequestToken(ctx, tx, dbsqlc.TakeRequestTokenParams{DefaultRate: &rate}); err != nil {
		return err
	}
	return q.AddQuotaUsage(ctx, tx, dbsqlc.AddQuotaUsageParams{Quota: "questions_per_day", Period: "day", N: 1})
}

// seedEvaluation verifies pair and records an evaluation run over it, all
// marked.
func seedEvaluation(ctx context.Context, tx tenant.Conn, pair dbsqlc.TrainingData, marker string) error {
	q := dbsqlc.New()
	if _, err := q.SetTrainingVerifiedMany(ctx, tx, dbsqlc.SetTrainingVerifiedManyParams{ModelID: pair.ModelID, Ids: []uuid.UUID{pair.ID}}); err != nil {
		return err
	}
	run, err := q.CreateEvaluation(ctx, tx, dbsqlc.CreateEvaluationParams{ModelID: pair.ModelID, Generator: marker, Embedder: marker,
		Pairs: 1, ExactCorrect: 1, SubsetCorrect: 1, Canary: []byte(`{"status":"not_seen","tenant":"` + marker + `"}`)})
	if err != nil {
		return err
	}
	return q.InsertEvaluationResults(ctx, tx, dbsqlc.InsertEvaluationResultsParams{EvaluationID: run.ID, Positions: []int32{1},
		TrainingIds: []uuid.UUID{pair.ID}, Questions: []string{*pair.Question}, GoldSqls: []string{pair.Content},
		GeneratedSqls: []string{pair.Content}, Outcomes: []string{"correct"}, ExactMatches: []bool{true}, SubsetMatches: []bool{true},
		Errors: []string{""}, LatenciesMs: []float64{1}})
}

// seedIdentityProvider registers an identity provider (an inline key set)
// and a user it provisioned, both marked.
func seedIdentityProvider(ctx context.Context, tx tenant.Conn, marker string) error {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: marker, Use: "sig"}}})
	if err != nil {
		return err
	}
	q := dbsqlc.New()
	p, err := q.CreateIdentityProvider(ctx, tx, dbsqlc.CreateIdentityProviderParams{
		Issuer: "https://" + marker + ".idp.invalid", Audience: marker, Jwks: jwks, UserClaim: "sub",
		EmailClaim: "email", RoleClaim: "role", AdminValues: []string{marker}, PassClaims: []string{marker},
	})
	if err != nil {
		return err
	}
	_, err = q.ProvisionUser(ctx, tx, dbsqlc.ProvisionUserParams{Email: marker + "-idp@example.com", FallbackEmail: marker + "-idp@users.invalid",
		Name: marker, Role: "member", IdentityProviderID: p.ID, Subject: marker})
	return err
}

// seedSession signs the transaction's user in from a browser whose
// User-Agent is the marker (the token is random and thrown away).
func seedSession(ctx context.Context, tx tenant.Conn, marker string) error {
	hash := make([]byte, 32)
	if _, err := rand.Read(hash); err != nil {
		return err
	}
	_, err := dbsqlc.New().CreateSession(ctx, tx, dbsqlc.CreateSessionParams{TokenHash: hash, UserAgent: marker, ExpiresAt: time.Now().Add(time.Hour)})
	return err
}

// CreateKey mints an API key for userID inside tx (the tenant's transaction)
// and returns the plain key.
func CreateKey(ctx context.Context, tx tenant.Conn, tenantID, userID uuid.UUID) (string, error) {
	k, err := auth.Generate(tenantID)
	if err != nil {
		return "", err
	}
	_, err = dbsqlc.New().CreateAPIKey(ctx, tx, dbsqlc.CreateAPIKeyParams{UserID: userID, Name: "test", Prefix: k.Prefix, KeyHash: k.Hash})
	return k.Plain, err
}

// seedClaimPolicy creates the real table behind tbl (its one column,
// c_<marker>) and a claim policy on it, marked.
func seedClaimPolicy(ctx context.Context, tx tenant.Conn, tbl dbsqlc.DatabaseTable, marker string) error {
	q := dbsqlc.New()
	if _, err := q.CreateDataTable(ctx, tx, dbsqlc.CreateDataTableParams{Name: tbl.Name, Columns: `[{"name":"c_` + marker + `","type":"text"}]`}); err != nil {
		return err
	}
	_, err := q.CreateClaimPolicy(ctx, tx, dbsqlc.CreateClaimPolicyParams{TableID: tbl.ID, Name: "p_" + marker, ColumnName: "c_" + marker, Claim: marker, Op: "eq"})
	return err
}
