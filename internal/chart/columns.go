package chart

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Column is a result column: its name and its PostgreSQL type as the SQL
// sandbox reports them ("bigint", "text", "timestamptz", …). A
// sandbox.Column converts to it directly.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Kind is the role a column can play in a chart (and a summary).
type Kind int

// The kinds of column.
const (
	// Unusable columns (json, bytea, intervals, times of day, arrays, …)
	// are never charted.
	Unusable Kind = iota
	// Label columns name things: text, boolean, uuid, and numbers named
	// id or ending in _id (identifiers are not measures).
	Label
	// Time columns are dates and timestamps.
	Time
	// Number columns are the other numeric columns: measures.
	Number
)

// KindOf classifies a column by its type (and, for numbers, its name).
func KindOf(c Column) Kind {
	switch c.Type {
	case "smallint", "integer", "bigint", "real", "double precision", "numeric":
		if isID(c.Name) {
			return Label
		}
		return Number
	case "date", "timestamp", "timestamptz":
		return Time
	case "text", "varchar", "char", "name", "uuid", "boolean":
		return Label
	}
	return Unusable
}

func isID(name string) bool {
	n := strings.ToLower(name)
	return n == "id" || strings.HasSuffix(n, "_id")
}

// Float reads a JSON value as a finite number: a JSON number, or a string
// holding one (the sandbox writes bigint and numeric as strings to keep
// their digits). NULL, NaN, infinities and anything else are not numbers.
func Float(v json.RawMessage) (float64, bool) {
	s := Text(v)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// Text renders a JSON value as display text: a string unquoted, anything
// else (numbers, booleans, JSON) as written, and NULL as "".
func Text(v json.RawMessage) string {
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	var s string
	if v[0] == '"' && json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// IsNull reports whether a JSON value is NULL.
func IsNull(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }

// shape is a result's columns by kind (indexes into the columns). Text
// labels come before identifier labels, so a chart prefers "country" over
// "customer_id".
type shape struct {
	width                  int
	labels, times, numbers []int
}

func shapeOf(cols []Column) shape {
	s := shape{width: len(cols)}
	var ids []int
	for i, c := range cols {
		switch KindOf(c) {
		case Label:
			if isID(c.Name) {
				ids = append(ids, i)
			} else {
				s.labels = append(s.labels, i)
			}
		case Time:
			s.times = append(s.times, i)
		case Number:
			s.numbers = append(s.numbers, i)
		}
	}
	s.labels = append(s.labels, ids...)
	return s
}
