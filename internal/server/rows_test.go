package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/auth"
	"github.com/dbchat/dbchat/internal/catalog"
	"github.com/dbchat/dbchat/internal/dbsqlc"
	"github.com/dbchat/dbchat/internal/dbtest"
	"github.com/dbchat/dbchat/internal/pguuid"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/server"
	"github.com/dbchat/dbchat/internal/tenant"
)

// rowsEnv is one row-import test's database, runtime pool and HTTP server.
type rowsEnv struct {
	db  *tenant.DB
	url string
}

func newRowsEnv(t *testing.T, cfg server.Config) *rowsEnv {
	t.Helper()
	d := dbtest.New(t)
	db := tenant.New(d.AppPool(t, 4))
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), cfg))
	t.Cleanup(srv.Close)
	return &rowsEnv{db: db, url: srv.URL}
}

// do sends a request with key as bearer token and returns status and body.
func (e *rowsEnv) do(t *testing.T, method, path, key, contentType string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, body)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// createTable creates a table through the API and returns its id.
func (e *rowsEnv) createTable(t *testing.T, key, spec string) string {
	t.Helper()
	status, body := e.do(t, http.MethodPost, "/v1/tables", key, "application/json", strings.NewReader(spec))
	require.Equal(t, http.StatusCreated, status, body)
	var tbl struct {
		ID string `json:"id"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &tbl))
	return tbl.ID
}

func (e *rowsEnv) importRows(t *testing.T, key, id, contentType string, body io.Reader) (int, string) {
	t.Helper()
	return e.do(t, http.MethodPost, "/v1/tables/"+id+"/rows", key, contentType, body)
}

// rowCount counts the table's rows as tn sees them.
func (e *rowsEnv) rowCount(t *testing.T, tn dbtest.Tenant, id string) int64 {
	t.Helper()
	ctx := context.Background()
	var n int64
	err := e.db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		tbl, err := catalog.Get(ctx, tx, uuid.MustParse(id), true)
		if err != nil {
			return err
		}
		n = *tbl.RowCount
		return nil
	})
	require.NoError(t, err)
	return n
}

// listRows returns GET /v1/tables/{id}/rows?query.
func (e *rowsEnv) listRows(t *testing.T, key, id, query string) string {
	t.Helper()
	status, body := e.do(t, http.MethodGet, "/v1/tables/"+id+"/rows?"+query, key, "", nil)
	require.Equal(t, http.StatusOK, status, body)
	return body
}

const rowsOrdersSpec = `{"name":"orders","description":"orders","columns":[
	{"name":"id","type":"bigint","nullable":false},
	{"name":"amount","type":"numeric"},
	{"name":"note","type":"text"},
	{"name":"paid","type":"boolean"},
	{"name":"placed_at","type":"timestamptz"}]}`

const rowsAllTypesSpec = `{"name":"everything","description":"one column per type","columns":[
	{"name":"t","type":"text"},
	{"name":"i","type":"integer"},
	{"name":"b","type":"bigint"},
	{"name":"n","type":"numeric"},
	{"name":"d","type":"double precision"},
	{"name":"ok","type":"boolean"},
	{"name":"day","type":"date"},
	{"name":"at","type":"timestamptz"},
	{"name":"u","type":"uuid"},
	{"name":"j","type":"jsonb"}]}`

const rowsAllTypesColumns = `[{"name":"t","type":"text"},{"name":"i","type":"integer"},{"name":"b","type":"bigint"},
	{"name":"n","type":"numeric"},{"name":"d","type":"double precision"},{"name":"ok","type":"boolean"},
	{"name":"day","type":"date"},{"name":"at","type":"timestamptz"},{"name":"u","type":"uuid"},{"name":"j","type":"jsonb"}]`

func TestImportJSONAndListEveryType(t *testing.T) {
	t.Parallel()
	e := newRowsEnv(t, server.Config{})
	a := dbtest.NewTenant(t, e.db, "JSON Importer")
	id := e.createTable(t, a.APIKey, rowsAllTypesSpec)

	body := `[
		{"t": "line1\nline2, \"quoted\"", "i": 42, "b": 9223372036854775807, "n": 123456789012345678901234567890.000000001,
		 "d": 0.1, "ok": true, "day": "2024-02-29", "at": "2024-01-31T12:00:00.5+01:00",
		 "u": "0b9f3d8e-3c1a-4e5b-9a7d-2f6c8e1d4a10", "j": {"tags": ["a", "b"], "n": 1.50}},
		{"t": "", "i": "-7", "b": "-9223372036854775808", "n": "1.50", "d": "NaN", "ok": "no", "day": null,
		 "at": "2024-01-31 12:00:00", "j": "just a string"},
		{"t": 12.50, "ok": 0, "d": -1e300, "j": null},
		{}
	]`
	status, resp := e.importRows(t, a.APIKey, id, "application/json", strings.NewReader(body))
	require.Equal(t, http.StatusOK, status, resp)
	require.JSONEq(t, `{"inserted":4}`, resp)

	got := e.listRows(t, a.APIKey, id, "")
	require.JSONEq(t, `{"columns":`+rowsAllTypesColumns+`,"limit":100,"offset":0,"truncated":false,"rows":[
		["line1\nline2, \"quoted\"", 42, "9223372036854775807", "123456789012345678901234567890.000000001",
		 0.1, true, "2024-02-29", "2024-01-31T11:00:00.5Z", "0b9f3d8e-3c1a-4e5b-9a7d-2f6c8e1d4a10", {"n": 1.50, "tags": ["a", "b"]}],
		["", -7, "-9223372036854775808", "1.50", "NaN", false, null, "2024-01-31T12:00:00Z", null, "just a string"],
		["12.50", null, null, null, -1e300, false, null, null, null, null],
		[null, null, null, null, null, null, null, null, null, null]]}`, got)
	// bigint and numeric travel as strings, so no float rounding on the way.
	require.Contains(t, got, `"123456789012345678901234567890.000000001"`)

	// Paging follows import order.
	got = e.listRows(t, a.APIKey, id, "limit=1&offset=2")
	require.JSONEq(t, `{"columns":`+rowsAllTypesColumns+`,"limit":1,"offset":2,"truncated":false,"rows":[
		["12.50", null, null, null, -1e300, false, null, null, null, null]]}`, got)
	got = e.listRows(t, a.APIKey, id, "offset=10")
	require.JSONEq(t, `{"columns":`+rowsAllTypesColumns+`,"limit":100,"offset":10,"truncated":false,"rows":[]}`, got)

	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "offset=-1"} {
		status, body := e.do(t, http.MethodGet, "/v1/tables/"+id+"/rows?"+q, a.APIKey, "", nil)
		require.Equal(t, http.StatusBadRequest, status, "%s: %s", q, body)
	}
}

func TestImportCSV(t *testing.T) {
	t.Parallel()
	e := newRowsEnv(t, server.Config{})
	a := dbtest.NewTenant(t, e.db, "CSV Importer")
	id := e.createTable(t, a.APIKey, rowsOrdersSpec)

	// Any subset of the columns, in any order; quoted fields hold commas,
	// quotes and line breaks; CRLF line ends.
	csv := "note,id,amount,paid,placed_at\r\n" +
		`"Hello, world",1,12.50,true,2024-01-31T12:00:00Z` + "\r\n" +
		`"multi` + "\n" + `line, ""quoted""",2,-0.001,NO,2024-01-31 12:00:00+02` + "\r\n" +
		// NULL rules: unquoted empty = NULL; "" = empty text, NULL otherwise.
		`,3,,,` + "\r\n" +
		`"",4,"","",""` + "\r\n" +
		`NULL,5,1e3,t,2024-01-31`
	status, resp := e.importRows(t, a.APIKey, id, "text/csv; charset=utf-8", strings.NewReader(csv))
	require.Equal(t, http.StatusOK, status, resp)
	require.JSONEq(t, `{"inserted":5}`, resp)

	require.JSONEq(t, `{"columns":[{"name":"id","type":"bigint"},{"name":"amount","type":"numeric"},{"name":"note","type":"text"},
		{"name":"paid","type":"boolean"},{"name":"placed_at","type":"timestamptz"}],"limit":100,"offset":0,"truncated":false,"rows":[
		["1", "12.50", "Hello, world", true, "2024-01-31T12:00:00Z"],
		["2", "-0.001", "multi\nline, \"quoted\"", false, "2024-01-31T10:00:00Z"],
		["3", null, null, null, null],
		["4", null, "", null, null],
		["5", "1000", "NULL", true, "2024-01-31T00:00:00Z"]]}`, e.listRows(t, a.APIKey, id, ""))

	// Only some columns: the rest are NULL; imports append.
	status, resp = e.importRows(t, a.APIKey, id, "text/csv", strings.NewReader("id\n6\n7\n"))
	require.Equal(t, http.StatusOK, status, resp)
	require.JSONEq(t, `{"inserted":2}`, resp)
	require.EqualValues(t, 7, e.rowCount(t, a, id))

	// A header alone imports nothing.
	status, resp = e.importRows(t, a.APIKey, id, "text/csv", strings.NewReader("id,amount\n"))
	require.Equal(t, http.StatusOK, status, resp)
	require.JSONEq(t, `{"inserted":0}`, resp)
	require.EqualValues(t, 7, e.rowCount(t, a, id))
}

// requireImportError checks an import's status and exact error body, and
// that the table still has want rows.
func (e *rowsEnv) requireImportError(t *testing.T, tn dbtest.Tenant, id, contentType, body string, status int, errBody string, want int64) {
	t.Helper()
	got, resp := e.importRows(t, tn.APIKey, id, contentType, strings.NewReader(body))
	require.Equal(t, status, got, resp)
	require.JSONEq(t, errBody, resp)
	require.Equal(t, want, e.rowCount(t, tn, id), "nothing imported")
}

func TestImportBadValueRollsBackEverything(t *testing.T) {
	t.Parallel()
	e := newRowsEnv(t, server.Config{})
	a := dbtest.NewTenant(t, e.db, "Bad Values")
	id := e.createTable(t, a.APIKey, rowsOrdersSpec)

	// Line 7 holds the bad amount; line 3's record spans two lines, so the
	// line is the physical line, not the record number.
	csv := "id,amount,note\n" +
		"1,1.00,a\n" +
		"2,2.00,\"two\nlines\"\n" +
		"3,3.00,c\n" +
		"4,4.00,d\n" +
		"5,12;50,e\n" +
		"6,6.00,f\n"
	e.requireImportError(t, a, id, "text/csv", csv, http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"line 7, column \"amount\": invalid numeric \"12;50\"","details":{"line":7,"column":"amount"}}}`, 0)

	// JSON names the array index.
	e.requireImportError(t, a, id, "application/json", `[{"id":1},{"id":2},{"id":3,"paid":"maybe"}]`, http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"index 2, column \"paid\": invalid boolean \"maybe\" (want true/false, t/f, 1/0 or yes/no)","details":{"index":2,"column":"paid"}}}`, 0)
	e.requireImportError(t, a, id, "application/json", `[{"id":1},{"id":"9223372036854775808"}]`, http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"index 1, column \"id\": bigint out of range: \"9223372036854775808\"","details":{"index":1,"column":"id"}}}`, 0)

	// Malformed input fails the same way.
	e.requireImportError(t, a, id, "text/csv", "id,note\n1,a\n2,b,extra\n", http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"line 3: 3 fields, but the header has 2","details":{"line":3}}}`, 0)
	e.requireImportError(t, a, id, "text/csv", "id,note\n1,\"open\n", http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"invalid CSV: line 2: quoted field not closed before the end of the input","details":{"line":2}}}`, 0)
	e.requireImportError(t, a, id, "application/json", `[{"id":1},{"id":2]`, http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"index 1: invalid JSON at byte 17: invalid character ']' after object key:value pair","details":{"index":1}}}`, 0)
	e.requireImportError(t, a, id, "application/json", `[{"id":1},{"id":2}`, http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"index 2: the JSON ends before the array is closed","details":{"index":2}}}`, 0)
	e.requireImportError(t, a, id, "application/json", `{"id":1}`, http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"the JSON body must be an array of objects keyed by column name"}}`, 0)
	e.requireImportError(t, a, id, "application/json", `[{"id":1}, 5]`, http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"index 1: each array element must be a JSON object","details":{"index":1}}}`, 0)
	e.requireImportError(t, a, id, "application/json", `[{"id":1}] [`, http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"unexpected data after the JSON array"}}`, 0)
	e.requireImportError(t, a, id, "text/csv", "", http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"the CSV body is empty: a header row naming the columns is required"}}`, 0)
}

