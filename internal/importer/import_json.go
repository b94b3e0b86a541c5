package importer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/tenant"
)

// JSON imports r, a JSON array of objects keyed by column name, into t within
// tx, all or nothing, and returns the number of rows inserted. The array is
// walked element by element with json.Decoder, never held whole. Errors are
// *apperr.Error; a bad element is Invalid with Details {"index": 0-based
// array index, "column": name}.
//
// Values: null is NULL (as is a missing key). A jsonb column takes any JSON
// value as is (a JSON string stays a jsonb string). Other columns take a JSON
// string, converted by the same rules as a CSV field (so "" is an error
// except for text), or a number or boolean literal, converted from its
// literal text (so numbers reach numeric and bigint without float loss, and
// a text column stores the literal). Objects and arrays are refused except
// for jsonb.
func JSON(ctx context.Context, tx tenant.Conn, t catalog.Table, r io.Reader) (int64, error) {
	cols, byName, err := tableColumns(t)
	if err != nil {
		return 0, err
	}
	g := &elementGuard{r: r, max: MaxRecordBytes}
	dec := json.NewDecoder(g)
	tok, err := dec.Token()
	if err == io.EOF {
		return 0, apperr.Errorf(apperr.Invalid, "the JSON body is empty: send an array of objects")
	}
	if err != nil {
		return 0, jsonError(err, 0)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return 0, apperr.Errorf(apperr.Invalid, "the JSON body must be an array of objects keyed by column name")
	}

	index := int64(-1)
	seen := make([]bool, len(cols))
	var raw json.RawMessage
	next := func(vals []any) (bool, error) {
		if !dec.More() {
			if _, err := dec.Token(); err != nil { // the closing bracket
				return false, jsonError(err, index+1)
			}
			if _, err := dec.Token(); err != io.EOF {
				var syn *json.SyntaxError
				if err == nil || errors.As(err, &syn) {
					return false, apperr.Errorf(apperr.Invalid, "unexpected data after the JSON array")
				}
				return false, jsonError(err, index+1)
			}
			return false, nil
		}
		index++
		g.start = dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return false, jsonError(err, index)
		}
		if d, ok := tok.(json.Delim); !ok || d != '{' {
			e := apperr.Errorf(apperr.Invalid, "index %d: each array element must be a JSON object", index)
			e.Details = map[string]any{"index": index}
			return false, e
		}
		clear(seen)
		clear(vals)
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return false, jsonError(err, index)
			}
			key, _ := tok.(string)
			i, ok := byName[key]
			if !ok {
				e := apperr.Errorf(apperr.Invalid, "index %d: unknown column %s (table %q has: %s)", index, quote(key), t.Name, quoteList(columnNames(cols)))
				e.Details = map[string]any{"index": index, "columns": []string{key}}
				return false, e
			}
			if seen[i] {
				e := apperr.Errorf(apperr.Invalid, "index %d: key %q appears twice", index, key)
				e.Details = map[string]any{"index": index, "column": key}
				return false, e
			}
			seen[i] = true
			if err := dec.Decode(&raw); err != nil {
				return false, jsonError(err, index)
			}
			v, err := jsonValue(&cols[i], raw)
			if err != nil {
				return false, valueError("index", index, key, err)
			}
			vals[i] = v
		}
		if _, err := dec.Token(); err != nil { // the closing brace
			return false, jsonError(err, index)
		}
		for i := range cols {
			if vals[i] == nil && !cols[i].nullable {
				return false, valueError("index", index, cols[i].name, errNotNull)
			}
		}
		return true, nil
	}
	return load(ctx, tx, t, cols, next)
}

// jsonValue converts one JSON value (syntactically valid, from the decoder)
// for column c.
func jsonValue(c *column, raw json.RawMessage) (any, error) {
	if c.sqlType == "jsonb" {
		if raw[0] == 'n' {
			return nil, nil
		}
		s := string(raw)
		if err := checkJSONText(s); err != nil {
			return nil, err
		}
		return s, nil
	}
	switch raw[0] {
	case 'n':
		return nil, nil
	case '{':
		return nil, fmt.Errorf("expected %s, got a JSON object", c.sqlType)
	case '[':
		return nil, fmt.Errorf("expected %s, got a JSON array", c.sqlType)
	case '"':
		if !utf8.Valid(raw) {
			return nil, errors.New("value is not valid UTF-8")
		}
		inner := raw[1 : len(raw)-1]
		if bytes.IndexByte(inner, '\\') < 0 {
			return c.conv(string(inner))
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("invalid JSON string: %v", err)
		}
		return c.conv(s)
	}
	return c.conv(string(raw)) // a number, true or false
}

// checkJSONText checks valid JSON text for what jsonb cannot store.
func checkJSONText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("value is not valid UTF-8")
	}
	return checkJSONValues(s)
}

// errElementTooLarge stops the decoder from buffering a giant element.
var errElementTooLarge = fmt.Errorf("array element larger than %d bytes", MaxRecordBytes)

// elementGuard fails reads once the current array element (from start, a
// decoder offset) has taken more than max bytes.
type elementGuard struct {
	r          io.Reader
	read       int64
	start, max int64
}

func (g *elementGuard) Read(p []byte) (int, error) {
	if g.read-g.start > g.max {
		return 0, errElementTooLarge
	}
	n, err := g.r.Read(p)
	g.read += int64(n)
	return n, err
}

// jsonError turns a decoder error into a client error.
func jsonError(err error, index int64) error {
	var syn *json.SyntaxError
	var e *apperr.Error
	switch {
	case errors.Is(err, errElementTooLarge):
		e = apperr.Errorf(apperr.Invalid, "index %d: %s", index, errElementTooLarge.Error())
	case errors.As(err, &syn):
		e = apperr.Errorf(apperr.Invalid, "index %d: invalid JSON at byte %d: %s", index, syn.Offset, syn.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		e = apperr.Errorf(apperr.Invalid, "index %d: the JSON ends before the array is closed", index)
	default:
		return readError(err)
	}
	e.Details = map[string]any{"index": index}
	return e
}
