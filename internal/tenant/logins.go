package tenant

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// QueryLogin is the login whose sandbox connections may become tenantID's
// roles when a database splits its tenants across shards query logins
// (migration 00031, dbchat.query_login): dbchat_query for shard 0,
// dbchat_query_<k> for shard k, the last byte of the id modulo shards.
//
// Why: PostgreSQL 15 checks SET ROLE against the list of every role the
// login belongs to, built per backend in quadratic time and rebuilt after
// any role change in the cluster; with one login in every tenant's roles
// that took 1.4 s at 10,000 tenants (docs/BENCHMARKS.md part 9).
func QueryLogin(tenantID uuid.UUID, shards int) string { return loginOf(shardOf(tenantID, shards)) }

// shardOf is tenantID's shard among shards.
func shardOf(tenantID uuid.UUID, shards int) int { return int(tenantID[15]) % max(shards, 1) }

// loginOf is shard k's query login.
func loginOf(k int) string {
	if k == 0 {
		return QueryRole
	}
	return QueryRole + "_" + strconv.Itoa(k)
}

// QueryShards is how many query logins the database's tenants are split
// across (dbchat.query_shards(), set by `dbchat migrate` from
// DBCHAT_QUERY_SHARDS), read on the runtime pool.
func QueryShards(ctx context.Context, db *DB) (int, error) {
	var n int
	err := db.OnceAs(ctx, Identity{}, func(tx Conn) error {
		return tx.QueryRow(ctx, `SELECT dbchat.query_shards()`).Scan(&n)
	})
	return n, Translate(err)
}

// queryPools are the sandbox's connections to one server: a pool per query
// login, and at most max connections open across them. A login that needs
// a connection when max are open closes an idle one of another login first
// (the sandbox's admission keeps at most max statements running, so one is
// idle or about to be).
type queryPools struct {
	max   int32
	pools []*pgxpool.Pool // by shard
}

// openWait bounds how long a new connection waits for another login's
// connection to be released so that it may be closed.
const openWait = DefaultMaxWait

// newQueryPools opens (lazily: no connection until a statement needs one)
// one pool per login, each from base with its login as the user and
// check run on every new connection with the login it must be.
func newQueryPools(base *pgxpool.Config, shards int, check func(c *pgx.Conn, login string) error) (*queryPools, error) {
	q := &queryPools{max: base.MaxConns, pools: make([]*pgxpool.Pool, max(shards, 1))}
	for k := range q.pools {
		cfg := base.Copy()
		login := loginOf(k)
		cfg.ConnConfig.User = login
		if len(q.pools) > 1 {
			cfg.BeforeConnect = func(ctx context.Context, _ *pgx.ConnConfig) error { return q.makeRoom(ctx) }
		}
		cfg.AfterConnect = func(_ context.Context, c *pgx.Conn) error { return check(c, login) }
		p, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			q.close()
			return nil, err
		}
		q.pools[k] = p
	}
	return q, nil
}

// acquire takes a connection of tenantID's login.
func (q *queryPools) acquire(ctx context.Context, tenantID uuid.UUID) (*pgxpool.Conn, error) {
	return q.pools[shardOf(tenantID, len(q.pools))].Acquire(ctx)
}

// established is the number of connections open across the pools: the
// ones being opened wait in makeRoom until they fit under max.
func (q *queryPools) established() int32 {
	var n int32
	for _, p := range q.pools {
		st := p.Stat()
		n += st.TotalConns() - st.ConstructingConns()
	}
	return n
}

// open is the number of connections open or being opened across the pools.
func (q *queryPools) open() int32 {
	var n int32
	for _, p := range q.pools {
		n += p.Stat().TotalConns()
	}
	return n
}

// makeRoom runs before a pool opens a connection (already counted by its
// pool): while more than max are open, it closes an idle connection (of
// another login, or one its own pool got back meanwhile), or waits for
// one to become idle.
func (q *queryPools) makeRoom(ctx context.Context) error {
	deadline := time.Now().Add(openWait)
	for q.open() > q.max {
		if !q.closeIdle(ctx) {
			if time.Now().After(deadline) {
				return fmt.Errorf("sandbox: no connection of another query login became idle in %s", openWait)
			}
			time.Sleep(time.Millisecond)
		}
	}
	return nil
}

// closeIdle closes one idle connection of the pool with the most idle
// ones; false if none is idle.
func (q *queryPools) closeIdle(ctx context.Context) bool {
	var from *pgxpool.Pool
	var most int32
	for _, p := range q.pools {
		if n := p.Stat().IdleConns(); n > most {
			from, most = p, n
		}
	}
	if from == nil {
		return false
	}
	// pgxpool hands out idle connections only all at once; the others go
	// back (and are reset again, off this path).
	idle := from.AcquireAllIdle(ctx)
	if len(idle) == 0 {
		return false
	}
	c := idle[0].Hijack()
	cctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = c.Close(cctx)
	cancel()
	for _, other := range idle[1:] {
		other.Release()
	}
	return true
}

// close closes every pool.
func (q *queryPools) close() {
	for _, p := range q.pools {
		if p != nil {
			p.Close()
		}
	}
}
