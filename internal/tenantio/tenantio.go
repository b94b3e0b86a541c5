// Package tenantio exports a tenant to one file, imports such a file into a
// new tenant, and erases a tenant with evidence that nothing of it is left.
//
// All three run on a privileged connection (DBCHAT_ADMIN_DATABASE_URL: a
// superuser or a BYPASSRLS role), because each must see every row of the
// tenant whatever the per-user policies say (owner_or_admin hides a
// member's conversations from a transaction without that member; claim
// policies hide rows from users without the claim). RLS cannot scope such a
// connection, so every statement names the tenant explicitly: exports read
// `WHERE tenant_id = <id>` per table, imports leave tenant_id out of every
// COPY so the column's default (app.tenant_id, the new tenant) fills it.
//
// Which tables exist is read from the catalog, not listed here: a platform
// table added by a later migration is exported, imported and erased without
// a change to this package (api_keys is left out of exports on purpose: its
// rows are credentials).
//
// The export file is a zip archive: platform/<table>.csv and
// data/<table>.csv (COPY … TO STDOUT in CSV with a header, without the
// tenant_id column), then manifest.json with the tenant row, each file's
// columns, row count and SHA-256. COPY streams through the zip writer, so
// memory does not grow with the data.
package tenantio

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/apperr"
)

// Format names the export file format in its manifest.
const Format = "dbchat-tenant-export/1"

// excluded are platform tables whose rows never leave the database:
// credentials, and rows derived from others.
var excluded = map[string]string{
	"api_keys": "credentials (key hashes); the import mints a fresh admin key",
	// Browser sign-ins (00016) are credentials too; the restored tenant's
	// users sign in again. Erase needs no entry: it deletes every table.
	"sessions": "credentials (browser session token hashes); the restored tenant's users sign in again",
	// Derived rows: the trigger on training_data (00029) counts the
	// imported rows as they are copied.
	"training_counts": "derived from training_data; the import counts the copied rows again",
	// The trigger on tenants (00034) creates the restored tenant's epoch.
	"credential_epochs": "a counter of credential changes; the restored tenant starts its own",
}

// Tenant is a tenant found by slug or id.
type Tenant struct {
	ID   uuid.UUID
	Slug string
	Name string
}

// Schema is the tenant's data schema and role name, t_<id without dashes>.
func (t Tenant) Schema() string { return SchemaOf(t.ID) }

// SchemaOf is the data schema (and role) name of a tenant id.
func SchemaOf(id uuid.UUID) string { return "t_" + strings.ReplaceAll(id.String(), "-", "") }

// requirePrivileged fails unless the connection can read every tenant's rows.
func requirePrivileged(ctx context.Context, conn *pgx.Conn) error {
	var ok bool
	var who string
	err := conn.QueryRow(ctx, `SELECT rolsuper OR rolbypassrls, rolname FROM pg_roles WHERE rolname = current_user`).Scan(&ok, &who)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("role %s is neither superuser nor BYPASSRLS: tenant export, import and erase need DBCHAT_ADMIN_DATABASE_URL's privileged role", who)
	}
	return nil
}

// FindTenant finds a tenant by slug or id.
func FindTenant(ctx context.Context, q pgx.Tx, arg string) (Tenant, error) {
	var t Tenant
	err := q.QueryRow(ctx, `SELECT id, slug, name FROM dbchat.tenants WHERE slug = $1 OR id::text = $1`, arg).Scan(&t.ID, &t.Slug, &t.Name)
	if err == pgx.ErrNoRows {
		return t, apperr.Errorf(apperr.NotFound, "no tenant %q", arg)
	}
	return t, err
}

// Resolve finds a tenant by slug or id on a privileged connection.
func Resolve(ctx context.Context, conn *pgx.Conn, arg string) (Tenant, error) {
	if err := requirePrivileged(ctx, conn); err != nil {
		return Tenant{}, err
	}
	var t Tenant
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var err error
		t, err = FindTenant(ctx, tx, arg)
		return err
	})
	return t, err
}

// platformTable is a table of the dbchat schema keyed by tenant_id.
type platformTable struct {
	Name    string
	Columns []string // without tenant_id and generated columns
}

