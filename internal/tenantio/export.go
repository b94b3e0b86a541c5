package tenantio

import (
	"archive/zip"
	"compress/flate"
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
	t, m, err := manifestOf(ctx, tx, tenantArg)
	if err != nil {
		return m, err
	}
	x := &exporter{tx: tx, zw: zip.NewWriter(w), where: fmt.Sprintf("tenant_id = '%s'", t.ID)}
	// Deflate's fastest level: the default level cost the export most of
	// its time (make bench's import part measures it against COPY TO).
	x.zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.BestSpeed)
	})
	if m.Platform, err = x.platform(ctx); err != nil {
		return m, err
	}
	if m.Data, err = x.data(ctx, t.Schema()); err != nil {
		return m, err
	}
	return m, x.finish(m)
}

// manifestOf finds the tenant and starts its manifest: format, time, the
// schema version and the tenant row.
func manifestOf(ctx context.Context, tx pgx.Tx, tenantArg string) (Tenant, Manifest, error) {
	t, err := FindTenant(ctx, tx, tenantArg)
	if err != nil {
		return t, Manifest{}, err
	}
	m := Manifest{Format: Format, ExportedAt: time.Now().UTC(), TenantID: t.ID.String(), Slug: t.Slug, Excluded: excluded}
	if _, err := tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true)`, t.ID.String()); err != nil {
		return t, m, err
	}
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version_id), 0) FROM dbchat_migrations.goose_db_version WHERE is_applied`).Scan(&m.SchemaVersion); err != nil {
		return t, m, err
	}
	err = tx.QueryRow(ctx, `SELECT to_jsonb(t) FROM dbchat.tenants t WHERE id = $1`, t.ID).Scan(&m.Tenant)
	return t, m, err
}

// exporter streams one tenant's tables into a zip, one CSV each.
type exporter struct {
	tx    pgx.Tx
	zw    *zip.Writer
	where string // the tenant id is a parsed UUID: safe to inline (COPY takes no parameters)
}

// copyOut writes sql's COPY output to f's entry, counting rows and hashing.
func (x *exporter) copyOut(ctx context.Context, f *File, sql string) error {
	entry, err := x.zw.Create(f.Path)
	if err != nil {
		return err
	}
	h := sha256.New()
	tag, err := x.tx.Conn().PgConn().CopyTo(ctx, io.MultiWriter(entry, h), sql)
	if err != nil {
		return fmt.Errorf("export %s: %w", f.Table, err)
	}
	f.Rows, f.SHA256 = tag.RowsAffected(), hex.EncodeToString(h.Sum(nil))
	return nil
}

// platform exports the tenant's rows of every platform table but the
// excluded ones.
func (x *exporter) platform(ctx context.Context) ([]File, error) {
	tables, err := platformTables(ctx, x.tx)
	if err != nil {
		return nil, err
	}
	var out []File
	for _, pt := range tables {
		if _, skip := excluded[pt.Name]; skip {
			continue
		}
		f := File{Table: pt.Name, Path: "platform/" + pt.Name + ".csv", Columns: pt.Columns}
		sql := fmt.Sprintf(`COPY (SELECT %s FROM dbchat.%s WHERE %s) TO STDOUT WITH (FORMAT csv, HEADER)`,
			quoteAll(pt.Columns), pgx.Identifier{pt.Name}.Sanitize(), x.where)
		if err := x.copyOut(ctx, &f, sql); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// data exports every data table of the tenant's schema, in import order.
func (x *exporter) data(ctx context.Context, schema string) ([]DataFile, error) {
	dts, err := dataTables(ctx, x.tx, schema)
	if err != nil {
		return nil, err
	}
	var out []DataFile
	for _, dt := range dts {
		cols := columnNames(dt.Columns)
		f := DataFile{File: File{Table: dt.Name, Path: "data/" + dt.Name + ".csv", Columns: cols}, Create: dt.Columns}
		sql := fmt.Sprintf(`COPY (SELECT %s FROM %s WHERE %s ORDER BY _row_id) TO STDOUT WITH (FORMAT csv, HEADER)`,
			quoteAll(cols), pgx.Identifier{schema, dt.Name}.Sanitize(), x.where)
		if err := x.copyOut(ctx, &f.File, sql); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, nil
}

// finish writes the manifest last (it holds every file's rows and hash)
// and closes the zip.
func (x *exporter) finish(m Manifest) error {
	mw, err := x.zw.Create("manifest.json")
	if err != nil {
		return err
	}
	enc := json.NewEncoder(mw)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return err
	}
	return x.zw.Close()
}
