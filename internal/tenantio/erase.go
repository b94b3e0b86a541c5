package tenantio

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/apperr"
)

// ErasureLog is the table that records erasures (00013): tenant id, time,
// operator. The scan skips it, and only it.
const ErasureLog = "dbchat_migrations.erasure_log"

// Evidence is what an erasure did and what the scan after it found.
type Evidence struct {
	TenantID      uuid.UUID        `json:"tenant_id"`
	Slug          string           `json:"slug"`
	Operator      string           `json:"operator"`
	ErasedAt      time.Time        `json:"erased_at"`
	Deleted       map[string]int64 `json:"deleted"` // platform table -> rows deleted
	DataTables    int              `json:"data_tables_dropped"`
	SchemaDropped string           `json:"schema_dropped"`
	RolesDropped  []string         `json:"roles_dropped"` // t_<hex>, t_<hex>_m
	Scan          Scan             `json:"scan"`
}

// Scan is the privileged scan of every table of the database for the id.
type Scan struct {
	Tables  int              `json:"tables"`  // tables scanned (every schema but the system ones)
	Columns int              `json:"columns"` // uuid columns compared, text/json columns searched
	Found   map[string]int64 `json:"found"`   // table -> matching rows (empty when erased)
	Schema  bool             `json:"schema_exists"`
	Role    bool             `json:"role_exists"` // either of the tenant's roles
	Skipped []string         `json:"skipped"`     // the erasure log
}

// Clean reports whether the scan found nothing of the tenant.
func (s Scan) Clean() bool { return len(s.Found) == 0 && !s.Schema && !s.Role }

// Erase removes the tenant named by tenantArg (slug or id), which confirm
// must repeat as its slug: its schema with every data table, its role,
// every row keyed by it in every platform table (vectors included), then
// scans the whole database for its id and commits only if the scan finds
// nothing; the erasure log gets the tenant id, the time and operator.
// Afterwards the platform tables are vacuumed so that deleted rows and
// their index entries (the HNSW graphs of the vectors) leave the files too.
func Erase(ctx context.Context, conn *pgx.Conn, tenantArg, confirm, operator string) (Evidence, error) {
	ev := Evidence{Operator: operator}
	if err := requirePrivileged(ctx, conn); err != nil {
		return ev, err
	}
	if strings.TrimSpace(operator) == "" {
		return ev, apperr.Field("operator", "must name who erases (the OS user by default)")
	}
	var tables []platformTable
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		t, err := lockConfirmed(ctx, tx, tenantArg, confirm, &ev)
		if err != nil {
			return err
		}
		if err := dropSchema(ctx, tx, t, &ev); err != nil {
			return err
		}
		if tables, err = deleteRows(ctx, tx, t.ID, &ev); err != nil {
			return err
		}
		for _, role := range []string{t.Schema(), t.Schema() + "_m"} {
			if err := dropRole(ctx, tx, role, &ev); err != nil {
				return err
			}
		}
		return proveAndLog(ctx, tx, t.ID, operator, &ev)
	})
	if err != nil {
		return ev, err
	}
	return ev, vacuum(ctx, conn, append(tables, platformTable{Name: "tenants"}))
}

// lockConfirmed finds the tenant, checks confirm against its slug and locks
// its row for the rest of the erase.
func lockConfirmed(ctx context.Context, tx pgx.Tx, tenantArg, confirm string, ev *Evidence) (Tenant, error) {
	t, err := FindTenant(ctx, tx, tenantArg)
	if err != nil {
		return t, err
	}
	if confirm != t.Slug {
		return t, apperr.Errorf(apperr.Invalid, "--confirm %q does not match the tenant's slug %q: nothing erased", confirm, t.Slug)
	}
	ev.TenantID, ev.Slug = t.ID, t.Slug
	_, err = tx.Exec(ctx, `SELECT FROM dbchat.tenants WHERE id = $1 FOR UPDATE`, t.ID)
	return t, err
}

// dropSchema drops the tenant's schema with every data table in it.
func dropSchema(ctx context.Context, tx pgx.Tx, t Tenant, ev *Evidence) error {
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relnamespace = to_regnamespace($1) AND relkind IN ('r', 'p')`,
		t.Schema()).Scan(&ev.DataTables); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{t.Schema()}.Sanitize()+` CASCADE`); err != nil {
		return err
	}
	ev.SchemaDropped = t.Schema()
	return nil
}

// deleteRows counts the tenant's platform rows, then deletes the tenant
// row, whose delete cascades to every table keyed by it, then any row a
// table without such a cascade still holds.
func deleteRows(ctx context.Context, tx pgx.Tx, id uuid.UUID, ev *Evidence) ([]platformTable, error) {
	tables, err := platformTables(ctx, tx)
	if err != nil {
		return nil, err
	}
	ev.Deleted = map[string]int64{"tenants": 1}
	for _, pt := range tables {
		var n int64
		if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM dbchat.%s WHERE tenant_id = $1`, pgx.Identifier{pt.Name}.Sanitize()), id).Scan(&n); err != nil {
			return nil, err
		}
		ev.Deleted[pt.Name] = n
	}
	if _, err := tx.Exec(ctx, `DELETE FROM dbchat.tenants WHERE id = $1`, id); err != nil {
		return nil, err
	}
	for _, pt := range slices.Backward(tables) {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`DELETE FROM dbchat.%s WHERE tenant_id = $1`, pgx.Identifier{pt.Name}.Sanitize()), id); err != nil {
			return nil, err
		}
	}
	return tables, nil
}

