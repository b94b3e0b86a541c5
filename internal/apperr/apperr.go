// Package apperr is dbchat's one error vocabulary: a small set of codes, each
// mapped to exactly one HTTP status, so every layer reports failures the same
// way and the HTTP layer writes them in one place.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an error for clients; it is part of the API contract.
type Code string

// The codes. Anything that is not an *Error is CodeInternal.
const (
	Invalid          Code = "invalid"
	Unauthorized     Code = "unauthorized"
	Forbidden        Code = "forbidden"
	NotFound         Code = "not_found"
	Conflict         Code = "conflict"
	TooLarge         Code = "too_large"
	UnsupportedMedia Code = "unsupported_media_type"
	SQLRejected      Code = "sql_rejected"
	SQLFailed        Code = "sql_error"
	NoSQL            Code = "no_sql_generated"
	Unavailable      Code = "unavailable"
	Overloaded       Code = "overloaded"
	RequestTimeout   Code = "request_timeout"
	// InsufficientStorage: the database ran out of room for the request's
	// work (disk full, or temp_file_limit reached); nothing was changed.
	InsufficientStorage Code = "insufficient_storage"
	// RateLimited: the tenant's requests_per_second (with its burst) is
	// spent; Retry-After says when the next request may go.
	RateLimited Code = "rate_limited"
	// QuotaExceeded: the request would pass one of the tenant's quotas
	// (details.quota names it); nothing was changed.
	QuotaExceeded Code = "quota_exceeded"
	// CSRFFailed: a state-changing request authenticated by the session
	// cookie lacked the session's X-CSRF-Token; nothing was done.
	CSRFFailed Code = "csrf_failed"
	Internal   Code = "internal"
)

var statuses = map[Code]int{
	Invalid:             http.StatusBadRequest,
	SQLRejected:         http.StatusBadRequest,
	SQLFailed:           http.StatusBadRequest,
	NoSQL:               http.StatusUnprocessableEntity,
	Unauthorized:        http.StatusUnauthorized,
	Forbidden:           http.StatusForbidden,
	CSRFFailed:          http.StatusForbidden,
	NotFound:            http.StatusNotFound,
	Conflict:            http.StatusConflict,
	TooLarge:            http.StatusRequestEntityTooLarge,
	UnsupportedMedia:    http.StatusUnsupportedMediaType,
	Unavailable:         http.StatusServiceUnavailable,
	Overloaded:          http.StatusServiceUnavailable,
	RequestTimeout:      http.StatusRequestTimeout,
	InsufficientStorage: http.StatusInsufficientStorage,
	RateLimited:         http.StatusTooManyRequests,
	QuotaExceeded:       http.StatusForbidden,
	Internal:            http.StatusInternalServerError,
}

// Error is an error a client may see: its Message is safe to show. Cause is
// kept for logs only.
type Error struct {
	Code    Code
	Message string
	Details map[string]any
	Cause   error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap exposes the cause to errors.Is/As.
func (e *Error) Unwrap() error { return e.Cause }

// Errorf builds an Error with a formatted, client-safe message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap builds an Error that keeps cause for the logs.
func Wrap(code Code, cause error, message string) *Error {
	return &Error{Code: code, Message: message, Cause: cause}
}

// Field builds an Invalid error naming the offending input field.
func Field(field, format string, args ...any) *Error {
	e := Errorf(Invalid, "%s: %s", field, fmt.Sprintf(format, args...))
	e.Details = map[string]any{"field": field}
	return e
}

// As returns err as an *Error; anything else becomes an Internal error with a
// generic message, so internals never leak to clients.
func As(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Wrap(Internal, err, "internal error")
}

// CodeOf returns the code of err (Internal for unknown errors).
func CodeOf(err error) Code { return As(err).Code }

// HTTPStatus is the single code-to-status map.
func HTTPStatus(code Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}
