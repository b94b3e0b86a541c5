package dbtest

import (
	"context"
	"testing"

	"github.com/dbchat/dbchat/internal/demo"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Sandboxed is a test database with its runtime DB and SQL sandbox: the
// setup of every test that runs generated or untrusted SQL.
type Sandboxed struct {
	*DB
	Tenants *tenant.DB
	SQL     *sandbox.Service
}

// NewSandboxed is New with a runtime pool and a sandbox pool of conns
// connections each, closed with the test.
func NewSandboxed(t testing.TB, conns int32) *Sandboxed {
	t.Helper()
	d := New(t)
	db := tenant.New(d.AppPool(t, conns))
	box, err := tenant.NewSandbox(context.Background(), d.QueryURL, conns)
	if err != nil {
		t.Fatalf("dbtest: sandbox: %v", err)
	}
	t.Cleanup(box.Close)
	return &Sandboxed{DB: d, Tenants: db, SQL: sandbox.New(db, box)}
}

// DemoTenant creates a tenant with the demo shop's tables and rows, and a
// context carrying its identity.
func (s *Sandboxed) DemoTenant(t testing.TB, name string) (Tenant, context.Context) {
	t.Helper()
	ctx := context.Background()
	tn := NewTenant(t, s.Tenants, name)
	if err := s.Tenants.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error { return demo.Seed(ctx, tx) }); err != nil {
		t.Fatalf("dbtest: demo data for %s: %v", name, err)
	}
	return tn, tenant.NewContext(ctx, tn.Identity)
}
