package importer

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/stretchr/testify/require"
)

// convCase is one converter input: want is the value, or wantErr a part of
// the error message.
type convCase struct {
	in      string
	want    any
	wantErr string
}

func runConv(t *testing.T, conv converter, cases []convCase) {
	t.Helper()
	for _, tc := range cases {
		got, err := conv(tc.in)
		if tc.wantErr != "" {
			require.ErrorContains(t, err, tc.wantErr, "input %q", tc.in)
			continue
		}
		require.NoError(t, err, "input %q", tc.in)
		require.Equal(t, tc.want, got, "input %q", tc.in)
	}
}

func TestConvText(t *testing.T) {
	t.Parallel()
	runConv(t, convText, []convCase{
		{"hello", "hello", ""},
		{"", "", ""},
		{"  spaced  ", "  spaced  ", ""},
		{"a,b\n\"c\"", "a,b\n\"c\"", ""},
		{"héllo ✓", "héllo ✓", ""},
		{"NULL", "NULL", ""},
		{"bad\xff", nil, "not valid UTF-8"},
		{"nul\x00byte", nil, "NUL byte"},
	})
}

func TestConvIntegers(t *testing.T) {
	t.Parallel()
	runConv(t, convInteger, []convCase{
		{"0", int32(0), ""},
		{"42", int32(42), ""},
		{" -7 ", int32(-7), ""},
		{"+5", int32(5), ""},
		{"2147483647", int32(math.MaxInt32), ""},
		{"-2147483648", int32(math.MinInt32), ""},
		{"2147483648", nil, "integer out of range"},
		{"1.0", nil, `invalid integer "1.0"`},
		{"1e3", nil, "invalid integer"},
		{"0x10", nil, "invalid integer"},
		{"1_000", nil, "invalid integer"},
		{"abc", nil, "invalid integer"},
		{" ", nil, "invalid integer"},
	})
	runConv(t, convBigint, []convCase{
		{"9223372036854775807", int64(math.MaxInt64), ""},
		{"-9223372036854775808", int64(math.MinInt64), ""},
		{"9223372036854775808", nil, "bigint out of range"},
		{"12a", nil, `invalid bigint "12a"`},
	})
}

func TestConvNumeric(t *testing.T) {
	t.Parallel()
	text := func(in string) string {
		t.Helper()
		v, err := convNumeric(in)
		require.NoError(t, err, in)
		return v.(string)
	}
	for in, want := range map[string]string{
		"0":      "0",
		"1.50":   "1.50", // the scale is kept, as PostgreSQL keeps it
		"-0.001": "-0.001",
		"+12":    "12",
		".5":     "0.5",
		"5.":     "5",
		"1e3":    "1000",
		"1.5E-3": "0.0015",
		"007.10": "7.10",
		"0.000":  "0.000",
		" 3.14 ": "3.14",
		"123456789012345678901234567890.123456789012345678901234567890": "123456789012345678901234567890.123456789012345678901234567890",
		"-99999999999999999999999999999999999999":                       "-99999999999999999999999999999999999999",
	} {
		require.Equal(t, want, text(in), "input %q", in)
	}
	for in, want := range map[string]string{"NaN": "NaN", "infinity": "Infinity", "-Infinity": "-Infinity", "+inf": "Infinity", "-0.00": "0.00", "1.5e-5": "0.000015"} {
		require.Equal(t, want, text(in), in)
	}
	runConv(t, convNumeric, []convCase{
		{"", nil, "invalid numeric"},
		{".", nil, "invalid numeric"},
		{"1.2.3", nil, "invalid numeric"},
		{"1e", nil, "invalid numeric"},
		{"1,5", nil, `invalid numeric "1,5"`},
		{"0x1p3", nil, "invalid numeric"},
		{"12abc", nil, "invalid numeric"},
		{"1e200000", nil, "numeric out of range"},
		{"1e-20000", nil, "numeric out of range"},
		{"1e99999999999999999999", nil, "numeric out of range"},
	})
	// Zero with a big exponent is just zero.
	require.Equal(t, "0", text("0e100000"))
}

