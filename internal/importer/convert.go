package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
)

// A converter turns the text of one value into the Go value CopyFrom sends
// for the column's type, or explains (in a client-safe message) why the text
// is not a value of that type. The input is never empty-as-NULL: the callers
// decide what is NULL before converting.
type converter func(s string) (any, error)

// sqlTypes maps each catalog type (catalog.Types) to the SQL spelling used in
// the staging table's DDL, so that no catalog string reaches SQL unchecked.
var sqlTypes = map[string]string{
	"text":             "text",
	"integer":          "integer",
	"bigint":           "bigint",
	"numeric":          "numeric",
	"double precision": "double precision",
	"boolean":          "boolean",
	"date":             "date",
	"timestamptz":      "timestamptz",
	"uuid":             "uuid",
	"jsonb":            "jsonb",
}

var converters = map[string]converter{
	"text":             convText,
	"integer":          convInteger,
	"bigint":           convBigint,
	"numeric":          convNumeric,
	"double precision": convDouble,
	"boolean":          convBool,
	"date":             convDate,
	"timestamptz":      convTimestamptz,
	"uuid":             convUUID,
	"jsonb":            convJSONB,
}

// PostgreSQL's numeric limits (numeric.c): at most 131072 digits before the
// decimal point and a display scale of at most 16383 digits after it.
const (
	maxNumericIntDigits = 131072
	maxNumericScale     = 16383
)

// quote renders a value for an error message, shortened so that a huge field
// does not produce a huge response.
func quote(s string) string {
	const limit = 40
	if len(s) > limit {
		cut := limit
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}

// convText accepts any valid UTF-8 without NUL bytes (PostgreSQL text can
// store neither invalid UTF-8 nor NUL). Text is kept exactly, spaces included.
func convText(s string) (any, error) {
	if err := checkText(s); err != nil {
		return nil, err
	}
	return s, nil
}

func checkText(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("value is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("value contains a NUL byte, which PostgreSQL cannot store")
	}
	return nil
}

func convInteger(s string) (any, error) {
	n, err := parseInt(s, 32, "integer")
	if err != nil {
		return nil, err
	}
	return int32(n), nil
}

func convBigint(s string) (any, error) {
	n, err := parseInt(s, 64, "bigint")
	if err != nil {
		return nil, err
	}
	return n, nil
}

// parseInt accepts an optional sign and decimal digits, with surrounding
// spaces; no fractions, exponents, underscores or other bases.
func parseInt(s string, bits int, typ string) (int64, error) {
	t := strings.TrimSpace(s)
	n, err := strconv.ParseInt(t, 10, bits)
	if err == nil {
		return n, nil
	}
	if errors.Is(err, strconv.ErrRange) {
		return 0, fmt.Errorf("%s out of range: %s", typ, quote(s))
	}
	return 0, fmt.Errorf("invalid %s %s", typ, quote(s))
}

// convNumeric parses a decimal number exactly: [+-]digits[.digits][e[+-]digits],
// or NaN, Infinity, inf with an optional sign, case-insensitive. It returns
// the number as plain decimal text (no exponent, no leading zeros), which
// the INSERT casts to numeric: PostgreSQL's own parser is much cheaper than
// building numeric's binary form in Go, and the plain form avoids its limit
// on exponents. Trailing fractional zeros are kept, as PostgreSQL keeps them
// ("1.50" stays 1.50).
func convNumeric(s string) (any, error) {
	t := strings.TrimSpace(s)
	if isPlain(t) {
		return t, nil
	}
	switch special(t) {
	case "nan":
		return "NaN", nil
	case "+inf":
		return "Infinity", nil
	case "-inf":
		return "-Infinity", nil
	}
	d, ok := parseDecimal(t)
	if !ok {
		return nil, fmt.Errorf("invalid numeric %s", quote(s))
	}
	if !numericInRange(d) {
		return nil, fmt.Errorf("numeric out of range: %s", quote(s))
	}
	return d.plain(), nil
}

// isPlain reports whether s is already what plain renders: -?int(.frac)?
// with no leading zero before another digit, no exponent, no sign on zero,
// and within numeric's range. Most imported numbers are, and returning them
// as they are spares two string builds per value (a fifth of an import's
// parsing time).
func isPlain(s string) bool {
	i, neg := 0, len(s) > 0 && s[0] == '-'
	if neg {
		i++
	}
	start, nonzero := i, false
	for i < len(s) && isDigit(s[i]) {
		nonzero = nonzero || s[i] != '0'
		i++
	}
	intDigits := i - start
	if intDigits == 0 || intDigits > maxNumericIntDigits || (intDigits > 1 && s[start] == '0') {
		return false
	}
	if i < len(s) {
		if s[i] != '.' {
			return false
		}
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			nonzero = nonzero || s[i] != '0'
			i++
		}
		if i == fs || i-fs > maxNumericScale || i != len(s) {
			return false
		}
	}
	return nonzero || !neg
}

