package importer

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"
)

// csvRecord is a parsed record: its start line and its fields, a quoted
// field shown as Q(...).
type csvRecord struct {
	line   int64
	fields []string
}

func readAllCSV(t *testing.T, in string, maxRecord int) ([]csvRecord, error) {
	t.Helper()
	// OneByteReader exercises records spanning reads.
	c := newCSVReader(iotest.OneByteReader(strings.NewReader(in)), maxRecord)
	var out []csvRecord
	for {
		fields, quoted, err := c.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		rec := csvRecord{line: c.Line()}
		for i, f := range fields {
			if quoted[i] {
				f = "Q(" + f + ")"
			}
			rec.fields = append(rec.fields, f)
		}
		out = append(out, rec)
	}
}

func TestCSVReader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		want []csvRecord
	}{
		{"simple", "a,b\n1,2\n", []csvRecord{{1, []string{"a", "b"}}, {2, []string{"1", "2"}}}},
		{"crlf and no final newline", "a,b\r\n1,2", []csvRecord{{1, []string{"a", "b"}}, {2, []string{"1", "2"}}}},
		{"empty fields", ",x,\n", []csvRecord{{1, []string{"", "x", ""}}}},
		{"quoted empty vs unquoted empty", `"",,""` + "\n", []csvRecord{{1, []string{"Q()", "", "Q()"}}}},
		{"quoted comma and quote", `"a,b","say ""hi""",c` + "\n", []csvRecord{{1, []string{"Q(a,b)", `Q(say "hi")`, "c"}}}},
		{"quoted newlines keep their bytes and count lines",
			"h1,h2\n\"line1\nline2\r\nline3\",x\nnext,y\n",
			[]csvRecord{{1, []string{"h1", "h2"}}, {2, []string{"Q(line1\nline2\r\nline3)", "x"}}, {5, []string{"next", "y"}}}},
		{"blank lines skipped but counted", "a\n\n\r\nb\n", []csvRecord{{1, []string{"a"}}, {4, []string{"b"}}}},
		{"spaces kept", " a , b \n", []csvRecord{{1, []string{" a ", " b "}}}},
		{"bom stripped", "\xef\xbb\xbfa,b\n", []csvRecord{{1, []string{"a", "b"}}}},
		{"lone CR is data", "a\rb,c\n", []csvRecord{{1, []string{"a\rb", "c"}}}},
		{"quoted last field at EOF", `x,"y"`, []csvRecord{{1, []string{"x", "Q(y)"}}}},
		{"empty input", "", nil},
	}
	for _, tc := range cases {
		got, err := readAllCSV(t, tc.in, 1<<20)
		require.NoError(t, err, tc.name)
		require.Equal(t, tc.want, got, tc.name)
	}
}

func TestCSVReaderErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		in   string
		line int64
		msg  string
	}{
		{"unclosed quote", "a\n\"open,\nstill open\n", 2, "not closed"},
		{"text after closing quote", "a\n\"x\"y,z\n", 2, "after a closing quote"},
		{"text after multi-line closing quote", "a\n\"x\ny\"z\n", 3, "after a closing quote"},
		{"bare quote", "a\nab\"c\n", 2, "quote inside an unquoted field"},
		{"record too long", "a\n" + strings.Repeat("x", 100) + "\n", 2, "record longer than 50 bytes"},
		{"quoted record too long", "a\n\"" + strings.Repeat("x\n", 100) + "\"\n", 2, "record longer than 50 bytes"},
	}
	for _, tc := range cases {
		_, err := readAllCSV(t, tc.in, 50)
		var syn *errSyntax
		require.True(t, errors.As(err, &syn), "%s: %v", tc.name, err)
		require.Equal(t, tc.line, syn.line, tc.name)
		require.ErrorContains(t, err, tc.msg, tc.name)
	}
}

func TestCSVReaderPassesReadErrors(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	c := newCSVReader(io.MultiReader(strings.NewReader("a,b\n1,"), iotest.ErrReader(boom)), 1<<20)
	_, _, err := c.Read()
	require.NoError(t, err)
	_, _, err = c.Read()
	require.ErrorIs(t, err, boom)
}

func TestJSONValue(t *testing.T) {
	t.Parallel()
	col := func(typ string) *column {
		return &column{name: "c", sqlType: sqlTypes[typ], text: typ == "text", conv: converters[typ]}
	}
	cases := []struct {
		typ, raw string
		want     any
		wantErr  string
	}{
		{"text", `"hi"`, "hi", ""},
		{"text", `""`, "", ""},
		{"text", `"a\"b\nc"`, "a\"b\nc", ""},
		{"text", `12.50`, "12.50", ""}, // a literal keeps its text
		{"text", `true`, "true", ""},
		{"text", `null`, nil, ""},
		{"text", `{"a":1}`, nil, "got a JSON object"},
		{"text", `"nul\u0000"`, nil, "NUL byte"},
		{"integer", `42`, int32(42), ""},
		{"integer", `"42"`, int32(42), ""},
		{"integer", `4.2`, nil, "invalid integer"},
		{"integer", `""`, nil, "invalid integer"},
		{"integer", `[1]`, nil, "got a JSON array"},
		{"bigint", `9223372036854775807`, int64(9223372036854775807), ""},
		{"boolean", `false`, false, ""},
		{"boolean", `"yes"`, true, ""},
		{"double precision", `1e-3`, 0.001, ""},
		{"jsonb", `{"a": [1, 2]}`, `{"a": [1, 2]}`, ""},
		{"jsonb", `"str"`, `"str"`, ""},
		{"jsonb", `3`, `3`, ""},
		{"jsonb", `null`, nil, ""},
		{"jsonb", `"\u0000"`, nil, `\u0000`},
	}
	for _, tc := range cases {
		got, err := jsonValue(col(tc.typ), json.RawMessage(tc.raw))
		if tc.wantErr != "" {
			require.ErrorContains(t, err, tc.wantErr, "%s %s", tc.typ, tc.raw)
			continue
		}
		require.NoError(t, err, "%s %s", tc.typ, tc.raw)
		require.Equal(t, tc.want, got, "%s %s", tc.typ, tc.raw)
	}
	// numeric from a JSON number keeps every digit.
	v, err := jsonValue(col("numeric"), json.RawMessage(`123456789012345678901234567890.000000001`))
	require.NoError(t, err)
	require.Equal(t, "123456789012345678901234567890.000000001", v)
}