func TestImportNotNull(t *testing.T) {
	t.Parallel()
	e := newRowsEnv(t, server.Config{})
	a := dbtest.NewTenant(t, e.db, "Not Null")
	id := e.createTable(t, a.APIKey, rowsOrdersSpec) // id is NOT NULL

	notNull := func(where string, at int, col string) string {
		return fmt.Sprintf(`{"error":{"code":"invalid","message":"%s %d, column \"%s\": a value is required (the column is NOT NULL)","details":{"%s":%d,"column":"%s"}}}`,
			where, at, col, where, at, col)
	}
	e.requireImportError(t, a, id, "text/csv", "id,note\n1,a\n,b\n3,c\n", http.StatusBadRequest, notNull("line", 3, "id"), 0)
	// "" is NULL for a bigint, so NOT NULL still applies.
	e.requireImportError(t, a, id, "text/csv", "id,note\n1,a\n\"\",b\n", http.StatusBadRequest, notNull("line", 3, "id"), 0)
	// A NOT NULL column left out of the header fails on the first record.
	e.requireImportError(t, a, id, "text/csv", "note\na\n", http.StatusBadRequest, notNull("line", 2, "id"), 0)
	e.requireImportError(t, a, id, "application/json", `[{"id":1},{"id":null}]`, http.StatusBadRequest, notNull("index", 1, "id"), 0)
	e.requireImportError(t, a, id, "application/json", `[{"id":1},{"id":2},{"note":"x"}]`, http.StatusBadRequest, notNull("index", 2, "id"), 0)
}