// decimal is a parsed decimal literal: value = ±digits × 10^exp.
type decimal struct {
	neg    bool
	digits string
	exp    int
}

// parseDecimal parses [+-]?(d+(.d*)?|.d+)([eE][+-]?d+)? exactly.
func parseDecimal(s string) (decimal, bool) {
	var d decimal
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		d.neg = s[i] == '-'
		i++
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intPart := s[start:i]
	frac := ""
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		frac = s[fs:i]
	}
	if intPart == "" && frac == "" {
		return d, false
	}
	exp := 0
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		es := i
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		ds := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == ds {
			return d, false
		}
		e, err := strconv.Atoi(s[es:i])
		if err != nil || e > 1<<20 || e < -(1<<20) {
			e = 1 << 20 // far out of range either way; the caller rejects it
			if s[es] == '-' {
				e = -e
			}
		}
		exp = e
	}
	if i != len(s) {
		return d, false
	}
	d.digits = intPart + frac
	d.exp = exp - len(frac)
	return d, true
}

// normal drops leading zeros; a zero keeps only its scale.
func (d decimal) normal() (digits string, exp int) {
	digits, exp = strings.TrimLeft(d.digits, "0"), d.exp
	if digits == "" {
		digits, exp = "0", min(exp, 0)
	}
	return digits, exp
}

// numericInRange reports whether PostgreSQL's numeric can hold d.
func numericInRange(d decimal) bool {
	digits, exp := d.normal()
	return -exp <= maxNumericScale && len(digits)+exp <= maxNumericIntDigits
}

