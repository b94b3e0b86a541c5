package server

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/provision"
	"github.com/dbchat/dbchat/internal/tenant"
)

// callerIdentity is the caller behind the request's key (set by authenticate).
func callerIdentity(c *gin.Context) tenant.Identity {
	id, _ := tenant.FromContext(c.Request.Context())
	return id
}

// errNoSuchObject is the one answer for an id the caller may not see, whether it
// is unknown, another tenant's or another user's: existence never leaks.
func errNoSuchObject() error { return apperr.Errorf(apperr.NotFound, "not found") }

// optionalUserName trims a display name and checks its length.
func optionalUserName(field, name string) (string, error) {
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > 200 {
		return name, apperr.Field(field, "must be at most 200 characters")
	}
	return name, nil
}

type userRequest struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	Role  string `json:"role"`
}

// createUser adds a user to the caller's tenant (admins only).
func (s *Server) createUser(c *gin.Context) {
	var req userRequest
	if err := s.bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	email, err := provision.NormaliseEmail("email", req.Email)
	if err != nil {
		s.fail(c, err)
		return
	}
	name, err := optionalUserName("name", req.Name)
	if err != nil {
		s.fail(c, err)
		return
	}
	if r := tenant.Role(req.Role); r != tenant.Admin && r != tenant.Member {
		s.fail(c, apperr.Field("role", "must be %q or %q", tenant.Admin, tenant.Member))
		return
	}
	var u dbsqlc.User
	err = s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		u, err = s.q.CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: email, Name: name, Role: req.Role})
		return err
	})
	if apperr.CodeOf(err) == apperr.Conflict {
		err = apperr.Errorf(apperr.Conflict, "a user with email %q already exists", email)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, toUserJSON(u))
}

// listUsers lists the tenant's users for admins and only the caller for
// members.
func (s *Server) listUsers(c *gin.Context) {
	me := callerIdentity(c)
	var users []dbsqlc.User
	err := s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		if me.Role != tenant.Admin {
			u, err := s.q.GetUser(ctx, tx, me.UserID)
			users = []dbsqlc.User{u}
			return err
		}
		var err error
		users, err = s.q.ListUsers(ctx, tx)
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]userJSON, 0, len(users))
	for _, u := range users {
		out = append(out, toUserJSON(u))
	}
	c.JSON(http.StatusOK, gin.H{"users": out})
}

// deleteUser removes a user and, by cascade, its keys (admins only). An
// admin cannot delete itself, so a tenant always keeps an admin who can act.
func (s *Server) deleteUser(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	if id == callerIdentity(c).UserID {
		s.fail(c, apperr.Errorf(apperr.Invalid, "you cannot delete yourself; ask another admin"))
		return
	}
	var n int64
	err = s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		n, err = s.q.DeleteUser(ctx, tx, id)
		return err
	})
	if err == nil && n == 0 {
		err = errNoSuchObject()
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

type apiKeyRequest struct {
	Name   string  `json:"name"`
	UserID *string `json:"user_id"` // parsed here, so a bad value names the field
}

type apiKeyJSON struct {
	ID         uuid.UUID  `json:"id"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	UserID     uuid.UUID  `json:"user_id"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

type newAPIKeyJSON struct {
	ID        uuid.UUID `json:"id"`
	Name      string    `json:"name"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
	UserID    uuid.UUID `json:"user_id"`
	APIKey    string    `json:"api_key"`
}

// createAPIKey mints a key, shown once in the response and stored as a
// hash. Members mint keys for themselves only; admins for any user of the
// tenant.
func (s *Server) createAPIKey(c *gin.Context) {
	var req apiKeyRequest
	if err := s.bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	name := strings.TrimSpace(req.Name)
	if n := utf8.RuneCountInString(name); n == 0 || n > 200 {
		s.fail(c, apperr.Field("name", "must be 1 to 200 characters"))
		return
	}
	me := callerIdentity(c)
	owner := me.UserID
	if req.UserID != nil {
		id, err := uuid.Parse(*req.UserID)
		if err != nil {
			s.fail(c, apperr.Field("user_id", "must be a UUID"))
			return
		}
		owner = id
	}
	if owner != me.UserID && me.Role != tenant.Admin {
		s.fail(c, apperr.Errorf(apperr.Forbidden, "members may only create keys for themselves"))
		return
	}
	k, err := auth.Generate(me.TenantID)
	if err != nil {
		s.fail(c, err)
		return
	}
	var row dbsqlc.CreateAPIKeyRow
	err = s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		row, err = s.q.CreateAPIKey(ctx, tx, dbsqlc.CreateAPIKeyParams{UserID: owner, Name: name, Prefix: k.Prefix, KeyHash: k.Hash})
		return err
	})
	if apperr.CodeOf(err) == apperr.NotFound {
		// The (tenant, user) foreign key: no such user in this tenant.
		err = apperr.Errorf(apperr.NotFound, "user not found")
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, newAPIKeyJSON{
		ID: row.ID, Name: row.Name, Prefix: row.Prefix, CreatedAt: row.CreatedAt, UserID: row.UserID, APIKey: k.Plain,
	})
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
func (s *Server) listAPIKeys(c *gin.Context) {
	var rows []dbsqlc.ListAPIKeysRow
	err := s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		var err error
		rows, err = s.q.ListAPIKeys(ctx, tx, ownKeysOnly(callerIdentity(c)))
		return err
	})
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]apiKeyJSON, 0, len(rows))
	for _, r := range rows {
		out = append(out, apiKeyJSON{
			ID: r.ID, Name: r.Name, Prefix: r.Prefix, UserID: r.UserID,
			CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, RevokedAt: r.RevokedAt,
		})
	}
	c.JSON(http.StatusOK, gin.H{"api_keys": out})
}

// deleteAPIKey revokes a key; the row stays for audit. Revoking is
// idempotent. Members may revoke only their own keys; another user's key is
// "not found", like an unknown one.
func (s *Server) deleteAPIKey(c *gin.Context) {
	id, err := pathID(c, "id")
	if err != nil {
		s.fail(c, err)
		return
	}
	var n int64
	err = s.once(c, func(ctx context.Context, tx tenant.Conn) error {
		n, err = s.q.RevokeKey(ctx, tx, dbsqlc.RevokeKeyParams{ID: id, UserID: ownKeysOnly(callerIdentity(c))})
		return err
	})
	if err == nil && n == 0 {
		err = errNoSuchObject()
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
