package chart_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/chart"
)

// schemaFile is the official Vega-Lite v5 schema, vendored by
// testdata/vendor-schema.sh from the pinned vega-lite npm package.
const schemaFile = "testdata/vega-lite-v5.schema.json"

var vegaLite = sync.OnceValues(func() (*jsonschema.Schema, error) {
	f, err := os.Open(schemaFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaFile, doc); err != nil {
		return nil, err
	}
	return c.Compile(schemaFile)
})

// valid fails unless spec is a non-nil spec the Vega-Lite v5 schema accepts,
// and returns it as decoded JSON for inspection.
func valid(t *testing.T, spec chart.Spec) map[string]any {
	t.Helper()
	require.NotNil(t, spec)
	sch, err := vegaLite()
	require.NoError(t, err)
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	require.NoError(t, err)
	require.NoError(t, sch.Validate(inst), "%s", b)
	var out map[string]any
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, chart.Schema, out["$schema"])
	return out
}

// cols reads "name:type" pairs.
func cols(specs ...string) []chart.Column {
	out := make([]chart.Column, len(specs))
	for i, s := range specs {
		name, typ, _ := strings.Cut(s, ":")
		out[i] = chart.Column{Name: name, Type: typ}
	}
	return out
}

// rows reads rows of JSON values written as in the sandbox's output.
func rows(rs ...string) [][]json.RawMessage {
	out := make([][]json.RawMessage, len(rs))
	for i, r := range rs {
		var vals []json.RawMessage
		if err := json.Unmarshal([]byte("["+r+"]"), &vals); err != nil {
			panic(err)
		}
		out[i] = vals
	}
	return out
}

func choose(t *testing.T, c []chart.Column, r [][]json.RawMessage, want chart.Type) map[string]any {
	t.Helper()
	spec, err := chart.Choose(c, r, want)
	require.NoError(t, err)
	return valid(t, spec)
}

func data(spec map[string]any) []any {
	return spec["data"].(map[string]any)["values"].([]any)
}

func mark(spec map[string]any) string {
	return spec["mark"].(map[string]any)["type"].(string)
}

func TestOneNumberIsACard(t *testing.T) {
	spec := choose(t, cols("count:bigint"), rows(`"4"`), chart.Auto)
	require.Equal(t, "text", mark(spec))
	require.Equal(t, []any{map[string]any{"value": "4"}}, data(spec), "the database's exact digits")
	require.Equal(t, "count", spec["title"])

	spec = choose(t, cols("total:numeric"), rows(`null`), chart.Auto)
	require.Equal(t, []any{map[string]any{"value": "no value"}}, data(spec), "a NULL total is said, not drawn as 0")
}

func TestTimeAndMeasureIsALine(t *testing.T) {
	r := rows(`"2024-06-01T10:00:00Z","120.50"`, `"2024-06-02T12:30:00Z","75.00"`, `"2024-06-05T09:15:00Z",null`, `"2024-06-07T16:45:00Z","410.00"`)
	spec := choose(t, cols("ordered_at:timestamptz", "amount:numeric"), r, chart.Auto)
	require.Equal(t, "line", mark(spec))
	require.Equal(t, []any{
		map[string]any{"time": "2024-06-01T10:00:00Z", "value": 120.5},
		map[string]any{"time": "2024-06-02T12:30:00Z", "value": 75.0},
		map[string]any{"time": "2024-06-07T16:45:00Z", "value": 410.0},
	}, data(spec), "a row without a number is left out")
	enc := spec["encoding"].(map[string]any)
	require.Equal(t, "temporal", enc["x"].(map[string]any)["type"])
	require.Equal(t, "ordered_at", enc["x"].(map[string]any)["title"])

	// Dates work too, and a label column beside them does not matter.
	spec = choose(t, cols("day:date", "country:text", "n:integer"), rows(`"2024-01-15","GB",1`, `"2024-02-03","US",2`), chart.Auto)
	require.Equal(t, "line", mark(spec))
}

func TestOneInstantIsNotALine(t *testing.T) {
	// A single distinct date has no trend: it is a label for bars.
	spec := choose(t, cols("day:date", "n:integer"), rows(`"2024-01-15",1`, `"2024-01-15",2`), chart.Auto)
	require.Equal(t, "bar", mark(spec))
	require.Equal(t, []any{map[string]any{"label": "2024-01-15", "value": 3.0}}, data(spec))
}