// dropRole drops one of the tenant's roles: whatever it was granted in
// this database, then itself.
func dropRole(ctx context.Context, tx pgx.Tx, name string, ev *Evidence) error {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)`, name).Scan(&exists); err != nil || !exists {
		return err
	}
	role := pgx.Identifier{name}.Sanitize()
	if _, err := tx.Exec(ctx, `DROP OWNED BY `+role); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DROP ROLE `+role); err != nil {
		return fmt.Errorf("drop role %s: %w", name, err)
	}
	ev.RolesDropped = append(ev.RolesDropped, name)
	return nil
}

// proveAndLog scans the whole database for the id (any find rolls the
// erase back) and records the erasure.
func proveAndLog(ctx context.Context, tx pgx.Tx, id uuid.UUID, operator string, ev *Evidence) error {
	var err error
	if ev.Scan, err = ScanFor(ctx, tx, id); err != nil {
		return err
	}
	if !ev.Scan.Clean() {
		return fmt.Errorf("erase incomplete, rolled back: the scan found %v (schema %v, role %v)", ev.Scan.Found, ev.Scan.Schema, ev.Scan.Role)
	}
	return tx.QueryRow(ctx, `INSERT INTO `+ErasureLog+` (tenant_id, operator) VALUES ($1, $2) RETURNING erased_at`,
		id, operator).Scan(&ev.ErasedAt)
}

// vacuum rewrites the platform tables after the commit, so the deleted
// rows and their index entries (vectors included) leave the data files.
func vacuum(ctx context.Context, conn *pgx.Conn, tables []platformTable) error {
	for _, pt := range tables {
		if _, err := conn.Exec(ctx, `VACUUM dbchat.`+pgx.Identifier{pt.Name}.Sanitize()); err != nil {
			return fmt.Errorf("erased and committed; vacuum of dbchat.%s failed: %w", pt.Name, err)
		}
	}
	return nil
}

// ScanFor searches every table of the database, in every schema but
// PostgreSQL's own, for id: uuid columns (and arrays of uuid) by equality,
// text, varchar, json and jsonb columns for the id with or without dashes.
// Only the erasure log is skipped. The list of tables comes from the
// catalog, so a table added later is covered.
func ScanFor(ctx context.Context, q pgx.Tx, id uuid.UUID) (Scan, error) {
	s := Scan{Found: map[string]int64{}, Skipped: []string{ErasureLog}}
	rows, err := q.Query(ctx, `
		SELECT format('%I.%I', n.nspname, c.relname),
		       array_agg(format('%I', a.attname) ORDER BY a.attnum) FILTER (WHERE a.atttypid = 'uuid'::regtype),
		       array_agg(format('%I', a.attname) ORDER BY a.attnum) FILTER (WHERE a.atttypid = 'uuid[]'::regtype),
		       array_agg(format('%I', a.attname) ORDER BY a.attnum) FILTER (WHERE a.atttypid IN
		           ('text'::regtype, 'varchar'::regtype, 'json'::regtype, 'jsonb'::regtype, 'text[]'::regtype))
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE c.relkind IN ('r', 'p', 'm')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%'
		  AND n.nspname NOT LIKE 'pg\_temp\_%' AND c.oid <> $1::regclass
		GROUP BY 1 ORDER BY 1`, ErasureLog)
	if err != nil {
		return s, err
	}
	type target struct {
		rel                string
		uuids, arrays, txt []string
	}
	targets, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (target, error) {
		var t target
		return t, r.Scan(&t.rel, &t.uuids, &t.arrays, &t.txt)
	})
	if err != nil {
		return s, err
	}
	hex := strings.ReplaceAll(id.String(), "-", "")
	for _, t := range targets {
		s.Tables++
		var conds []string
		for _, c := range t.uuids {
			conds = append(conds, c+" = $1")
		}
		for _, c := range t.arrays {
			conds = append(conds, "$1 = ANY ("+c+")")
		}
		for _, c := range t.txt {
			conds = append(conds, fmt.Sprintf("(strpos(%s::text, $2) > 0 OR strpos(%[1]s::text, $3) > 0)", c))
		}
		s.Columns += len(conds)
		if len(conds) == 0 {
			continue
		}
		var n int64
		if err := q.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s WHERE ($1::uuid, $2::text, $3::text) IS NOT NULL AND (%s)`, t.rel, strings.Join(conds, " OR ")),
			id, id.String(), hex).Scan(&n); err != nil {
			return s, fmt.Errorf("scan %s: %w", t.rel, err)
		}
		if n > 0 {
			s.Found[t.rel] = n
		}
	}
	err = q.QueryRow(ctx, `SELECT to_regnamespace($1) IS NOT NULL, EXISTS (SELECT FROM pg_roles WHERE rolname IN ($1, $1 || '_m'))`,
		SchemaOf(id)).Scan(&s.Schema, &s.Role)
	return s, err
}