// TestPlainNumbersPassThrough: convNumeric returns input that isPlain
// accepts as it is, so isPlain must accept only what parsing and rendering
// would return unchanged. Every string of up to six characters over the
// characters that matter is checked against the slow path.
func TestPlainNumbersPassThrough(t *testing.T) {
	t.Parallel()
	const alphabet = "-+.0129e"
	var walk func(prefix string, left int)
	plain := 0
	walk = func(s string, left int) {
		d, ok := parseDecimal(s)
		if isPlain(s) {
			plain++
			require.True(t, ok && numericInRange(d), "isPlain accepts %q, which does not parse", s)
			require.Equal(t, d.plain(), s, "isPlain accepts %q, which renders otherwise", s)
		} else if ok && numericInRange(d) && d.plain() == s {
			t.Errorf("isPlain refuses %q, which is plain", s)
		}
		if left == 0 {
			return
		}
		for _, c := range alphabet {
			walk(s+string(c), left-1)
		}
	}
	walk("", 6)
	require.Greater(t, plain, 1000)
	// The range limits apply to the fast path too.
	require.True(t, isPlain("1"+strings.Repeat("0", maxNumericIntDigits-1)))
	require.False(t, isPlain("1"+strings.Repeat("0", maxNumericIntDigits)))
	require.True(t, isPlain("0."+strings.Repeat("0", maxNumericScale)))
	require.False(t, isPlain("0."+strings.Repeat("0", maxNumericScale+1)))
}

func TestConvDouble(t *testing.T) {
	t.Parallel()
	runConv(t, convDouble, []convCase{
		{"1.5", 1.5, ""},
		{"-0.1", -0.1, ""},
		{"1e10", 1e10, ""},
		{" 2 ", 2.0, ""},
		{"Infinity", math.Inf(1), ""},
		{"-inf", math.Inf(-1), ""},
		{"1e400", nil, "double precision out of range"},
		{"0x1p-2", nil, "invalid double precision"},
		{"1_000", nil, "invalid double precision"},
		{"abc", nil, "invalid double precision"},
		{"", nil, "invalid double precision"},
	})
	v, err := convDouble("NaN")
	require.NoError(t, err)
	require.True(t, math.IsNaN(v.(float64)))
}

func TestConvBool(t *testing.T) {
	t.Parallel()
	var cases []convCase
	for _, s := range []string{"true", "TRUE", "True", "t", "T", "1", "yes", "YES", " yes "} {
		cases = append(cases, convCase{s, true, ""})
	}
	for _, s := range []string{"false", "False", "f", "F", "0", "no", "No"} {
		cases = append(cases, convCase{s, false, ""})
	}
	for _, s := range []string{"", "2", "y", "on", "truee", "maybe"} {
		cases = append(cases, convCase{s, nil, "invalid boolean"})
	}
	runConv(t, convBool, cases)
}

func TestConvDate(t *testing.T) {
	t.Parallel()
	date := func(y int, m time.Month, d int) pgtype.Date {
		return pgtype.Date{Time: time.Date(y, m, d, 0, 0, 0, 0, time.UTC), Valid: true}
	}
	runConv(t, convDate, []convCase{
		{"2024-01-31", date(2024, 1, 31), ""},
		{"2024-02-29", date(2024, 2, 29), ""},
		{" 1999-12-31 ", date(1999, 12, 31), ""},
		{"2023-02-29", nil, "invalid date"},
		{"2024-13-01", nil, "invalid date"},
		{"2024-1-5", nil, "invalid date"},
		{"31/01/2024", nil, "invalid date"},
		{"2024-01-31T00:00:00Z", nil, "invalid date"},
	})
}