func TestImportUnknownColumns(t *testing.T) {
	t.Parallel()
	e := newRowsEnv(t, server.Config{})
	a := dbtest.NewTenant(t, e.db, "Unknown Columns")
	id := e.createTable(t, a.APIKey, rowsOrdersSpec)

	e.requireImportError(t, a, id, "text/csv", "id,colour,amount,size\n1,red,2,L\n", http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"line 1: unknown columns in the CSV header: \"colour\", \"size\" (table \"orders\" has: \"id\", \"amount\", \"note\", \"paid\", \"placed_at\")",
		  "details":{"line":1,"columns":["colour","size"]}}}`, 0)
	// 100,000 unknown names: the error lists ten and counts the rest instead
	// of echoing a megabyte of header back.
	var header strings.Builder
	header.WriteString("id")
	for i := range 100_000 {
		fmt.Fprintf(&header, ",unknown_%d", i)
	}
	header.WriteString("\n")
	status, resp := e.importRows(t, a.APIKey, id, "text/csv", strings.NewReader(header.String()))
	require.Equal(t, http.StatusBadRequest, status, resp)
	require.JSONEq(t, `{"error":{"code":"invalid","message":"line 1: unknown columns in the CSV header: \"unknown_0\", \"unknown_1\", \"unknown_2\", \"unknown_3\", \"unknown_4\", \"unknown_5\", \"unknown_6\", \"unknown_7\", \"unknown_8\", \"unknown_9\", and 99990 more (table \"orders\" has: \"id\", \"amount\", \"note\", \"paid\", \"placed_at\")",
		  "details":{"line":1,"columns":["unknown_0","unknown_1","unknown_2","unknown_3","unknown_4","unknown_5","unknown_6","unknown_7","unknown_8","unknown_9"],"unknown_count":100000}}}`, resp)
	require.Less(t, len(resp), 1024)
	e.requireImportError(t, a, id, "text/csv", "id,id\n1,2\n", http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"line 1: column \"id\" appears twice in the CSV header","details":{"line":1,"column":"id"}}}`, 0)
	// tenant_id and _row_id are not importable: they are not user columns.
	e.requireImportError(t, a, id, "application/json", `[{"id":1,"tenant_id":"0b9f3d8e-3c1a-4e5b-9a7d-2f6c8e1d4a10"}]`, http.StatusBadRequest,
		`{"error":{"code":"invalid","message":"index 0: unknown column \"tenant_id\" (table \"orders\" has: \"id\", \"amount\", \"note\", \"paid\", \"placed_at\")",
		  "details":{"index":0,"columns":["tenant_id"]}}}`, 0)
}

