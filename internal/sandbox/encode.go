package sandbox

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
)

// PostgreSQL type OIDs the encoder treats specially; everything else is a
// JSON string of PostgreSQL's text output.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidNumeric     = 1700
	oidJSONB       = 3802
)

var typeNames = map[uint32]string{
	oidBool: "boolean", oidBytea: "bytea", oidInt8: "bigint", oidInt2: "smallint", oidInt4: "integer",
	oidOID: "oid", oidJSON: "json", oidFloat4: "real", oidFloat8: "double precision", oidDate: "date",
	oidTimestamp: "timestamp", oidTimestamptz: "timestamptz", oidNumeric: "numeric", oidJSONB: "jsonb",
	25: "text", 1043: "varchar", 1042: "char", 2950: "uuid", 1083: "time", 1266: "timetz", 1186: "interval",
	19: "name", 18: "char", 2249: "record",
}

// typeName names a result column's type for clients.
func typeName(oid uint32) string {
	if n, ok := typeNames[oid]; ok {
		return n
	}
	return "oid:" + strconv.FormatUint(uint64(oid), 10)
}

// encode turns one value in PostgreSQL text format into JSON that keeps its
// type: NULL → null; smallint, integer and floats as JSON numbers; bigint and
// numeric as strings holding the exact digits (a JSON number would be
// rounded by float64 readers such as JavaScript; the row preview does the
// same); booleans; json/jsonb as JSON; bytea as base64; timestamps as RFC
// 3339 (the sandbox sets TimeZone UTC and DateStyle ISO); the rest as strings.
func encode(oid uint32, text []byte) json.RawMessage {
	if text == nil {
		return json.RawMessage("null")
	}
	s := string(text)
	switch oid {
	case oidBool:
		if s == "t" {
			return json.RawMessage("true")
		}
		return json.RawMessage("false")
	case oidInt2, oidInt4, oidOID:
		return json.RawMessage(s)
	case oidFloat4, oidFloat8:
		if isJSONNumber(s) {
			return json.RawMessage(s)
		}
		return str(s) // NaN, Infinity
	case oidJSON, oidJSONB:
		return json.RawMessage(s)
	case oidBytea:
		if b, err := hex.DecodeString(strings.TrimPrefix(s, `\x`)); err == nil {
			return str(base64.StdEncoding.EncodeToString(b))
		}
	case oidTimestamptz, oidTimestamp:
		return str(rfc3339(s))
	}
	return str(s)
}

// rfc3339 rewrites ISO output ("2024-06-01 10:00:00.5+00") as RFC 3339
// ("2024-06-01T10:00:00.5Z"); infinity and BC dates stay as they are.
func rfc3339(s string) string {
	if len(s) < 19 || s[10] != ' ' || strings.HasSuffix(s, " BC") {
		return s
	}
	s = s[:10] + "T" + s[11:]
	switch {
	case strings.HasSuffix(s, "+00"):
		return s[:len(s)-3] + "Z"
	case len(s) > 22 && (s[len(s)-3] == '+' || s[len(s)-3] == '-'):
		return s + ":00"
	}
	return s
}

func isJSONNumber(s string) bool {
	var n json.Number
	return json.Unmarshal([]byte(s), &n) == nil
}

func str(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}
