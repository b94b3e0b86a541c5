// Package pguuid teaches pgx to encode and scan github.com/google/uuid
// values directly.
//
// Out of the box pgx handles a uuid.UUID parameter through its
// driver.Valuer: Value returns the text form, which pgx cannot encode as a
// binary uuid, so it builds an error (with fmt), parses the text back and
// encodes that; and it scans a uuid column into a uuid.UUID through
// sql.Scanner, formatting the 16 bytes as text for UUID.Scan to parse. Every
// request binds and scans several ids, and a profile of `make bench` part 2
// showed these detours as a tenth of the server's CPU time, more with the
// garbage they leave. The
// codec here copies the 16 bytes both ways and leaves every other Go type to
// pgx's own UUIDCodec.
package pguuid

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Register replaces the uuid and uuid[] types of m with ones whose codec
// handles uuid.UUID directly, and makes them the types of uuid.UUID and
// []uuid.UUID values.
func Register(m *pgtype.Map) {
	t := &pgtype.Type{Name: "uuid", OID: pgtype.UUIDOID, Codec: codec{}}
	m.RegisterType(t)
	m.RegisterType(&pgtype.Type{Name: "_uuid", OID: pgtype.UUIDArrayOID, Codec: &pgtype.ArrayCodec{ElementType: t}})
	// Where the server names no parameter type (the simple protocol, or
	// QueryExecModeExec), pgx picks the type by the Go value.
	m.RegisterDefaultPgType(uuid.UUID{}, "uuid")
	m.RegisterDefaultPgType([]uuid.UUID{}, "_uuid")
}

// AfterConnect registers the codec on a new connection: a pool's
// AfterConnect.
func AfterConnect(_ context.Context, conn *pgx.Conn) error {
	Register(conn.TypeMap())
	return nil
}

// codec is pgx's UUIDCodec with direct plans for uuid.UUID.
type codec struct{ pgtype.UUIDCodec }

// PlanEncode implements pgtype.Codec.
func (c codec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(uuid.UUID); ok {
		if format == pgtype.BinaryFormatCode {
			return encodeBinary{}
		}
		return encodeText{}
	}
	return c.UUIDCodec.PlanEncode(m, oid, format, value)
}

// PlanScan implements pgtype.Codec.
func (c codec) PlanScan(m *pgtype.Map, oid uint32, format int16, target any) pgtype.ScanPlan {
	if _, ok := target.(*uuid.UUID); ok {
		if format == pgtype.BinaryFormatCode {
			return scanBinary{}
		}
		return scanText{}
	}
	return c.UUIDCodec.PlanScan(m, oid, format, target)
}

type encodeBinary struct{}

func (encodeBinary) Encode(value any, buf []byte) ([]byte, error) {
	u := value.(uuid.UUID)
	return append(buf, u[:]...), nil
}

type encodeText struct{}

func (encodeText) Encode(value any, buf []byte) ([]byte, error) {
	return append(buf, value.(uuid.UUID).String()...), nil
}

// errNull is what scanning NULL into a uuid.UUID (not a pointer to one)
// returns, as pgx's own plans do.
var errNull = errors.New("cannot scan NULL into *uuid.UUID")

type scanBinary struct{}

func (scanBinary) Scan(src []byte, target any) error {
	if src == nil {
		return errNull
	}
	if len(src) != len(uuid.UUID{}) {
		return fmt.Errorf("invalid length for uuid: %d", len(src))
	}
	copy(target.(*uuid.UUID)[:], src)
	return nil
}

type scanText struct{}

func (scanText) Scan(src []byte, target any) error {
	if src == nil {
		return errNull
	}
	u, err := uuid.ParseBytes(src)
	if err != nil {
		return err
	}
	*target.(*uuid.UUID) = u
	return nil
}