func TestImportSizeLimitAndContentType(t *testing.T) {
	t.Parallel()
	const limit = 1000
	e := newRowsEnv(t, server.Config{MaxImportBytes: limit})
	a := dbtest.NewTenant(t, e.db, "Limits")
	id := e.createTable(t, a.APIKey, rowsOrdersSpec)

	var big strings.Builder
	big.WriteString("id,note\n")
	for i := 0; big.Len() <= 4*limit; i++ {
		fmt.Fprintf(&big, "%d,row %d\n", i, i)
	}
	tooLarge := `{"error":{"code":"too_large","message":"import body exceeds 1000 bytes; nothing was imported"}}`
	// With a Content-Length the server refuses before reading...
	e.requireImportError(t, a, id, "text/csv", big.String(), http.StatusRequestEntityTooLarge, tooLarge, 0)
	// ...and without one (chunked) it stops reading at the limit.
	status, resp := e.importRows(t, a.APIKey, id, "text/csv", io.MultiReader(strings.NewReader(big.String())))
	require.Equal(t, http.StatusRequestEntityTooLarge, status, resp)
	require.JSONEq(t, tooLarge, resp)
	require.Zero(t, e.rowCount(t, a, id))

	var js strings.Builder
	js.WriteString("[")
	for i := 0; js.Len() <= 4*limit; i++ {
		fmt.Fprintf(&js, `{"id":%d},`, i)
	}
	js.WriteString(`{"id":0}]`)
	status, resp = e.importRows(t, a.APIKey, id, "application/json", io.MultiReader(strings.NewReader(js.String())))
	require.Equal(t, http.StatusRequestEntityTooLarge, status, resp)
	require.JSONEq(t, tooLarge, resp)
	require.Zero(t, e.rowCount(t, a, id))

	// Just under the limit is fine.
	status, resp = e.importRows(t, a.APIKey, id, "text/csv", io.MultiReader(strings.NewReader(big.String()[:strings.LastIndexByte(big.String()[:limit], '\n')+1])))
	require.Equal(t, http.StatusOK, status, resp)

	unsupported := `{"error":{"code":"unsupported_media_type","message":"Content-Type must be text/csv or application/json (UTF-8)"}}`
	for _, ct := range []string{"", "text/plain", "application/x-ndjson", "text/csv; charset=latin1", "multipart/form-data; boundary=x"} {
		status, resp := e.importRows(t, a.APIKey, id, ct, strings.NewReader("id\n1\n"))
		require.Equal(t, http.StatusUnsupportedMediaType, status, "%q: %s", ct, resp)
		require.JSONEq(t, unsupported, resp, ct)
	}
}

