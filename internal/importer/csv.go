package importer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// csvReader is a streaming RFC 4180 reader that, unlike encoding/csv, tells
// a quoted empty field ("") from an unquoted one, which the NULL rule needs,
// and keeps the bytes of quoted fields exactly (line breaks included). It
// holds one record at a time.
//
// Grammar: records end with LF or CRLF; fields are separated by commas; a
// field is either unquoted (no quote, comma or line break inside) or enclosed
// in double quotes, where "" stands for one quote and commas and line breaks
// are data. Lines that are entirely empty are skipped. A UTF-8 byte order
// mark at the start is ignored.
type csvReader struct {
	r         *bufio.Reader
	line      int64 // physical lines read so far
	start     int64 // physical line on which the current record starts
	maxRecord int

	long   []byte   // a line longer than the bufio buffer, assembled
	buf    []byte   // the current record's field bytes, back to back
	ends   []int    // end of each field in buf
	quoted []bool   // whether each field was quoted
	fields []string // the current record's fields (views of one string)
	first  bool
}

// errSyntax is a CSV syntax error on a physical line.
type errSyntax struct {
	line int64
	msg  string
}

func (e *errSyntax) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// errTooLong is readLine's report of a record past maxRecord.
var errTooLong = errors.New("record too long")

func (c *csvReader) tooLong(line int64) error {
	return &errSyntax{line, fmt.Sprintf("record longer than %d bytes", c.maxRecord)}
}

func newCSVReader(r io.Reader, maxRecord int) *csvReader {
	return &csvReader{r: bufio.NewReaderSize(r, 64<<10), maxRecord: maxRecord, first: true}
}

// readLine returns the next physical line including its line break (absent
// only on the last line), or io.EOF when no bytes are left. The slice is
// valid until the next call.
func (c *csvReader) readLine() ([]byte, error) {
	line, err := c.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		c.long = append(c.long[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			if len(c.long)+len(c.buf) > c.maxRecord {
				return nil, errTooLong
			}
			line, err = c.r.ReadSlice('\n')
			c.long = append(c.long, line...)
		}
		line = c.long
	}
	if len(line)+len(c.buf) > c.maxRecord {
		return nil, errTooLong
	}
	if err == io.EOF && len(line) > 0 {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	c.line++
	if c.first {
		c.first = false
		line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
	}
	return line, nil
}

// Read reads the next record; it returns io.EOF after the last one. The
// fields and quoted flags are valid until the next call.
func (c *csvReader) Read() (fields []string, quoted []bool, err error) {
	var line []byte
	c.buf, c.ends, c.quoted = c.buf[:0], c.ends[:0], c.quoted[:0]
	for {
		line, err = c.readLine()
		if err == errTooLong {
			return nil, nil, c.tooLong(c.line + 1)
		}
		if err != nil {
			return nil, nil, err
		}
		if len(trimEOL(line)) > 0 {
			break
		}
	}
	c.start = c.line
	pos := 0
	for {
		if pos < len(line) && line[pos] == '"' {
			// Quoted field: runs to the next lone quote, across lines.
			pos++
			for {
				i := bytes.IndexByte(line[pos:], '"')
				if i < 0 {
					c.buf = append(c.buf, line[pos:]...)
					switch line, err = c.readLine(); err {
					case nil:
					case io.EOF:
						return nil, nil, &errSyntax{c.start, "quoted field not closed before the end of the input"}
					case errTooLong:
						return nil, nil, c.tooLong(c.start)
					default:
						return nil, nil, err
					}
					pos = 0
					continue
				}
				c.buf = append(c.buf, line[pos:pos+i]...)
				pos += i + 1
				if pos < len(line) && line[pos] == '"' {
					c.buf = append(c.buf, '"')
					pos++
					continue
				}
				break
			}
			c.ends, c.quoted = append(c.ends, len(c.buf)), append(c.quoted, true)
			rest := line[pos:]
			if len(rest) > 0 && rest[0] == ',' {
				pos++
				continue
			}
			if len(trimEOL(rest)) > 0 {
				return nil, nil, &errSyntax{c.line, `unexpected text after a closing quote (write a quote inside a quoted field as "")`}
			}
			break
		}
		// Unquoted field: runs to the next comma or the end of the line.
		rest := line[pos:]
		last := false
		i := bytes.IndexByte(rest, ',')
		if i < 0 {
			rest, last = trimEOL(rest), true
		} else {
			rest = rest[:i]
		}
		if bytes.IndexByte(rest, '"') >= 0 {
			return nil, nil, &errSyntax{c.line, `a quote inside an unquoted field (enclose the field in quotes and double the quote: "")`}
		}
		c.buf = append(c.buf, rest...)
		c.ends, c.quoted = append(c.ends, len(c.buf)), append(c.quoted, false)
		if last {
			break
		}
		pos += i + 1
	}
	// One string per record; the fields are views of it.
	all := string(c.buf)
	c.fields = c.fields[:0]
	from := 0
	for _, end := range c.ends {
		c.fields = append(c.fields, all[from:end])
		from = end
	}
	return c.fields, c.quoted, nil
}

// Line is the physical line (1-based) on which the last record started.
func (c *csvReader) Line() int64 { return c.start }

func trimEOL(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
	}
	return b
}
