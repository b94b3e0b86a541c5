package tenant

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/dbchat/dbchat/internal/apperr"
)

// Translate turns driver errors into apperr errors. It is the database
// boundary: pgx.ErrNoRows and *pgconn.PgError stop here.
func Translate(err error) error {
	if err == nil {
		return nil
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return ae
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return apperr.Wrap(apperr.NotFound, err, "not found")
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return apperr.Wrap(apperr.Unavailable, err, "request cancelled or timed out")
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return apperr.Wrap(apperr.Internal, err, "internal error")
	}
	switch {
	case pg.Code == "23505": // unique_violation
		return apperr.Wrap(apperr.Conflict, err, "already exists")
	case pg.Code == "23503": // foreign_key_violation: the referenced row is not in this tenant
		return apperr.Wrap(apperr.NotFound, err, "referenced object not found")
	case pg.Code == "23502", pg.Code == "23514", pg.Code[:2] == "22": // not null, check, data exceptions
		return apperr.Wrap(apperr.Invalid, err, "invalid value: "+pg.Message)
	case pg.Code == "42602": // invalid_name, raised by the DDL functions' identifier checks
		return apperr.Wrap(apperr.Invalid, err, pg.Message)
	case pg.Code == "42P01": // undefined_table
		return apperr.Wrap(apperr.NotFound, err, "not found")
	case pg.Code == "42P07", pg.Code == "42701": // duplicate table or column
		return apperr.Wrap(apperr.Conflict, err, "already exists")
	case pg.Code == "57014": // query_canceled (statement_timeout)
		return apperr.Wrap(apperr.Unavailable, err, "statement timed out")
	}
	return apperr.Wrap(apperr.Internal, err, "internal error")
}
