package tenantio

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/provision"
)

// Imported is the tenant an import created and its admin's fresh key.
type Imported struct {
	Tenant     Tenant
	AdminID    uuid.UUID
	AdminEmail string
	APIKey     string
	Manifest   Manifest
}

var slugPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ReadManifest reads an export's manifest.
func ReadManifest(zr *zip.Reader) (Manifest, error) {
	var m Manifest
	f, err := zr.Open("manifest.json")
	if err != nil {
		return m, apperr.Errorf(apperr.Invalid, "not a dbchat tenant export: no manifest.json")
	}
	defer f.Close()
	if err := json.NewDecoder(f).Decode(&m); err != nil {
		return m, apperr.Errorf(apperr.Invalid, "not a dbchat tenant export: manifest.json: %v", err)
	}
	if m.Format != Format {
		return m, apperr.Errorf(apperr.Invalid, "not a dbchat tenant export: format %q, want %q", m.Format, Format)
	}
	return m, nil
}

// Import restores the export in zr into a new tenant named name (slug
// derived from it when empty), in one transaction. Ids other than the
// tenant's are kept: every key is (tenant_id, id), so they cannot collide
// with another tenant's. The tenant's first active admin (or a new one)
// gets a fresh API key, since keys are not exported.
func Import(ctx context.Context, conn *pgx.Conn, zr *zip.Reader, name, slug string) (Imported, error) {
	var res Imported
	if err := requirePrivileged(ctx, conn); err != nil {
		return res, err
	}
	m, name, slug, err := checkImport(ctx, conn, zr, name, slug)
	res.Manifest = m
	if err != nil {
		return res, err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := createTenant(ctx, tx, name, slug, &res); err != nil {
			return err
		}
		for _, df := range m.Data {
			if err := importData(ctx, tx, zr, res.Tenant, df); err != nil {
				return err
			}
		}
		if err := importPlatform(ctx, tx, zr, m.Platform, res.Tenant.ID); err != nil {
			return err
		}
		if err := restoreClaimPolicies(ctx, tx); err != nil {
			return err
		}
		// The members' column grants, from the restored catalog's
		// restricted flags (migration 00015).
		if _, err := tx.Exec(ctx, `SELECT dbchat.grant_member_columns(id) FROM dbchat.database_tables
			WHERE tenant_id = nullif(current_setting('app.tenant_id', true), '')::uuid`); err != nil {
			return err
		}
		return freshAdminKey(ctx, tx, &res)
	})
	return res, err
}

// checkImport reads the manifest and checks the new tenant's name and slug
// and that this database's schema is at least the export's.
func checkImport(ctx context.Context, conn *pgx.Conn, zr *zip.Reader, name, slug string) (Manifest, string, string, error) {
	m, err := ReadManifest(zr)
	if err != nil {
		return m, name, slug, err
	}
	if name, err = provision.NormaliseName("name", name); err != nil {
		return m, name, slug, err
	}
	if slug == "" {
		slug = slugify(name)
	}
	if !slugPattern.MatchString(slug) {
		return m, name, slug, apperr.Field("slug", "must be lowercase letters, digits and dashes (at most 63)")
	}
	var version int64
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM dbchat_migrations.goose_db_version WHERE is_applied`).Scan(&version); err != nil {
		return m, name, slug, err
	}
	if version < m.SchemaVersion {
		return m, name, slug, apperr.Errorf(apperr.Invalid, "the export is of schema version %d, this database is at %d: run dbchat migrate first", m.SchemaVersion, version)
	}
	return m, name, slug, nil
}

// createTenant creates the new tenant (refusing a taken slug) with the
// exported tenant row's settings. create_tenant also makes it the
// transaction's tenant (app.tenant_id), which every tenant_id defaults to.
func createTenant(ctx context.Context, tx pgx.Tx, name, slug string, res *Imported) error {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM dbchat.tenants WHERE slug = $1)`, slug).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return apperr.Errorf(apperr.Conflict, "a tenant with slug %q already exists", slug)
	}
	if err := tx.QueryRow(ctx, `SELECT dbchat.create_tenant($1, $2)`, name, slug).Scan(&res.Tenant.ID); err != nil {
		return err
	}
	res.Tenant.Name, res.Tenant.Slug = name, slug
	return restoreTenantRow(ctx, tx, res.Tenant.ID, res.Manifest.Tenant)
}

