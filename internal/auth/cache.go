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
// remembers: the identity it returns carries a tenant.Check (Confirm) that
// confirms, in the same pipeline as the request's first statement, that
// the tenant's credential epoch has not moved since the lookup read it; a
// trigger raises the epoch whenever a key is revoked or a user or tenant
// changes (migration 00034), so a key revoked on any instance, or by a DBA
// in psql, stops working on every instance at the next request, with no
// invalidation to miss. An entry lives a minute, which also paces the
// key's last_used_at (the lookup records use at most once a minute).
//
// An entry outlives its minute as a known key: its next lookup runs in its
// tenant's share of the pool, like its confirmations, not among the
// sign-ins (tenant.DB.LookupAs), where forged keys naming the tenant may
// crowd it out. Only the key's holder can send a known key's hash, so no
// flood reaches that path; a lookup that refuses the key forgets it.
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
		id, err := authenticateBy(ctx, db, plain, lookup, ok)
		switch {
		case err == nil:
			c.put(hash, cached{id: id, expires: now.Add(c.ttl)})
		case ok && apperr.CodeOf(err) == apperr.Unauthorized:
			c.forget(hash) // no longer good: its next lookup is a sign-in again
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

// check confirms id's key: its tenant's credential epoch is id's.
func (c *Cache) check(hash [32]byte, id tenant.Identity, tokens *Tokens) *tenant.Check {
	return Confirm(id, tokens, func(string) error {
		c.forget(hash)
		return errUnauthorized
	})
}

// epochHolds is the select list that confirms a remembered credential: its
// tenant's credential epoch is still $5. The tenant is a parameter as well
// as the policy's setting, so a row found is that tenant's at that epoch
// whichever PostgreSQL evaluates first, the settings or this (evaluated
// first, it finds no row and refuses). dbchat.credential_changed raises
// DC401 "changed", called by CASE only when the row is missing.
const epochHolds = `CASE WHEN EXISTS (SELECT FROM dbchat.credential_epochs e
	WHERE e.tenant_id = nullif($1, '')::uuid AND e.epoch = $5) THEN true ELSE dbchat.credential_changed() END`

// Confirm is the tenant.Check of id, a credential remembered since its
// lookup read id.Epoch: the tenant's credential epoch has not moved since
// (migration 00034), checked in the statement that sets the request's
// context. Anything that could refuse the credential raised the epoch, so
// a moved epoch is refused as changed (ErrChanged: refused forgets the
// credential and the server looks it up again, which refuses it for good
// if it no longer holds). With a token to take, the check is
// dbchat.confirm_epoch, which takes it in the same call (see
// Confirmation).
func Confirm(id tenant.Identity, tokens *Tokens, refused func(detail string) error) *tenant.Check {
	if tokens != nil && tokens.Take > 0 {
		return Confirmation("dbchat.confirm_epoch", []any{id.Epoch}, tokens, refused)
	}
	return &tenant.Check{
		Select: epochHolds,
		Args:   []any{id.Epoch},
		Scan: func(row pgx.Row) error {
			var holds bool
			err := row.Scan(nil, nil, nil, nil, &holds)
			if err != nil {
				return confirmError(err, Tokens{}, refused)
			}
			if tokens != nil && tokens.Taken != nil {
				return tokens.Taken(0, 0, 0, true, 0)
			}
			return nil
		},
	}
}

// ErrChanged marks a confirmation refused because something the credential
// depends on changed since the server remembered it (its tenant's
// credential epoch moved: a key revoked, a user's role changed…): the
// server forgets it, signs in afresh, which refuses a credential no longer
// good, and otherwise goes on (a GET runs its handler again; see
// internal/server).
var ErrChanged = errors.New("auth: the credential's key, user or tenant changed since it was remembered")

// changed is the refusal for ErrChanged.
func changed() error {
	return apperr.Wrap(apperr.Unauthorized, ErrChanged, "the credential changed since it was remembered; sign in again")
}

// Confirmation is the tenant.Check that calls fn, a confirm_* function
// (confirm_session of migration 00025, confirm_epoch of 00034), with its
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
			switch {
			case err != nil:
				return confirmError(err, t, refused)
			case t.Taken != nil:
				return t.Taken(rate, burst, left, allowed, taken)
			}
			return nil
		},
	}
}

// confirmError is a confirmation's error as the request's: DC401 through
// refused (with detail "changed", refused forgets the credential and the
// error is ErrChanged's), DC429 through t.Taken.
func confirmError(err error, t Tokens, refused func(detail string) error) error {
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
	}
	return err
}