// plain renders d as [-]int[.frac], with exactly -exp fractional digits
// when exp < 0; zero has no sign.
func (d decimal) plain() string {
	digits, exp := d.normal()
	sign := ""
	if d.neg && digits != "0" {
		sign = "-"
	}
	switch {
	case exp >= 0:
		return sign + digits + strings.Repeat("0", exp)
	case len(digits) > -exp:
		cut := len(digits) + exp
		return sign + digits[:cut] + "." + digits[cut:]
	}
	return sign + "0." + strings.Repeat("0", -exp-len(digits)) + digits
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// special recognises NaN and the infinities as PostgreSQL spells them
// (case-insensitive): "nan", "+inf" or "-inf", else "".
func special(s string) string {
	if len(s) > 9 || len(s) < 3 || isDigit(s[0]) || isDigit(s[len(s)-1]) {
		return ""
	}
	l := strings.ToLower(s)
	switch l {
	case "nan":
		return "nan"
	case "inf", "+inf", "infinity", "+infinity":
		return "+inf"
	case "-inf", "-infinity":
		return "-inf"
	}
	return ""
}

// convDouble accepts the decimal syntax of numeric (rounded to the nearest
// float64) and NaN/Infinity; hex floats and underscores are refused, as
// PostgreSQL refuses them.
func convDouble(s string) (any, error) {
	t := strings.TrimSpace(s)
	if sp := special(t); sp == "" {
		if _, ok := parseDecimal(t); !ok {
			return nil, fmt.Errorf("invalid double precision %s", quote(s))
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if errors.Is(err, strconv.ErrRange) {
		return nil, fmt.Errorf("double precision out of range: %s", quote(s))
	}
	if err != nil {
		return nil, fmt.Errorf("invalid double precision %s", quote(s))
	}
	return f, nil
}

// convBool accepts true/false, t/f, 1/0, yes/no, case-insensitive.
func convBool(s string) (any, error) {
	t := strings.TrimSpace(s)
	if len(t) <= 5 {
		switch strings.ToLower(t) {
		case "true", "t", "1", "yes":
			return true, nil
		case "false", "f", "0", "no":
			return false, nil
		}
	}
	return nil, fmt.Errorf("invalid boolean %s (want true/false, t/f, 1/0 or yes/no)", quote(s))
}

// convDate accepts YYYY-MM-DD (a real calendar day).
func convDate(s string) (any, error) {
	d, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("invalid date %s (want YYYY-MM-DD)", quote(s))
	}
	return pgtype.Date{Time: d, Valid: true}, nil
}

// Layouts tried, in order, once the date/time separator is normalised to T.
// When parsing, Go accepts a fractional second after the seconds in each.
var timestampLayouts = []string{
	"2006-01-02T15:04:05Z07:00", // RFC 3339
	"2006-01-02T15:04:05Z0700",  // +hhmm
	"2006-01-02T15:04:05Z07",    // +hh
	"2006-01-02T15:04:05",       // no offset: UTC
	time.DateOnly,               // midnight UTC
}

// convTimestamptz accepts RFC 3339 and YYYY-MM-DD HH:MM:SS[.f][Z|±hh[:mm]]
// (a space or T between date and time; no offset means UTC), and a bare
// YYYY-MM-DD (midnight UTC). Sub-microsecond digits are rounded, as
// PostgreSQL rounds them.
func convTimestamptz(s string) (any, error) {
	t := strings.TrimSpace(s)
	if len(t) > 10 && (t[10] == ' ' || t[10] == 't') {
		t = t[:10] + "T" + t[11:]
	}
	if strings.HasSuffix(t, "z") {
		t = t[:len(t)-1] + "Z"
	}
	for _, layout := range timestampLayouts {
		if ts, err := time.Parse(layout, t); err == nil {
			if ts.Nanosecond()%1000 != 0 {
				ts = ts.Round(time.Microsecond)
			}
			return pgtype.Timestamptz{Time: ts, Valid: true}, nil
		}
	}
	return nil, fmt.Errorf("invalid timestamptz %s (want RFC 3339, e.g. 2024-01-31T12:00:00Z, or 2024-01-31 12:00:00+01)", quote(s))
}

// convUUID accepts the forms PostgreSQL accepts: canonical, without dashes,
// or in braces.
func convUUID(s string) (any, error) {
	u, err := uuid.Parse(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("invalid uuid %s", quote(s))
	}
	return pgtype.UUID{Bytes: u, Valid: true}, nil
}

// convJSONB accepts one JSON value that jsonb can store, as its text.
func convJSONB(s string) (any, error) {
	if !json.Valid([]byte(s)) {
		return nil, fmt.Errorf("invalid JSON %s", quote(s))
	}
	if err := checkJSONText(s); err != nil {
		return nil, err
	}
	return s, nil
}

// checkJSONValues refuses what is valid JSON but that jsonb cannot store:
// the escape \u0000, unpaired UTF-16 surrogate escapes, and numbers beyond
// PostgreSQL's numeric range. s must be valid JSON: one pass then finds
// every string (and its escapes) and every number.
func checkJSONValues(s string) error {
	unpaired := errors.New("JSON contains an unpaired UTF-16 surrogate escape")
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '"':
			for i++; s[i] != '"'; {
				if s[i] != '\\' {
					i++
					continue
				}
				if s[i+1] != 'u' {
					i += 2
					continue
				}
				switch r := hex4(s[i+2 : i+6]); {
				case r == 0:
					return errors.New(`JSON contains \u0000, which jsonb cannot store`)
				case 0xD800 <= r && r <= 0xDBFF:
					if i+12 > len(s) || s[i+6] != '\\' || s[i+7] != 'u' {
						return unpaired
					}
					if lo := hex4(s[i+8 : i+12]); lo < 0xDC00 || lo > 0xDFFF {
						return unpaired
					}
					i += 12
				case 0xDC00 <= r && r <= 0xDFFF:
					return unpaired
				default:
					i += 6
				}
			}
			i++
		case c == '-' || isDigit(c):
			j := i + 1
			for j < len(s) && (isDigit(s[j]) || s[j] == '.' || s[j] == 'e' || s[j] == 'E' || s[j] == '+' || s[j] == '-') {
				j++
			}
			if d, ok := parseDecimal(s[i:j]); !ok || !numericInRange(d) {
				return fmt.Errorf("JSON number out of range for jsonb: %s", quote(s[i:j]))
			}
			i = j
		default:
			i++
		}
	}
	return nil
}

func hex4(s string) int {
	n, _ := strconv.ParseUint(s, 16, 16)
	return int(n)
}