// importPlatform copies the platform rows. Foreign keys are checked once
// all rows are in (the tables may reference each other in a cycle):
// replica mode skips the per-row triggers, checkForeignKeys then checks
// every key of the new tenant's rows.
func importPlatform(ctx context.Context, tx pgx.Tx, zr *zip.Reader, files []File, id uuid.UUID) error {
	if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
		return err
	}
	for _, f := range files {
		sql := fmt.Sprintf(`COPY dbchat.%s (%s) FROM STDIN WITH (FORMAT csv, HEADER)`, pgx.Identifier{f.Table}.Sanitize(), quoteAll(f.Columns))
		if err := copyIn(ctx, tx, zr, f, sql); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = origin`); err != nil {
		return err
	}
	return checkForeignKeys(ctx, tx, id)
}

// restoreTenantRow copies the exported tenant row's settings (every column
// but id, name, slug and created_at) onto the new tenant.
func restoreTenantRow(ctx context.Context, tx pgx.Tx, id uuid.UUID, row json.RawMessage) error {
	rows, err := tx.Query(ctx, `SELECT a.attname::text FROM pg_attribute a
		WHERE a.attrelid = 'dbchat.tenants'::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
		  AND a.attname NOT IN ('id', 'name', 'slug', 'created_at') AND $1::jsonb ? a.attname ORDER BY a.attnum`, row)
	if err != nil {
		return err
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(cols) == 0 {
		return err
	}
	list := quoteAll(cols)
	_, err = tx.Exec(ctx, fmt.Sprintf(`UPDATE dbchat.tenants SET (%s) = (SELECT %s FROM jsonb_populate_record(NULL::dbchat.tenants, $1::jsonb)) WHERE id = $2`, list, list), row, id)
	return err
}

// importData creates a data table through the catalog's DDL function and
// fills it, keeping _row_id, then moves its identity past the copied rows.
func importData(ctx context.Context, tx pgx.Tx, zr *zip.Reader, t Tenant, df DataFile) error {
	cols, err := json.Marshal(df.Create)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT dbchat.create_data_table($1, $2::jsonb)`, df.Table, string(cols)); err != nil {
		return fmt.Errorf("create table %s: %w", df.Table, err)
	}
	rel := pgx.Identifier{t.Schema(), df.Table}.Sanitize()
	sql := fmt.Sprintf(`COPY %s (%s) FROM STDIN WITH (FORMAT csv, HEADER)`, rel, quoteAll(df.Columns))
	if err := copyIn(ctx, tx, zr, df.File, sql); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence($1, '_row_id'), coalesce(max(_row_id), 0) + 1, false) FROM %s`, rel), rel)
	return err
}

func copyIn(ctx context.Context, tx pgx.Tx, zr *zip.Reader, f File, sql string) error {
	if strings.Contains(f.Path, "..") {
		return apperr.Errorf(apperr.Invalid, "bad path %q in manifest", f.Path)
	}
	r, err := zr.Open(f.Path)
	if err != nil {
		return apperr.Errorf(apperr.Invalid, "the export lacks %s: %v", f.Path, err)
	}
	defer r.Close()
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, r, sql)
	var pg *pgconn.PgError
	if errors.As(err, &pg) && pg.Code == "23505" {
		// A key unique across tenants (an identity provider's issuer).
		return apperr.Errorf(apperr.Conflict, "import %s: %s (%s) belongs to another tenant: nothing imported", f.Path,
			strings.TrimSuffix(pg.Detail, "."), pg.ConstraintName)
	}
	if err != nil {
		return fmt.Errorf("import %s: %w", f.Path, err)
	}
	if tag.RowsAffected() != f.Rows {
		return fmt.Errorf("import %s: %d rows, the manifest says %d", f.Path, tag.RowsAffected(), f.Rows)
	}
	return nil
}

// checkForeignKeys checks every foreign key of the platform tables over the
// new tenant's rows, as the triggers skipped during the copy would have.
func checkForeignKeys(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	rows, err := tx.Query(ctx, `
		SELECT k.conname::text, k.conrelid::regclass::text, k.confrelid::regclass::text,
		       ARRAY(SELECT format('c.%I', a.attname) FROM unnest(k.conkey) WITH ORDINALITY u(n, i)
		             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n ORDER BY u.i),
		       ARRAY(SELECT format('p.%I', a.attname) FROM unnest(k.confkey) WITH ORDINALITY u(n, i)
		             JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n ORDER BY u.i)
		FROM pg_constraint k
		WHERE k.contype = 'f' AND k.conrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'dbchat'::regnamespace)
		ORDER BY 1`)
	if err != nil {
		return err
	}
	type fk struct {
		name, child, parent string
		cols, refs          []string
	}
	fks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fk, error) {
		var k fk
		return k, r.Scan(&k.name, &k.child, &k.parent, &k.cols, &k.refs)
	})
	if err != nil {
		return err
	}
	for _, k := range fks {
		if k.child == "dbchat.tenants" {
			continue
		}
		var n int64
		err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s c WHERE c.tenant_id = $1 AND (%s) IS NOT NULL
			AND NOT EXISTS (SELECT FROM %s p WHERE (%s) = (%s))`,
			k.child, strings.Join(k.cols, ", "), k.parent, strings.Join(k.refs, ", "), strings.Join(k.cols, ", ")), id).Scan(&n)
		if err != nil {
			return fmt.Errorf("check %s: %w", k.name, err)
		}
		if n > 0 {
			return apperr.Errorf(apperr.Invalid, "the export is inconsistent: %d rows of %s break foreign key %s", n, k.child, k.name)
		}
	}
	return nil
}

