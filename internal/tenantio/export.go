package tenantio

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// Manifest describes an export file; it is the archive's last entry.
type Manifest struct {
	Format        string            `json:"format"`
	ExportedAt    time.Time         `json:"exported_at"`
	SchemaVersion int64             `json:"schema_version"`
	Tenant        json.RawMessage   `json:"tenant"` // the tenants row as JSON
	TenantID      string            `json:"tenant_id"`
	Slug          string            `json:"slug"`
	Platform      []File            `json:"platform"` // in import order
	Data          []DataFile        `json:"data"`
	Excluded      map[string]string `json:"excluded"`
}

// File is one CSV entry of the archive.
type File struct {
	Table   string   `json:"table"`
	Path    string   `json:"path"`
	Columns []string `json:"columns"`
	Rows    int64    `json:"rows"`
	SHA256  string   `json:"sha256"`
}

// DataFile is a tenant data table: its CSV and the columns to create it with.
type DataFile struct {
	File
	Create []dataColumn `json:"create"`
}

// Export writes tenantArg's tenant (slug or id) to w as a zip archive, from
// one REPEATABLE READ snapshot.
func Export(ctx context.Context, conn *pgx.Conn, tenantArg string, w io.Writer) (Manifest, error) {
	if err := requirePrivileged(ctx, conn); err != nil {
		return Manifest{}, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return Manifest{}, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	t, err := FindTenant(ctx, tx, tenantArg)
	if err != nil {
		return Manifest{}, err
	}
	m := Manifest{Format: Format, ExportedAt: time.Now().UTC(), TenantID: t.ID.String(), Slug: t.Slug, Excluded: excluded}
	if _, err := tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true)`, t.ID.String()); err != nil {
		return m, err
	}
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM dbchat_migrations.goose_db_version WHERE is_applied`).Scan(&m.SchemaVersion); err != nil {
		return m, err
	}
	if err := tx.QueryRow(ctx, `SELECT to_jsonb(t) FROM dbchat.tenants t WHERE id = $1`, t.ID).Scan(&m.Tenant); err != nil {
		return m, err
	}
	zw := zip.NewWriter(w)
	copyOut := func(f *File, sql string) error {
		entry, err := zw.Create(f.Path)
		if err != nil {
			return err
		}
		h := sha256.New()
		tag, err := tx.Conn().PgConn().CopyTo(ctx, io.MultiWriter(entry, h), sql)
		if err != nil {
			return fmt.Errorf("export %s: %w", f.Table, err)
		}
		f.Rows, f.SHA256 = tag.RowsAffected(), hex.EncodeToString(h.Sum(nil))
		return nil
	}
	// The tenant id is a parsed UUID: safe to inline (COPY takes no parameters).
	where := fmt.Sprintf("tenant_id = '%s'", t.ID)

	tables, err := platformTables(ctx, tx)
	if err != nil {
		return m, err
	}
	for _, pt := range tables {
		if _, skip := excluded[pt.Name]; skip {
			continue
		}
		f := File{Table: pt.Name, Path: "platform/" + pt.Name + ".csv", Columns: pt.Columns}
		sql := fmt.Sprintf(`COPY (SELECT %s FROM dbchat.%s WHERE %s) TO STDOUT WITH (FORMAT csv, HEADER)`,
			quoteAll(pt.Columns), pgx.Identifier{pt.Name}.Sanitize(), where)
		if err := copyOut(&f, sql); err != nil {
			return m, err
		}
		m.Platform = append(m.Platform, f)
	}
	dts, err := dataTables(ctx, tx, t.Schema())
	if err != nil {
		return m, err
	}
	for _, dt := range dts {
		cols := columnNames(dt.Columns)
		f := DataFile{File: File{Table: dt.Name, Path: "data/" + dt.Name + ".csv", Columns: cols}, Create: dt.Columns}
		sql := fmt.Sprintf(`COPY (SELECT %s FROM %s WHERE %s ORDER BY _row_id) TO STDOUT WITH (FORMAT csv, HEADER)`,
			quoteAll(cols), pgx.Identifier{t.Schema(), dt.Name}.Sanitize(), where)
		if err := copyOut(&f.File, sql); err != nil {
			return m, err
		}
		m.Data = append(m.Data, f)
	}
	mw, err := zw.Create("manifest.json")
	if err != nil {
		return m, err
	}
	enc := json.NewEncoder(mw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return m, err
	}
	return m, zw.Close()
}
