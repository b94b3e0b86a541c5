package server

import (
	"context"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// errNoSuchObject is the one answer for an id the caller may not see, whether it
// is unknown, another tenant's or another user's: existence never leaks.
func errNoSuchObject() error { return apperr.Errorf(apperr.NotFound, "not found") }

// deleted answers a delete that matched n rows: none is "not found".
func deleted(n int64, err error) (int, any, error) {
	if err == nil && n == 0 {
		err = errNoSuchObject()
	}
	return reply(http.StatusNoContent, nil, err)
}

type userRequest struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

// Validate normalises the email and name and checks the role.
func (r *userRequest) Validate() error {
	email, err := provision.NormaliseEmail("email", r.Email)
	if err != nil {
		return err
	}
	r.Email, r.Name = email, strings.TrimSpace(r.Name)
	if utf8.RuneCountInString(r.Name) > 200 {
		return apperr.Field("name", "must be at most 200 characters")
	}
	if role := tenant.Role(r.Role); role != tenant.Admin && role != tenant.Member {
		return apperr.Field("role", "must be %q or %q", tenant.Admin, tenant.Member)
	}
	return nil
}

// createUser adds a user to the caller's tenant (admins only).
func (s *Server) createUser(c *gin.Context) (int, any, error) {
	req, err := bind[userRequest](s, c)
	if err != nil {
		return 0, nil, err
	}
	u, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (dbsqlc.User, error) {
		return s.q.CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: req.Email, Name: req.Name, Role: req.Role})
	})
	if apperr.CodeOf(err) == apperr.Conflict {
		err = apperr.Errorf(apperr.Conflict, "a user with email %q already exists", req.Email)
	}
	return reply(http.StatusCreated, toUserJSON(u), err)
}

// listUsers lists the tenant's users for admins and only the caller for
// members.
func (s *Server) listUsers(c *gin.Context) (int, any, error) {
	me := callerIdentity(c)
	users, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) ([]dbsqlc.User, error) {
		if me.Role != tenant.Admin {
			u, err := s.q.GetUser(ctx, tx, me.UserID)
			return []dbsqlc.User{u}, err
		}
		return s.q.ListUsers(ctx, tx)
	})
	return reply(http.StatusOK, gin.H{"users": convert(users, toUserJSON)}, err)
}

// deleteUser removes a user and, by cascade, its keys (admins only). An
// admin cannot delete itself, so a tenant always keeps an admin who can act.
func (s *Server) deleteUser(c *gin.Context) (int, any, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	if id == callerIdentity(c).UserID {
		return 0, nil, apperr.Errorf(apperr.Invalid, "you cannot delete yourself; ask another admin")
	}
	return deleted(query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (int64, error) {
		return s.q.DeleteUser(ctx, tx, id)
	}))
}

type apiKeyRequest struct {
	Name   string  `json:"name"`
	UserID *string `json:"user_id"` // parsed here, so a bad value names the field

	owner *uuid.UUID // UserID parsed by Validate
}

// Validate trims and bounds the name and parses the owner's id.
func (r *apiKeyRequest) Validate() error {
	r.Name = strings.TrimSpace(r.Name)
	if n := utf8.RuneCountInString(r.Name); n == 0 || n > 200 {
		return apperr.Field("name", "must be 1 to 200 characters")
	}
	if r.UserID != nil {
		id, err := uuid.Parse(*r.UserID)
		if err != nil {
			return apperr.Field("user_id", "must be a UUID")
		}
		r.owner = &id
	}
	return nil
}

// keyOwner is whom a new key belongs to: the caller unless an admin named
// another user; members mint keys for themselves only.
func keyOwner(me tenant.Identity, asked *uuid.UUID) (uuid.UUID, error) {
	if asked == nil || *asked == me.UserID {
		return me.UserID, nil
	}
	if me.Role != tenant.Admin {
		return uuid.Nil, apperr.Errorf(apperr.Forbidden, "members may only create keys for themselves")
	}
	return *asked, nil
}

// createAPIKey mints a key, shown once in the response and stored as a
// hash. Members mint keys for themselves only; admins for any user of the
// tenant.
func (s *Server) createAPIKey(c *gin.Context) (int, any, error) {
	req, err := bind[apiKeyRequest](s, c)
	if err != nil {
		return 0, nil, err
	}
	me := callerIdentity(c)
	owner, err := keyOwner(me, req.owner)
	if err != nil {
		return 0, nil, err
	}
	k, err := auth.Generate(me.TenantID)
	if err != nil {
		return 0, nil, err
	}
	row, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (dbsqlc.CreateAPIKeyRow, error) {
		return s.q.CreateAPIKey(ctx, tx, dbsqlc.CreateAPIKeyParams{UserID: owner, Name: req.Name, Prefix: k.Prefix, KeyHash: k.Hash})
	})
	if apperr.CodeOf(err) == apperr.NotFound {
		err = apperr.Errorf(apperr.NotFound, "user not found") // the (tenant, user) foreign key
	}
	return reply(http.StatusCreated, newAPIKeyJSON{
		ID: row.ID, Name: row.Name, Prefix: row.Prefix, CreatedAt: row.CreatedAt, UserID: row.UserID, APIKey: k.Plain,
	}, err)
}

// ownKeysOnly is the user filter for key queries: nil (every key of the
// tenant) for admins, the caller for members.
func ownKeysOnly(me tenant.Identity) *uuid.UUID {
	if me.Role == tenant.Admin {
		return nil
	}
	return &me.UserID
}

// listAPIKeys lists key metadata, never a key or its hash: the tenant's keys
// for admins, their own for members.
func (s *Server) listAPIKeys(c *gin.Context) (int, any, error) {
	rows, err := query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) ([]dbsqlc.ListAPIKeysRow, error) {
		return s.q.ListAPIKeys(ctx, tx, ownKeysOnly(callerIdentity(c)))
	})
	return reply(http.StatusOK, gin.H{"api_keys": convert(rows, toAPIKeyJSON)}, err)
}

// deleteAPIKey revokes a key; the row stays for audit. Revoking is
// idempotent. Members may revoke only their own keys; another user's key is
// "not found", like an unknown one.
func (s *Server) deleteAPIKey(c *gin.Context) (int, any, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	return deleted(query(c, s.db.Once, func(ctx context.Context, tx tenant.Conn) (int64, error) {
		return s.q.RevokeKey(ctx, tx, dbsqlc.RevokeKeyParams{ID: id, UserID: ownKeysOnly(callerIdentity(c))})
	}))
}
