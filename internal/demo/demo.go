// Package demo is the demo tenant's data: a small shop with customers and
// orders, used by `dbchat dev` and by tests that need realistic data.
package demo

import (
	"context"
	"time"

	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/tenant"
)

// Tables are the demo tables, with descriptions the NL→SQL engine can use.
var Tables = []catalog.TableSpec{
	{Name: "customers", Description: "People who bought something", Columns: []catalog.ColumnSpec{
		{Name: "id", Type: "bigint", Description: "Customer number", Nullable: ptr(false)},
		{Name: "name", Type: "text", Description: "Full name"},
		{Name: "country", Type: "text", Description: "ISO 3166 country code"},
		{Name: "signed_up", Type: "date", Description: "Day of sign-up"}}},
	{Name: "orders", Description: "One row per order", Columns: []catalog.ColumnSpec{
		{Name: "id", Type: "bigint", Description: "Order number", Nullable: ptr(false)},
		{Name: "customer_id", Type: "bigint", Description: "customers.id"},
		{Name: "amount", Type: "numeric", Description: "Order total in EUR: the revenue of the order"},
		{Name: "ordered_at", Type: "timestamptz", Description: "When it was placed"}}},
}

// rows fills the demo tables; tenant_id comes from the transaction.
const rows = `
INSERT INTO customers (id, name, country, signed_up) VALUES
  (1, 'Ada Lovelace', 'GB', '2024-01-15'), (2, 'Grace Hopper', 'US', '2024-02-03'),
  (3, 'Edsger Dijkstra', 'NL', '2024-03-21'), (4, 'Barbara Liskov', 'US', '2024-05-09');
INSERT INTO orders (id, customer_id, amount, ordered_at) VALUES
  (101, 1, 120.50, '2024-06-01 10:00:00+00'), (102, 2, 75.00, '2024-06-02 12:30:00+00'),
  (103, 1, 33.20, '2024-06-05 09:15:00+00'), (104, 3, 410.00, '2024-06-07 16:45:00+00'),
  (105, 4, 18.99, '2024-06-09 08:05:00+00')`

// Seed creates the demo tables (through the catalog's DDL path) and fills
// them, inside the caller's tenant transaction.
func Seed(ctx context.Context, tx tenant.Conn) error {
	// The runtime role's 5 s statement timeout is for requests; the DDL
	// here can wait that long for catalog locks on a busy server (seen
	// under the race detector with the whole test suite running).
	if err := tenant.SetStatementTimeout(ctx, tx, time.Minute); err != nil {
		return err
	}
	var schema string
	for _, spec := range Tables {
		t, err := catalog.Create(ctx, tx, spec)
		if err != nil {
			return err
		}
		schema = t.Schema
	}
	// Unqualified names resolve in the tenant's schema for this transaction only.
	if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true)`, schema); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, rows)
	return err
}

func ptr[T any](v T) *T { return &v }