// restoreClaimPolicies turns the copied dbchat.claim_policies rows back
// into the restrictive policies on the data tables they stand for. Each
// goes through dbchat.create_claim_policy, which checks every name again
// (an export file is input, never SQL to run), then the row and the
// policy's comment get the exported id, author and time back.
func restoreClaimPolicies(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `SELECT id, table_id, name, column_name, claim, op, admins_bypass, user_id, created_at
		FROM dbchat.claim_policies WHERE tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid)
		ORDER BY created_at, id`)
	if err != nil {
		return err
	}
	type policy struct {
		ID, TableID             uuid.UUID
		Name, Column, Claim, Op string
		AdminsBypass            bool
		UserID                  *uuid.UUID
		CreatedAt               any
	}
	policies, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (policy, error) {
		var p policy
		return p, r.Scan(&p.ID, &p.TableID, &p.Name, &p.Column, &p.Claim, &p.Op, &p.AdminsBypass, &p.UserID, &p.CreatedAt)
	})
	if err != nil || len(policies) == 0 {
		return err
	}
	if _, err := tx.Exec(ctx, `SELECT set_config('app.role', 'admin', true)`); err != nil {
		return err
	}
	for _, p := range policies {
		if _, err := tx.Exec(ctx, `DELETE FROM dbchat.claim_policies WHERE tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid) AND id = $1`, p.ID); err != nil {
			return err
		}
		var newID uuid.UUID
		if err := tx.QueryRow(ctx, `SELECT dbchat.create_claim_policy($1, $2, $3, $4, $5, $6)`,
			p.TableID, p.Name, p.Column, p.Claim, p.Op, p.AdminsBypass).Scan(&newID); err != nil {
			return fmt.Errorf("claim policy %s: %w", p.Name, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE dbchat.claim_policies SET id = $2, user_id = $3, created_at = $4
			WHERE tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid) AND id = $1`,
			newID, p.ID, p.UserID, p.CreatedAt); err != nil {
			return err
		}
		var rel, comment string
		if err := tx.QueryRow(ctx, `SELECT pol.polrelid::regclass::text, obj_description(pol.oid, 'pg_policy')
			FROM pg_policy pol JOIN pg_class c ON c.oid = pol.polrelid
			WHERE pol.polname = 'claim_' || $1 AND c.relnamespace = to_regnamespace(dbchat.tenant_schema())
			  AND c.relname = (SELECT name FROM dbchat.database_tables WHERE id = $2 AND tenant_id = (SELECT nullif(current_setting('app.tenant_id', true), '')::uuid))`,
			p.Name, p.TableID).Scan(&rel, &comment); err != nil {
			return err
		}
		comment = strings.ReplaceAll(comment, newID.String(), p.ID.String())
		if _, err := tx.Exec(ctx, fmt.Sprintf(`COMMENT ON POLICY %s ON %s IS %s`, pgx.Identifier{"claim_" + p.Name}.Sanitize(), rel, quoteLiteral(comment))); err != nil {
			return err
		}
	}
	_, err = tx.Exec(ctx, `SELECT set_config('app.role', '', true)`)
	return err
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// freshAdminKey mints a key for the tenant's first active admin, creating
// one (admin@<slug>.invalid) when the export had none.
func freshAdminKey(ctx context.Context, tx pgx.Tx, res *Imported) error {
	err := tx.QueryRow(ctx, `SELECT id, email FROM dbchat.users WHERE tenant_id = $1 AND role = 'admin' AND is_active
		ORDER BY created_at, id LIMIT 1`, res.Tenant.ID).Scan(&res.AdminID, &res.AdminEmail)
	if err == pgx.ErrNoRows {
		res.AdminEmail = "admin@" + res.Tenant.Slug + ".invalid"
		err = tx.QueryRow(ctx, `INSERT INTO dbchat.users (email, name, role) VALUES ($1, 'Admin', 'admin') RETURNING id`, res.AdminEmail).Scan(&res.AdminID)
	}
	if err != nil {
		return err
	}
	k, err := auth.Generate(res.Tenant.ID)
	if err != nil {
		return err
	}
	res.APIKey = k.Plain
	_, err = tx.Exec(ctx, `INSERT INTO dbchat.api_keys (user_id, name, prefix, key_hash) VALUES ($1, 'imported tenant admin key', $2, $3)`,
		res.AdminID, k.Prefix, k.Hash)
	return err
}

// slugify is provision's slug rule: lowercase letters and digits, other
// runs become one dash, at most 63.
func slugify(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimSuffix(b.String(), "-")
	if len(s) > 63 {
		s = strings.TrimSuffix(s[:63], "-")
	}
	return s
}
