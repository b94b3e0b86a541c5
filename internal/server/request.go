package server

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/dbchat/dbchat/internal/apperr"
)

// bindJSON decodes a JSON body into dst: 415 for another content type, 413
// past the size limit, 400 for malformed JSON or unknown fields.
func (s *Server) bindJSON(c *gin.Context, dst any) error {
	if mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type")); mt != "application/json" {
		return apperr.Errorf(apperr.UnsupportedMedia, "Content-Type must be application/json")
	}
	body := http.MaxBytesReader(c.Writer, c.Request.Body, s.cfg.MaxJSONBytes)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return apperr.Errorf(apperr.Invalid, "request body must be a single JSON value")
	}
	return nil
}

// jsonError turns a decoding error into a client error that names the field.
func jsonError(err error) error {
	var tooLarge *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, new(*bodyStalledError)):
		return stalledErr(err)
	case errors.As(err, &tooLarge):
		return apperr.Errorf(apperr.TooLarge, "request body exceeds %d bytes", tooLarge.Limit)
	case errors.As(err, &typeErr):
		return apperr.Field(typeErr.Field, "must be %s", typeErr.Type.String())
	case errors.As(err, &syntaxErr):
		return apperr.Errorf(apperr.Invalid, "malformed JSON at byte %d", syntaxErr.Offset)
	case errors.Is(err, io.EOF):
		return apperr.Errorf(apperr.Invalid, "request body is empty")
	}
	return apperr.Wrap(apperr.Invalid, err, "invalid JSON: "+err.Error())
}

// pathID parses a uuid path parameter. A malformed id is "not found", like
// an id that belongs to another tenant: existence never leaks.
func pathID(c *gin.Context, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		return uuid.Nil, apperr.Errorf(apperr.NotFound, "not found")
	}
	return id, nil
}

// queryInt reads an optional integer query parameter within [lo, hi].
func queryInt(c *gin.Context, name string, def, lo, hi int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, apperr.Field(name, "must be an integer from %d to %d", lo, hi)
	}
	return n, nil
}

// queryBool reads an optional true/false query parameter (nil when absent).
func queryBool(c *gin.Context, name string) (*bool, error) {
	switch c.Query(name) {
	case "":
		return nil, nil
	case "true":
		return &[]bool{true}[0], nil
	case "false":
		return &[]bool{false}[0], nil
	}
	return nil, apperr.Field(name, "must be true or false")
}

// bind decodes the JSON body into a new T (see bindJSON) and, when *T has a
// Validate method, runs it, so a handler only ever sees checked input.
// Validate may also normalise (trim a name, parse an id).
func bind[T any](s *Server, c *gin.Context) (T, error) {
	var v T
	if err := s.bindJSON(c, &v); err != nil {
		return v, err
	}
	if val, ok := any(&v).(interface{ Validate() error }); ok {
		return v, val.Validate()
	}
	return v, nil
}

// pathIDAndBody is pathID(name) followed by bind: the shape of every update
// of an object named by its id.
func pathIDAndBody[T any](s *Server, c *gin.Context, name string) (uuid.UUID, T, error) {
	var v T
	id, err := pathID(c, name)
	if err != nil {
		return id, v, err
	}
	v, err = bind[T](s, c)
	return id, v, err
}

// optionalQuery is a query parameter's value, nil when absent or empty.
func optionalQuery(c *gin.Context, name string) *string {
	if v := c.Query(name); v != "" {
		return &v
	}
	return nil
}
