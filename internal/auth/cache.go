package auth

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/google/uuid"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dbchat/dbchat/internal/tenant"
)

// Cache remembers the keys a server verified lately, by their hash, so that
// a known key's request skips the lookup's round trip. It trusts nothing it
// remembers: the identity it returns carries a tenant.Check that confirms
// the key (dbchat.confirm_key: not revoked, its user and tenant active, the
// same user and role) in the same pipeline as the request's first
// statement, so a key revoked on any instance stops working on every
// instance at the next request, with no invalidation to miss. An entry
// lives a minute, which also paces the key's last_used_at (the lookup
// records use at most once a minute).
type Cache struct {
	mu      sync.Mutex
	entries map[[32]byte]cached
	ttl     time.Duration
	max     int
}

type cached struct {
	id      tenant.Identity
	expires time.Time
}

// NewCache returns a cache of at most size keys (at least 1).
func NewCache(size int) *Cache {
	return &Cache{entries: make(map[[32]byte]cached), ttl: time.Minute, max: max(1, size)}
}

// TokensFor builds a request's Tokens once its tenant is known (nil: take
// none).
type TokensFor func(tenantID uuid.UUID) *Tokens

// Tokens asks a confirmation to take request tokens from the tenant's rate
// bucket in the same call (see internal/limits): up to Take of them (0:
// none), with the configured defaults for a tenant without limits of its
// own. Taken receives the bucket as left and how many were taken (allowed
// false: refused), and returns the request's error for a refusal.
type Tokens struct {
	Take                      int
	DefaultRate, DefaultBurst *float64
	Taken                     func(rate, burst, tokens float64, allowed bool, taken int) error
}

// Authenticate resolves plain like AuthenticateBy (with lookup) the first
// time and then from memory, with the confirmation (and, with tokens, the
// rate check) deferred to the request's first statement. A key whose
// confirmation fails is forgotten.
func (c *Cache) Authenticate(ctx context.Context, db *tenant.DB, plain string, lookup Lookup, tokens TokensFor) (tenant.Identity, bool, error) {
	hash := [32]byte(Hash(plain))
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries[hash]
	c.mu.Unlock()
	if !ok || now.After(e.expires) {
		id, err := AuthenticateBy(ctx, db, plain, lookup)
		if err == nil {
			c.put(hash, cached{id: id, expires: now.Add(c.ttl)})
		}
		return id, false, err
	}
	id := e.id
	var t *Tokens
	if tokens != nil {
		t = tokens(id.TenantID)
	}
	id.Check = c.check(hash, id, t)
	return id, true, nil
}

func (c *Cache) put(hash [32]byte, e cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.entries { // map order is random: a random eviction
		if len(c.entries) < c.max {
			break
		}
		delete(c.entries, k)
	}
	c.entries[hash] = e
}

func (c *Cache) forget(hash [32]byte) {
	c.mu.Lock()
	delete(c.entries, hash)
	c.mu.Unlock()
}

// check is dbchat.confirm_key's call for id's key.
func (c *Cache) check(hash [32]byte, id tenant.Identity, tokens *Tokens) *tenant.Check {
	return Confirmation("dbchat.confirm_key", []any{id.KeyID}, tokens, func(string) error {
		c.forget(hash)
		return errUnauthorized
	})
}

// ErrChanged marks a confirmation refused because the credential's user
// changed role since the server remembered it: the credential is still
// good, so the server signs in afresh and goes on (a GET runs its handler
// again; see internal/server).
var ErrChanged = errors.New("auth: the user's role changed since the credential was remembered")

// changed is the refusal for ErrChanged.
func changed() error {
	return apperr.Wrap(apperr.Unauthorized, ErrChanged, "the user's role changed; sign in again")
}

// Confirmation is the tenant.Check that calls fn, a confirm_* function of
// migration 00025 (confirm_key, confirm_user, confirm_session), with its
// credential's arguments (args) and the rate arguments: fn raises SQLSTATE
// DC401 (detail "changed": ErrChanged) for a credential no longer
// good (the request's error is then refused's, given the error's detail,
// and refused also forgets the credential) and DC429 for a refused rate
// token (tokens.Taken's error).
func Confirmation(fn string, args []any, tokens *Tokens, refused func(detail string) error) *tenant.Check {
	t := Tokens{}
	if tokens != nil {
		t = *tokens
	}
	return &tenant.Check{
		Func: fn,
		Args: append(args, t.Take, t.DefaultRate, t.DefaultBurst),
		Scan: func(row pgx.Row) error {
			var rate, burst, left float64
			var allowed bool
			var taken int
			err := row.Scan(&rate, &burst, &left, &allowed, &taken)
			var pg *pgconn.PgError
			switch {
			case errors.As(err, &pg) && pg.Code == "DC401" && pg.Detail == "changed":
				refused(pg.Detail) // forgets the credential
				return changed()
			case errors.As(err, &pg) && pg.Code == "DC401":
				return refused(pg.Detail)
			case errors.As(err, &pg) && pg.Code == "DC429" && t.Taken != nil:
				var b struct{ Rate, Burst, Tokens float64 }
				if jerr := json.Unmarshal([]byte(pg.Detail), &b); jerr != nil {
					return err
				}
				return t.Taken(b.Rate, b.Burst, b.Tokens, false, 0)
			case err != nil:
				return err
			case t.Taken != nil:
				return t.Taken(rate, burst, left, allowed, taken)
			}
			return nil
		},
	}
}
