package tenant

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

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
	if ConnectionLost(err) {
		return apperr.Wrap(apperr.Unavailable, err, "the database is unavailable; try again later")
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
		return apperr.Wrap(apperr.Unavailable, err, "statement timed out (or was cancelled); nothing was changed")
	case pg.Code == "25P03": // idle_in_transaction_session_timeout
		return apperr.Wrap(apperr.Unavailable, err, "transaction idle for too long; nothing was changed")
	case pg.Code == "53100", pg.Code == "53400": // disk_full, configuration_limit_exceeded (temp_file_limit)
		return apperr.Wrap(apperr.InsufficientStorage, err,
			"the database ran out of space for this request (disk full or its temporary file limit); nothing was changed")
	case pg.Code == "53300": // too_many_connections
		return apperr.Wrap(apperr.Overloaded, err, "the database has no free connections; try again later")
	}
	return apperr.Wrap(apperr.Internal, err, "internal error")
}

// ConnectionLost reports whether err means the database (or the path to
// it) is gone rather than that a statement failed: a connection that could
// not be made, a server shutting down, starting up or in recovery (57P01,
// 57P02, 57P03), a connection exception (08xxx), or a socket that died
// under a statement (EOF, reset, a closed connection).
func ConnectionLost(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03", pg.Code[:2] == "08":
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// lostInSandbox reports a sandbox statement whose connection is gone
// (closed is the connection's state after err) as 503 unavailable. Its
// cause keeps the driver's text for the logs but not the *pgconn.PgError
// itself: the sandbox shows a failed statement's database message to the
// client (400 sql_error), and a server's "terminating connection due to
// unexpected postmaster exit" is not the statement's error. Any other
// error, including a connection exception after which the connection lives
// on (08P01 for a malformed statement), is returned as it is. A shutdown
// (57P01-57P03) counts as lost even before the socket is seen closed.
func lostInSandbox(err error, closed bool) error {
	var pg *pgconn.PgError
	// A server shutting down (57P0x) ends the connection after its FATAL,
	// which can arrive before the socket is seen closed.
	shutdown := errors.As(err, &pg) && strings.HasPrefix(pg.Code, "57P0")
	if err == nil || !closed && !shutdown || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || !ConnectionLost(err) {
		return err
	}
	return apperr.Wrap(apperr.Unavailable, lostConnection(err.Error()), "the database is unavailable; try again later")
}

// lostConnection is a lost connection's text, deliberately without the
// error it came from (see lostInSandbox).
type lostConnection string

func (l lostConnection) Error() string { return string(l) }