// platformTables lists the dbchat tables with a tenant_id column (every one
// but tenants), parents before children along their foreign keys.
func platformTables(ctx context.Context, q pgx.Tx) ([]platformTable, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname, array_agg(a.attname::text ORDER BY a.attnum)
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		                   AND a.attgenerated = '' AND a.attname <> 'tenant_id'
		WHERE n.nspname = 'dbchat' AND c.relkind IN ('r', 'p')
		  AND EXISTS (SELECT FROM pg_attribute t WHERE t.attrelid = c.oid AND t.attname = 'tenant_id' AND NOT t.attisdropped)
		GROUP BY c.relname ORDER BY c.relname`)
	if err != nil {
		return nil, err
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (platformTable, error) {
		var t platformTable
		return t, r.Scan(&t.Name, &t.Columns)
	})
	if err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, `
		SELECT DISTINCT ch.relname, pa.relname
		FROM pg_constraint k
		JOIN pg_class ch ON ch.oid = k.conrelid
		JOIN pg_class pa ON pa.oid = k.confrelid
		WHERE k.contype = 'f' AND k.conrelid <> k.confrelid
		  AND ch.relnamespace = 'dbchat'::regnamespace AND pa.relnamespace = 'dbchat'::regnamespace`)
	if err != nil {
		return nil, err
	}
	type edge struct{ child, parent string }
	edges, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (edge, error) {
		var e edge
		return e, r.Scan(&e.child, &e.parent)
	})
	if err != nil {
		return nil, err
	}
	// Kahn's algorithm, alphabetical among the ready ones (stable files).
	byName := map[string]platformTable{}
	for _, t := range tables {
		byName[t.Name] = t
	}
	deps := map[string]map[string]bool{}
	for _, e := range edges {
		if _, ok := byName[e.parent]; !ok {
			continue // tenants
		}
		if deps[e.child] == nil {
			deps[e.child] = map[string]bool{}
		}
		deps[e.child][e.parent] = true
	}
	var sorted []platformTable
	done := map[string]bool{}
	for len(sorted) < len(tables) {
		progress := false
		for _, t := range tables {
			if done[t.Name] {
				continue
			}
			ready := true
			for p := range deps[t.Name] {
				if !done[p] {
					ready = false
				}
			}
			if ready {
				sorted = append(sorted, t)
				done[t.Name] = true
				progress = true
			}
		}
		if !progress {
			// A cycle (users <-> identity_providers): the rest in name
			// order; Import checks foreign keys after the copy instead.
			for _, t := range tables {
				if !done[t.Name] {
					sorted = append(sorted, t)
					done[t.Name] = true
				}
			}
		}
	}
	return sorted, nil
}

// dataColumn is a column of a tenant data table.
type dataColumn struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Nullable bool   `json:"nullable"`
}

// dataTable is a table of a tenant's schema.
type dataTable struct {
	Name    string
	Columns []dataColumn // without tenant_id and _row_id
}

// dataTables lists the tables of schema with their columns in order.
func dataTables(ctx context.Context, q pgx.Tx, schema string) ([]dataTable, error) {
	rows, err := q.Query(ctx, `
		SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
		FROM pg_class c
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'p')
		  AND a.attname NOT IN ('tenant_id', '_row_id')
		ORDER BY c.relname, a.attnum`, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []dataTable
	for rows.Next() {
		var table string
		var col dataColumn
		if err := rows.Scan(&table, &col.Name, &col.Type, &col.Nullable); err != nil {
			return nil, err
		}
		if col.Type == "timestamp with time zone" {
			col.Type = "timestamptz" // create_data_table's spelling
		}
		if len(out) == 0 || out[len(out)-1].Name != table {
			out = append(out, dataTable{Name: table})
		}
		out[len(out)-1].Columns = append(out[len(out)-1].Columns, col)
	}
	return out, rows.Err()
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = pgx.Identifier{n}.Sanitize()
	}
	return strings.Join(q, ", ")
}

func columnNames(cols []dataColumn) []string {
	names := []string{"_row_id"}
	for _, c := range cols {
		names = append(names, c.Name)
	}
	return names
}
