package summary_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/chart"
	"github.com/dbchat/dbchat/internal/summary"
)

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
		if err := json.Unmarshal([]byte("["+r+"]"), &out[i]); err != nil {
			panic(err)
		}
	}
	return out
}

func TestSummaries(t *testing.T) {
	var many []string
	for i := 1; i <= 6; i++ {
		many = append(many, fmt.Sprintf(`"c%d","%d"`, i, i*10))
	}
	for name, tc := range map[string]struct {
		cols      []chart.Column
		rows      [][]json.RawMessage
		truncated bool
		want      string
	}{
		"no rows": {cols("count:bigint"), rows(), false, "No rows."},
		"one number": {cols("count:bigint"), rows(`"4"`), false,
			"1 row: count is 4."},
		"one row, many columns": {cols("id:bigint", "name:text", "country:text", "signed_up:date", "note:text"),
			rows(`"1","Ada Lovelace","GB","2024-01-15",null`), false,
			"1 row: id is 1, name is Ada Lovelace and country is GB (and 2 more columns)."},
		"one row, a NULL": {cols("total:numeric"), rows(`null`), false, "1 row: total is empty."},
		"one row of a truncated result": {cols("name:text"), rows(`"Ada"`), true,
			"The first row (more rows matched; the limit left them out): name is Ada."},
		"time series, down": {cols("ordered_at:timestamptz", "amount:numeric"),
			rows(`"2024-06-05T09:15:00Z","33.20"`, `"2024-06-01T10:00:00Z","120.50"`, `"2024-06-07T16:45:00Z","410.00"`, `"2024-06-09T08:05:00Z","18.99"`, `"2024-06-08T00:00:00Z",null`), false,
			"5 rows. From 2024-06-01T10:00:00Z to 2024-06-09T08:05:00Z, amount went from 120.50 to 18.99 (down 84%); highest 410.00 on 2024-06-07T16:45:00Z, lowest 18.99 on 2024-06-09T08:05:00Z."},
		"time series by month, up": {cols("month:timestamptz", "orders:bigint"),
			rows(`"2024-01-01T00:00:00Z","10"`, `"2024-02-01T00:00:00Z","8"`, `"2024-03-01T00:00:00Z","15"`), false,
			"3 rows. From 2024-01-01 to 2024-03-01, orders went from 10 to 15 (up 50%); highest 15 on 2024-03-01, lowest 8 on 2024-02-01."},
		"time series, flat": {cols("day:date", "n:integer"), rows(`"2024-01-01",3`, `"2024-01-02",3`), false,
			"2 rows. From 2024-01-01 to 2024-01-02, n went from 3 to 3 (unchanged); highest 3 on 2024-01-01, lowest 3 on 2024-01-01."},
		"time series from zero": {cols("day:date", "n:integer"), rows(`"2024-01-01",0`, `"2024-01-02",3`), false,
			"2 rows. From 2024-01-01 to 2024-01-02, n went from 0 to 3 (up); highest 3 on 2024-01-02, lowest 0 on 2024-01-01."},
		"per label, few": {cols("country:text", "count:bigint"), rows(`"GB","1"`, `"US","2"`, `"NL","1"`), false,
			"3 rows. By count: US (2), GB (1), NL (1)."},
		"per label, many, truncated": {cols("customer:text", "total:numeric"), rows(many...), true,
			"The first 6 rows (more rows matched; the limit left them out). Top 3 by total: c6 (60), c5 (50), c4 (40); lowest: c1 (10)."},
		"text label over an id": {cols("customer_id:bigint", "name:text", "amount:numeric"),
			rows(`"1","Ada","120.50"`, `"2",null,"75.00"`), false,
			"2 rows. By amount: Ada (120.50), (null) (75.00)."},
		"numbers only": {cols("salary:numeric", "bonus:integer"), rows(`"95000",1`, `"58000",2`, `"72000",null`), false,
			"3 rows. Values of salary range from 58000 to 95000."},
		"numbers all equal": {cols("n:integer"), rows(`5`, `5`, `null`), false,
			"3 rows. Every row with a value has n 5."},
		"labels, a common one": {cols("name:text", "country:text"), rows(`"Ada","GB"`, `"Grace","US"`, `"Barbara","US"`), false,
			"3 rows. Most common country: US (2 of 3 rows)."},
		"labels, all distinct": {cols("country:text"), rows(`"GB"`, `"US"`), false,
			"2 rows. All 2 values of country are distinct."},
		"nothing to say": {cols("doc:jsonb"), rows(`{"a":1}`, `{"b":2}`), false, "2 rows."},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.want, summary.Summarize(tc.cols, tc.rows, tc.truncated))
		})
	}
}

func TestLongValuesAreCut(t *testing.T) {
	long := strings.Repeat("x", 100)
	got := summary.Summarize(cols("note:text"), rows(`"`+long+`"`), false)
	require.Equal(t, "1 row: note is "+strings.Repeat("x", 59)+"….", got)
}