func TestConvTimestamptz(t *testing.T) {
	t.Parallel()
	ts := func(s string) pgtype.Timestamptz {
		v, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return pgtype.Timestamptz{Time: v, Valid: true}
	}
	same := func(in, want string) {
		t.Helper()
		got, err := convTimestamptz(in)
		require.NoError(t, err, in)
		require.True(t, ts(want).Time.Equal(got.(pgtype.Timestamptz).Time), "%q: got %v, want %s", in, got, want)
	}
	same("2024-01-31T12:00:00Z", "2024-01-31T12:00:00Z")
	same("2024-01-31T12:00:00.123456Z", "2024-01-31T12:00:00.123456Z")
	same("2024-01-31T12:00:00+01:00", "2024-01-31T11:00:00Z")
	same("2024-01-31t12:00:00z", "2024-01-31T12:00:00Z")
	same("2024-01-31 12:00:00", "2024-01-31T12:00:00Z") // no offset: UTC
	same("2024-01-31 12:00:00.5", "2024-01-31T12:00:00.5Z")
	same("2024-01-31 12:00:00+02", "2024-01-31T10:00:00Z")
	same("2024-01-31 12:00:00-05:30", "2024-01-31T17:30:00Z")
	same("2024-01-31 12:00:00.25+0530", "2024-01-31T06:30:00.25Z")
	same("2024-01-31", "2024-01-31T00:00:00Z")
	same("2024-01-31T12:00:00.1234567Z", "2024-01-31T12:00:00.123457Z") // rounded to µs
	runConv(t, convTimestamptz, []convCase{
		{"2024-01-31 25:00:00", nil, "invalid timestamptz"},
		{"2024-02-30T00:00:00Z", nil, "invalid timestamptz"},
		{"yesterday", nil, "invalid timestamptz"},
		{"1706702400", nil, "invalid timestamptz"},
		{"", nil, "invalid timestamptz"},
	})
}

func TestConvUUID(t *testing.T) {
	t.Parallel()
	u := uuid.MustParse("0b9f3d8e-3c1a-4e5b-9a7d-2f6c8e1d4a10")
	want := pgtype.UUID{Bytes: u, Valid: true}
	runConv(t, convUUID, []convCase{
		{"0b9f3d8e-3c1a-4e5b-9a7d-2f6c8e1d4a10", want, ""},
		{"0B9F3D8E-3C1A-4E5B-9A7D-2F6C8E1D4A10", want, ""},
		{"{0b9f3d8e-3c1a-4e5b-9a7d-2f6c8e1d4a10}", want, ""},
		{"0b9f3d8e3c1a4e5b9a7d2f6c8e1d4a10", want, ""},
		{"0b9f3d8e-3c1a-4e5b-9a7d", nil, "invalid uuid"},
		{"not-a-uuid", nil, "invalid uuid"},
	})
}

func TestConvJSONB(t *testing.T) {
	t.Parallel()
	runConv(t, convJSONB, []convCase{
		{`{"a":1}`, `{"a":1}`, ""},
		{`[1, "two", null]`, `[1, "two", null]`, ""},
		{`"text"`, `"text"`, ""},
		{`12.5`, `12.5`, ""},
		{`null`, `null`, ""}, // a CSV field "null" is the JSON null, not SQL NULL
		{`"\u00e9 \ud83d\ude00 \\u0000"`, `"\u00e9 \ud83d\ude00 \\u0000"`, ""},
		{`{"a":}`, nil, "invalid JSON"},
		{`{a:1}`, nil, "invalid JSON"},
		{`hello`, nil, `invalid JSON "hello"`},
		{`"a\u0000b"`, nil, `\u0000`},
		{`"\ud83d"`, nil, "unpaired"},
		{`"\ude00x"`, nil, "unpaired"},
		{`"\ud83d\u0041"`, nil, "unpaired"},
		{"\"\xff\"", nil, "UTF-8"},
		// jsonb stores numbers as numeric, with numeric's range.
		{`[1e131071, -0.5e-16382]`, `[1e131071, -0.5e-16382]`, ""},
		{`{"big": "1e999999"}`, `{"big": "1e999999"}`, ""},
		{`{"a": [1, 1e131072]}`, nil, `JSON number out of range for jsonb: "1e131072"`},
		{`1.5e-16383`, nil, "out of range"},
	})
}

func TestQuoteShortensLongValues(t *testing.T) {
	t.Parallel()
	q := quote(strings.Repeat("é", 100))
	require.Less(t, len(q), 60)
	require.True(t, strings.HasSuffix(q, "…"))
	require.Equal(t, `"abc"`, quote("abc"))
}
