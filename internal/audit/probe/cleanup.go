package probe

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dbchat/dbchat/internal/audit"
)

// cleanup removes the probe's tenants with the privileged connection, as
// dbchat_owner: deleting a tenant row cascades to every platform table
// (foreign-key actions are not subject to row-level security), and its data
// schema, which the runtime role may not drop, is dropped; then, as the
// admin, its role. Then it verifies that nothing is left: no row of either
// tenant in any platform table, no schema, no role.
func (p *prober) cleanup(ctx context.Context) audit.Cleanup {
	c := audit.Cleanup{Removed: []string{}, Residue: []string{}}
	if len(p.tenants) == 0 {
		c.Done = true
		return c
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, t := range p.tenants {
		err := p.asOwner(ctx, t.identity, true, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `DELETE FROM dbchat.tenants WHERE id = $1`, t.id); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{t.schema}.Sanitize()+` CASCADE`)
			return err
		})
		if err != nil {
			c.Error = fmt.Sprintf("remove tenant %s (%s): %v", t.label, t.id, err)
			return c
		}
		// The tenant's role is cluster-wide; with its schema gone it holds
		// nothing in this database.
		if _, err := p.admin.Exec(ctx, `DROP ROLE IF EXISTS `+pgx.Identifier{t.schema}.Sanitize()+`, `+pgx.Identifier{t.schema + "_m"}.Sanitize()); err != nil {
			c.Error = fmt.Sprintf("remove the role of tenant %s (%s): %v", t.label, t.id, err)
			return c
		}
		c.Removed = append(c.Removed, fmt.Sprintf("tenant %s (%s) and its rows", t.label, t.id), "schema "+t.schema, "roles "+t.schema+" and "+t.schema+"_m")
	}

	// Verify.
	rows, err := p.admin.Query(ctx, `SELECT n.nspname::text, c.relname::text,
			CASE WHEN n.nspname = 'dbchat' AND c.relname = 'tenants' THEN 'id' ELSE 'tenant_id' END
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname = 'dbchat' ORDER BY 2`)
	if err != nil {
		c.Error = "verify: " + err.Error()
		return c
	}
	rels, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (relation, error) {
		var r relation
		err := row.Scan(&r.schema, &r.name, &r.tcol)
		return r, err
	})
	if err != nil {
		c.Error = "verify: " + err.Error()
		return c
	}
	for _, t := range p.tenants {
		err := p.asOwner(ctx, t.identity, false, func(tx pgx.Tx) error {
			for _, r := range rels {
				var n int64
				if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM %s x WHERE x.%s = $1 OR x::text LIKE '%%' || $2 || '%%'`,
					r.ident(), pgx.Identifier{r.tcol}.Sanitize()), t.id, t.marker).Scan(&n); err != nil {
					return err
				}
				if n > 0 {
					c.Residue = append(c.Residue, fmt.Sprintf("%d rows of tenant %s in %s", n, t.label, r))
				}
			}
			var schemas int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1`, t.schema).Scan(&schemas); err != nil {
				return err
			}
			if schemas > 0 {
				c.Residue = append(c.Residue, "schema "+t.schema)
			}
			var roles int
			if err := p.admin.QueryRow(ctx, `SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = $1`, t.schema).Scan(&roles); err != nil {
				return err
			}
			if roles > 0 {
				c.Residue = append(c.Residue, "role "+t.schema)
			}
			return nil
		})
		if err != nil {
			c.Error = "verify: " + err.Error()
			return c
		}
	}
	c.Done = true
	return c
}
