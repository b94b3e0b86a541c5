package tenant

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
)

// Check confirms in the database, once per request, the credential an
// identity was resolved from without a database lookup (a key the server
// verified lately, see internal/auth's Cache). It costs no round trip of
// its own: the request's first tenant statement travels in one pipeline
// behind the check, which replaces the context statement, so a credential
// that is no longer good (revoked, its user or tenant deactivated) raises
// there and the statement behind it never runs.
//
// Func names a function that takes the four context settings (tenant, user,
// role, claims) as its first arguments, as set_config's results, so they are
// set before its body runs, then Args; it returns one row, which Scan reads
// (Scan may also turn the function's error into the caller's). Or, with
// Select set instead of Func, the statement selects the four set_config
// calls and then Select, a select list whose parameters are Args from $5 on
// (the tenant setting is $1): a check that holds whichever of them
// PostgreSQL evaluates first. A request that answers without any tenant
// statement calls DB.Verify first.
type Check struct {
	Func   string
	Select string
	Args   []any
	Scan   func(row pgx.Row) error

	mu   sync.Mutex
	done bool
	err  error
}

// claim takes c for the caller's batch. pending reports that the check has
// not run yet: the caller then holds c until it calls finish or unclaim
// (while its batch is in flight), so a request's concurrent transactions
// run it once. Once run, claim returns its outcome.
func (c *Check) claim() (pending bool, err error) {
	c.mu.Lock()
	if c.done {
		defer c.mu.Unlock()
		return false, c.err
	}
	return true, nil
}

// finish records the check's outcome (translated, like every error of this
// package) and releases c.
func (c *Check) finish(err error) {
	c.done, c.err = true, Translate(err)
	c.mu.Unlock()
}

// unclaim releases c without an outcome (the check did not get to run).
func (c *Check) unclaim() { c.mu.Unlock() }

// Pending reports whether the check has yet to run (false for nil).
func (c *Check) Pending() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.done
}

// checkSQL caches each function's calling statement, so pgx's statement
// cache sees one text per function.
var checkSQL sync.Map

// settingCalls set the four context settings from $1 to $4.
const settingCalls = `set_config('app.tenant_id', $1, true), set_config('app.user_id', $2, true),
	set_config('app.role', $3, true), set_config('app.claims', $4, true)`

// statement calls c.Func with the context settings first, or selects them
// and c.Select.
func (c *Check) statement() string {
	key := c.Func + "/" + c.Select + "/" + strconv.Itoa(len(c.Args))
	if s, ok := checkSQL.Load(key); ok {
		return s.(string)
	}
	var b strings.Builder
	if c.Func == "" {
		b.WriteString("SELECT " + settingCalls + ", " + c.Select)
	} else {
		b.WriteString("SELECT * FROM " + c.Func + "(" + settingCalls)
		for i := range c.Args {
			b.WriteString(", $" + strconv.Itoa(i+5))
		}
		b.WriteString(")")
	}
	s, _ := checkSQL.LoadOrStore(key, b.String())
	return s.(string)
}

// Verify runs the pending check of ctx's identity on its own, in one round
// trip; it returns the check's outcome (nil without one). A request whose
// handler answered without a tenant statement, or that is about to do
// costly work elsewhere first (the sandbox, a language model), calls it.
func (db *DB) Verify(ctx context.Context) error {
	id, ok := FromContext(ctx)
	if !ok || id.Check == nil {
		return nil
	}
	pending, err := id.Check.claim()
	if !pending {
		return err
	}
	id.Check.unclaim()
	return db.OnceAs(ctx, id, func(tx Conn) error {
		_, err := tx.Exec(ctx, "SELECT")
		return err
	})
}