// rowsGenerateCSV streams a CSV body of n rows without ever holding it, and
// counts its bytes.
func rowsGenerateCSV(header string, n int, row func(w *bufio.Writer, i int), size *atomic.Int64) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		cw := &rowsCountingWriter{w: pw, n: size}
		w := bufio.NewWriterSize(cw, 64<<10)
		w.WriteString(header + "\n")
		for i := range n {
			row(w, i)
		}
		pw.CloseWithError(w.Flush())
	}()
	return pr
}

type rowsCountingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c *rowsCountingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	if c.n != nil {
		c.n.Add(int64(n))
	}
	return n, err
}

func rowsOrderRow(w *bufio.Writer, i int) {
	fmt.Fprintf(w, "%d,%d.%02d,\"note %d, with a comma\",%t,2024-01-%02dT12:00:00Z\n", i, i, i%100, i, i%2 == 0, i%28+1)
}

func TestImport100kRowsCSV(t *testing.T) {
	t.Parallel()
	e := newRowsEnv(t, server.Config{})
	a := dbtest.NewTenant(t, e.db, "Bulk")
	id := e.createTable(t, a.APIKey, rowsOrdersSpec)

	const n = 100_000
	status, resp := e.importRows(t, a.APIKey, id, "text/csv", rowsGenerateCSV("id,amount,note,paid,placed_at", n, rowsOrderRow, nil))
	require.Equal(t, http.StatusOK, status, resp)
	require.JSONEq(t, fmt.Sprintf(`{"inserted":%d}`, n), resp)
	require.EqualValues(t, n, e.rowCount(t, a, id))

	// The last rows are the last lines, in order.
	var page struct {
		Rows [][]any `json:"rows"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.listRows(t, a.APIKey, id, fmt.Sprintf("offset=%d&limit=1000", n-2))), &page))
	require.Equal(t, [][]any{
		{"99998", "99998.98", "note 99998, with a comma", true, "2024-01-11T12:00:00Z"},
		{"99999", "99999.99", "note 99999, with a comma", false, "2024-01-12T12:00:00Z"},
	}, page.Rows)
}

// TestImportMemoryIsFlat imports ~300k rows while sampling the heap: an
// import holds one record at a time, so the heap stays far below the body
// size. (No timing assertions; the body is generated as it is sent.)
func TestImportMemoryIsFlat(t *testing.T) {
	// Not parallel: the heap is the whole process's, and Go runs
	// non-parallel tests before any parallel one starts.
	if testing.Short() {
		t.Skip("-short")
	}
	e := newRowsEnv(t, server.Config{})
	a := dbtest.NewTenant(t, e.db, "Memory")
	id := e.createTable(t, a.APIKey, rowsOrdersSpec)

	// Measure growth over what the process already holds (earlier tests'
	// leftovers included).
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	const n = 300_000
	pad := strings.Repeat("x", 100)
	var size atomic.Int64
	body := rowsGenerateCSV("id,amount,note,paid,placed_at", n, func(w *bufio.Writer, i int) {
		fmt.Fprintf(w, "%d,%d.5,%s %d,true,2024-01-31T12:00:00Z\n", i, i, pad, i)
	}, &size)
	status, resp := e.importRows(t, a.APIKey, id, "text/csv", body)
	close(stop)
	wg.Wait()
	require.Equal(t, http.StatusOK, status, resp)
	require.JSONEq(t, fmt.Sprintf(`{"inserted":%d}`, n), resp)
	growth := peak.Load() - min(peak.Load(), base.HeapAlloc)
	t.Logf("body %d MiB, heap growth %d MiB (base %d MiB)", size.Load()>>20, growth>>20, base.HeapAlloc>>20)
	require.Less(t, growth, uint64(size.Load()/3), "heap growth must stay far below the body size")
}

func TestImportTenantIsolation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newRowsEnv(t, server.Config{})
	a := dbtest.NewTenant(t, e.db, "Owner A")
	b := dbtest.NewTenant(t, e.db, "Intruder B")
	id := e.createTable(t, a.APIKey, rowsOrdersSpec)
	status, resp := e.importRows(t, a.APIKey, id, "text/csv", strings.NewReader("id,note\n1,secret\n2,secret\n"))
	require.Equal(t, http.StatusOK, status, resp)

	// B sees A's table id exactly as a random id: 404, same body.
	_, random := e.importRows(t, b.APIKey, uuid.NewString(), "text/csv", strings.NewReader("id\n9\n"))
	status, resp = e.importRows(t, b.APIKey, id, "text/csv", strings.NewReader("id\n9\n"))
	require.Equal(t, http.StatusNotFound, status, resp)
	require.Equal(t, random, resp)
	require.JSONEq(t, `{"error":{"code":"not_found","message":"not found"}}`, resp)
	status, resp = e.importRows(t, b.APIKey, id, "application/json", strings.NewReader(`[{"id":9}]`))
	require.Equal(t, http.StatusNotFound, status, resp)
	require.Equal(t, random, resp)
	status, resp = e.importRows(t, a.APIKey, "not-a-uuid", "text/csv", strings.NewReader("id\n9\n"))
	require.Equal(t, http.StatusNotFound, status, resp)
	require.Equal(t, random, resp)
	require.EqualValues(t, 2, e.rowCount(t, a, id), "A's rows unchanged")

	// B cannot list A's rows.
	status, resp = e.do(t, http.MethodGet, "/v1/tables/"+id+"/rows", b.APIKey, "", nil)
	require.Equal(t, http.StatusNotFound, status, resp)
	require.Equal(t, random, resp)
	require.NotContains(t, resp, "secret")

	// Nor read them in SQL, naming A's table directly: the policy hides them.
	var ident string
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
		tbl, err := catalog.Get(ctx, tx, uuid.MustParse(id), false)
		ident = tbl.Ident().Sanitize()
		return err
	}))
	var seenByB, seenByA int64
	require.NoError(t, e.db.TxAs(ctx, b.Identity, func(tx tenant.Conn) error {
		return tx.QueryRow(ctx, "SELECT count(*) FROM "+ident).Scan(&seenByB)
	}))
	require.NoError(t, e.db.TxAs(ctx, a.Identity, func(tx tenant.Conn) error {
		return tx.QueryRow(ctx, "SELECT count(*) FROM "+ident).Scan(&seenByA)
	}))
	require.Zero(t, seenByB)
	require.EqualValues(t, 2, seenByA)

	// Members may list rows but not import them.
	memberKey := e.memberKey(t, a)
	status, resp = e.importRows(t, memberKey, id, "text/csv", strings.NewReader("id\n9\n"))
	require.Equal(t, http.StatusForbidden, status, resp)
	require.Contains(t, e.listRows(t, memberKey, id, ""), "secret")
	require.EqualValues(t, 2, e.rowCount(t, a, id))
}

// memberKey creates a member user in tn and returns an API key for it.
func (e *rowsEnv) memberKey(t *testing.T, tn dbtest.Tenant) string {
	t.Helper()
	ctx := context.Background()
	q := dbsqlc.New()
	key, err := auth.Generate(tn.ID)
	require.NoError(t, err)
	require.NoError(t, e.db.TxAs(ctx, tn.Identity, func(tx tenant.Conn) error {
		u, err := q.CreateUser(ctx, tx, dbsqlc.CreateUserParams{Email: "member@example.com", Name: "Member", Role: string(tenant.Member)})
		if err != nil {
			return err
		}
		_, err = q.CreateAPIKey(ctx, tx, dbsqlc.CreateAPIKeyParams{UserID: u.ID, Name: "member key", Prefix: key.Prefix, KeyHash: key.Hash})
		return err
	}))
	return key.Plain
}

// A preview pages at most 100000 rows deep: each page scans the rows it
// skips, and deep offsets held the pool (issue 12's noisy neighbour).
func TestPreviewOffsetIsBounded(t *testing.T) {
	t.Parallel()
	e := newRowsEnv(t, server.Config{})
	a := dbtest.NewTenant(t, e.db, "A")
	id := e.createTable(t, a.APIKey, `{"name":"t","columns":[{"name":"v","type":"text"}]}`)
	status, body := e.do(t, http.MethodGet, "/v1/tables/"+id+"/rows?offset=100001", a.APIKey, "", nil)
	require.Equal(t, http.StatusBadRequest, status, body)
	require.Contains(t, body, `"field":"offset"`)
	status, body = e.do(t, http.MethodGet, "/v1/tables/"+id+"/rows?offset=100000", a.APIKey, "", nil)
	require.Equal(t, http.StatusOK, status, body)
}

// rowsPreview is the part of a preview page TestPreviewIsBoundedInBytes
// reads.
type rowsPreview struct {
	Columns   []catalog.RowsColumn `json:"columns"`
	Rows      [][]any              `json:"rows"`
	Truncated *bool                `json:"truncated"`
}

// A preview holds at most /v1/sql's byte cap of values, stops at the first
// row that does not fit and says so; smaller rows come back whole. (Found by
// a red team: 100 rows of 2 MB each took the server from 112 MB to 986 MB of
// RSS in one preview, and any member may preview.)
func TestPreviewIsBoundedInBytes(t *testing.T) {
	t.Parallel()
	e := newRowsEnv(t, server.Config{})
	a := dbtest.NewTenant(t, e.db, "Blobs")
	id := e.createTable(t, a.APIKey, `{"name":"blobs","columns":[{"name":"id","type":"bigint"},{"name":"body","type":"text"}]}`)

	const mib = 1 << 20
	bodies := []string{
		"small 1", "small 2",
		strings.Repeat("a", 3*mib), strings.Repeat("b", 3*mib), strings.Repeat("c", 3*mib),
		strings.Repeat("d", 5*mib), // more than the cap alone
		"small 7",
		strings.Repeat("<", mib), // 1 MiB as text, 6 MiB as JSON ("\u003c")
		"small 9",
	}
	var csv strings.Builder
	csv.WriteString("id,body\n")
	for i, b := range bodies {
		fmt.Fprintf(&csv, "%d,%s\n", i+1, b)
	}
	status, resp := e.importRows(t, a.APIKey, id, "text/csv", strings.NewReader(csv.String()))
	require.Equal(t, http.StatusOK, status, resp)

	// preview reads one page and checks what every page must be: 200,
	// within the cap plus the envelope, columns as they are.
	preview := func(query string) rowsPreview {
		t.Helper()
		status, body := e.do(t, http.MethodGet, "/v1/tables/"+id+"/rows?"+query, a.APIKey, "", nil)
		require.Equal(t, http.StatusOK, status, "%s: %.300s", query, body)
		require.Less(t, len(body), sandbox.DefaultMaxBytes+4096, query)
		var page rowsPreview
		require.NoError(t, json.Unmarshal([]byte(body), &page), query)
		require.Equal(t, []catalog.RowsColumn{{Name: "id", Type: "bigint"}, {Name: "body", Type: "text"}}, page.Columns, query)
		require.NotNil(t, page.Truncated, "%s: truncated is always there", query)
		return page
	}
	// want checks that page holds exactly the rows ids (1-based), whole.
	want := func(query string, page rowsPreview, truncated bool, ids ...int) {
		t.Helper()
		require.Equal(t, truncated, *page.Truncated, query)
		require.Len(t, page.Rows, len(ids), query)
		for i, n := range ids {
			require.Equal(t, strconv.Itoa(n), page.Rows[i][0], query)
			require.True(t, page.Rows[i][1] == bodies[n-1], "%s: row %d comes back whole", query, n)
		}
	}

	// The red team's request: the small rows and the first 3 MiB fit; the
	// second 3 MiB would pass the cap and ends the page.
	for _, q := range []string{"", "limit=100", "limit=1000"} {
		want(q, preview(q), true, 1, 2, 3)
	}
	want("limit=2", preview("limit=2"), false, 1, 2)
	want("limit=3", preview("limit=3"), false, 1, 2, 3)
	// The next page starts where the last one stopped.
	want("offset=3", preview("offset=3"), true, 4)
	// A value larger than the cap never comes back, and is no error: the
	// page ends before it, empty if it is the first row.
	want("offset=5", preview("offset=5"), true)
	want("offset=4&limit=2", preview("offset=4&limit=2"), true, 5)
	want("offset=6&limit=1", preview("offset=6&limit=1"), false, 7)
	// The cap counts the JSON sent, escapes included, not the stored text.
	want("offset=6", preview("offset=6"), true, 7)
	want("offset=8", preview("offset=8"), false, 9)

	// jsonb is measured as well.
	docs := e.createTable(t, a.APIKey, `{"name":"docs","columns":[{"name":"doc","type":"jsonb"}]}`)
	status, resp = e.importRows(t, a.APIKey, docs, "application/json",
		strings.NewReader(`[{"doc":{"k":"`+strings.Repeat("j", 5*mib)+`"}},{"doc":{"k":1}}]`))
	require.Equal(t, http.StatusOK, status, resp)
	for q, page := range map[string]string{
		"":         `{"columns":[{"name":"doc","type":"jsonb"}],"limit":100,"offset":0,"rows":[],"truncated":true}`,
		"offset=1": `{"columns":[{"name":"doc","type":"jsonb"}],"limit":100,"offset":1,"rows":[[{"k":1}]],"truncated":false}`,
	} {
		require.JSONEq(t, page, e.listRows(t, a.APIKey, docs, q), q)
	}
}

// The database itself stops at the cap: a preview of ten 3 MiB rows reads
// about one cap's worth from PostgreSQL, not the page's 30 MiB (counted on
// the server's connection to it).
func TestPreviewDatabaseSendsOnlyWhatFits(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t)
	cfg, err := pgxpool.ParseConfig(d.AppURL)
	require.NoError(t, err)
	cfg.MaxConns = 2
	cfg.AfterConnect = pguuid.AfterConnect // as dbchat serve's pool
	var read atomic.Int64
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var dialer net.Dialer
		conn, err := dialer.DialContext(ctx, network, addr)
		return rowsReadCounter{Conn: conn, n: &read}, err
	}
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	db := tenant.New(pool)
	srv := httptest.NewServer(server.New(db, slog.New(slog.NewTextHandler(t.Output(), nil)), server.Config{}))
	t.Cleanup(srv.Close)
	e := &rowsEnv{db: db, url: srv.URL}
	a := dbtest.NewTenant(t, db, "Blobs")
	id := e.createTable(t, a.APIKey, `{"name":"blobs","columns":[{"name":"id","type":"bigint"},{"name":"body","type":"text"}]}`)

	const mib = 1 << 20
	var csv strings.Builder
	csv.WriteString("id,body\n")
	for i := range 10 {
		fmt.Fprintf(&csv, "%d,%s\n", i, strings.Repeat(string(rune('a'+i)), 3*mib))
	}
	status, resp := e.importRows(t, a.APIKey, id, "text/csv", strings.NewReader(csv.String()))
	require.Equal(t, http.StatusOK, status, resp)

	before := read.Load()
	var page rowsPreview
	require.NoError(t, json.Unmarshal([]byte(e.listRows(t, a.APIKey, id, "limit=100")), &page))
	got := read.Load() - before
	require.True(t, *page.Truncated)
	require.Len(t, page.Rows, 1)
	t.Logf("read %d bytes from PostgreSQL for a page of %d bytes", got, 3*mib)
	require.Less(t, got, int64(sandbox.DefaultMaxBytes+64<<10), "the database sent rows past the cap")
}

// rowsReadCounter counts the bytes read from a connection.
type rowsReadCounter struct {
	net.Conn
	n *atomic.Int64
}

func (c rowsReadCounter) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.n.Add(int64(n))
	return n, err
}