func TestCategoryAndMeasureIsABarWithTopNAndOther(t *testing.T) {
	spec := choose(t, cols("country:text", "count:bigint"), rows(`"GB","1"`, `"US","2"`, `"NL","1"`), chart.Auto)
	require.Equal(t, "bar", mark(spec))
	require.Equal(t, []any{
		map[string]any{"label": "US", "value": 2.0},
		map[string]any{"label": "GB", "value": 1.0},
		map[string]any{"label": "NL", "value": 1.0},
	}, data(spec), "largest first, ties in the result's order")

	var many []string
	for i := 1; i <= 25; i++ {
		many = append(many, fmt.Sprintf(`"c%02d",%d`, i, i))
	}
	spec = choose(t, cols("customer:text", "orders:integer"), rows(many...), chart.Auto)
	got := data(spec)
	require.Len(t, got, chart.TopN+1)
	require.Equal(t, map[string]any{"label": "c25", "value": 25.0}, got[0])
	// c01..c15 sum to 120.
	require.Equal(t, map[string]any{"label": "Other (15 more)", "value": 120.0}, got[chart.TopN])
	y := spec["encoding"].(map[string]any)["y"].(map[string]any)
	require.Contains(t, y, "sort")
	require.Nil(t, y["sort"], "bars keep the data's order, Other last")
}

func TestBarTotalsRepeatedLabelsAndPrefersTextOverIDs(t *testing.T) {
	c := cols("id:bigint", "customer_id:bigint", "name:text", "amount:numeric")
	r := rows(`"101","1","Ada","120.50"`, `"102","2","Grace","75.00"`, `"103","1","Ada","33.20"`, `"104","3",null,"5"`)
	spec := choose(t, c, r, chart.Auto)
	require.Equal(t, "bar", mark(spec))
	require.Equal(t, []any{
		map[string]any{"label": "Ada", "value": 153.7},
		map[string]any{"label": "Grace", "value": 75.0},
		map[string]any{"label": "(null)", "value": 5.0},
	}, data(spec))
	require.Equal(t, "amount per name", spec["title"])
}

func TestTwoMeasuresIsAScatter(t *testing.T) {
	spec := choose(t, cols("salary:numeric", "bonus:double precision"), rows(`"95000",1.5`, `"72000",0.5`, `"58000","NaN"`), chart.Auto)
	require.Equal(t, "point", mark(spec))
	require.Equal(t, []any{map[string]any{"x": 95000.0, "y": 1.5}, map[string]any{"x": 72000.0, "y": 0.5}}, data(spec), "NaN is no point")
}

func TestOtherwiseNoChart(t *testing.T) {
	for name, tc := range map[string]struct {
		cols []chart.Column
		rows [][]json.RawMessage
	}{
		"no rows":            {cols("country:text", "count:bigint"), rows()},
		"only labels":        {cols("name:text", "country:text"), rows(`"Ada","GB"`, `"Grace","US"`)},
		"only dates":         {cols("signed_up:date"), rows(`"2024-01-15"`)},
		"one number, 2 rows": {cols("amount:numeric"), rows(`"1"`, `"2"`)},
		"unchartable types":  {cols("doc:jsonb", "took:interval"), rows(`{"a":1},"00:01:00"`)},
		"only ids":           {cols("id:bigint", "customer_id:bigint"), rows(`"1","2"`, `"3","4"`)},
	} {
		t.Run(name, func(t *testing.T) {
			spec, err := chart.Choose(tc.cols, tc.rows, chart.Auto)
			require.NoError(t, err)
			require.Nil(t, spec)
		})
	}
}

func TestDataIsBounded(t *testing.T) {
	var r []string
	for i := range 2000 {
		r = append(r, fmt.Sprintf(`"2024-01-01T00:%02d:%02dZ",%d,%d`, i/60%60, i%60, i, 2*i))
	}
	line := choose(t, cols("at:timestamp", "n:integer", "m:integer"), rows(r...), chart.Auto)
	require.Len(t, data(line), chart.MaxPoints)
	require.Equal(t, "n over at: the first 500 of 2000 rows", line["description"])
	scatter := choose(t, cols("at:timestamp", "n:integer", "m:integer"), rows(r...), chart.Scatter)
	require.Len(t, data(scatter), chart.MaxPoints)
}

// Column names are the SQL's (an LLM may have written them): they appear
// only as titles, never as a field, expression or anything a renderer
// evaluates.
func TestColumnNamesAreOnlyTitles(t *testing.T) {
	odd := `a.b["c"] datum.x || alert(1) <script>`
	spec := choose(t, cols("c:text", odd+":bigint"), rows(`"x","1"`, `"y","2"`), chart.Auto)
	enc := spec["encoding"].(map[string]any)
	require.Equal(t, "value", enc["x"].(map[string]any)["field"])
	require.Equal(t, odd, enc["x"].(map[string]any)["title"])
	for _, ch := range enc {
		require.Contains(t, []string{"label", "value"}, ch.(map[string]any)["field"], "fields are the package's own names")
	}
	b, _ := json.Marshal(spec)
	require.Equal(t, 2, strings.Count(string(b), `"title":"a.b`), "the chart's and the axis's title")
}

func TestRequestedTypes(t *testing.T) {
	daily := cols("day:date", "orders:bigint", "revenue:numeric")
	r := rows(`"2024-06-01","2","195.50"`, `"2024-06-02","1","33.20"`)
	require.Equal(t, "line", mark(choose(t, daily, r, chart.Line)))
	require.Equal(t, "bar", mark(choose(t, daily, r, chart.Bar)), "dates as labels")
	require.Equal(t, "point", mark(choose(t, daily, r, chart.Scatter)))
	require.Equal(t, "text", mark(choose(t, daily, r[:1], chart.Card)), "one row: its first number")

	spec, err := chart.Choose(daily, r, chart.None)
	require.NoError(t, err)
	require.Nil(t, spec, "none means no chart even when the rules would draw one")

	// An empty result with the right columns still makes a valid (empty) chart.
	require.Empty(t, data(choose(t, daily, rows(), chart.Line)))
}

func TestRequestedTypeTheResultCannotShowIs400(t *testing.T) {
	byCountry := cols("country:text", "count:bigint")
	r := rows(`"US","2"`, `"GB","1"`)
	for want, msg := range map[chart.Type]string{
		chart.Line:    "chart_type: line needs a date or timestamp column and a number column; the result has country (text), count (bigint)",
		chart.Scatter: "chart_type: scatter needs two number columns; the result has country (text), count (bigint)",
		chart.Card:    "chart_type: card needs one row with a number column (it has 2 rows); the result has country (text), count (bigint)",
	} {
		_, err := chart.Choose(byCountry, r, want)
		e := apperr.As(err)
		require.Equal(t, apperr.Invalid, e.Code, want)
		require.Equal(t, msg, e.Message)
		require.Equal(t, "chart_type", e.Details["field"])
	}
	_, err := chart.Choose(cols("name:text"), rows(`"Ada"`), chart.Bar)
	require.Equal(t, "chart_type: bar needs a label column (text, boolean, date or an id) and a number column; the result has name (text)", apperr.As(err).Message)
}

func TestParseType(t *testing.T) {
	for in, want := range map[string]chart.Type{"": chart.Auto, "line": chart.Line, " Bar ": chart.Bar, "card": chart.Card, "scatter": chart.Scatter, "none": chart.None} {
		got, err := chart.ParseType(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	_, err := chart.ParseType("pie")
	e := apperr.As(err)
	require.Equal(t, apperr.Invalid, e.Code)
	require.Equal(t, "chart_type", e.Details["field"])
	require.Equal(t, "chart_type: must be one of line, bar, card, scatter, none (or absent, to let the rules choose)", e.Message)
}

// The validator is not vacuous: the schema refuses a mark Vega-Lite lacks.
func TestSchemaRejectsAnUnknownMark(t *testing.T) {
	sch, err := vegaLite()
	require.NoError(t, err)
	inst, err := jsonschema.UnmarshalJSON(strings.NewReader(`{"data":{"values":[]},"mark":"pie3d","encoding":{}}`))
	require.NoError(t, err)
	require.Error(t, sch.Validate(inst))
}
