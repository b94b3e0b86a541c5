package sandbox_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
	"github.com/dbchat/dbchat/internal/sandbox"
	"github.com/dbchat/dbchat/internal/tenant"
)

// A PostgreSQL killed while the sandbox logs in answers the login with
// FATAL 57P01 "terminating connection due to unexpected postmaster exit".
// That is the database gone, not the statement's error: the client gets
// 503 unavailable, never 400 sql_error carrying the server's message (seen
// in the server's crash test, where a login raced the kill).
func TestDatabaseLostWhileConnectingIsUnavailable(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := tenant.NewContext(context.Background(), f.a.Identity)
	u, err := url.Parse(f.d.QueryURL)
	require.NoError(t, err)
	p := newDyingProxy(t, u.Host)
	u.Host = p.addr()
	box, err := tenant.NewSandbox(context.Background(), u.String(), 2)
	require.NoError(t, err)
	t.Cleanup(box.Close)
	svc := sandbox.New(f.db, box)
	req := sandbox.Request{SQL: "SELECT count(*) FROM items", Timeout: 5 * time.Second}

	res, err := svc.Run(ctx, req)
	require.NoError(t, err)
	require.Equal(t, 1, res.RowCount)

	p.die()
	// The first run meets the dropped connection, the next ones log in
	// afresh and get the FATAL: both are the database gone.
	for range 3 {
		_, err := svc.Run(ctx, req)
		var ae *apperr.Error
		require.ErrorAs(t, err, &ae)
		require.Equal(t, apperr.Unavailable, ae.Code, "%v", err)
		require.NotContains(t, ae.Message, "postmaster")
	}
	require.GreaterOrEqual(t, p.refused.Load(), int64(2), "logins refused with the FATAL")
}

// dyingProxy forwards TCP connections to a PostgreSQL server until die;
// then it drops every forwarded connection and answers each new login as a
// server whose postmaster was killed does.
type dyingProxy struct {
	ln      net.Listener
	target  string
	dead    atomic.Bool
	refused atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn
}

func newDyingProxy(t *testing.T, target string) *dyingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &dyingProxy{ln: ln, target: target}
	t.Cleanup(func() { ln.Close(); p.die() })
	go p.serve()
	return p
}

func (p *dyingProxy) addr() string { return p.ln.Addr().String() }

func (p *dyingProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.dead.Load() {
			go p.refuse(c)
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { _, _ = io.Copy(s, c); s.Close() }()
		go func() { _, _ = io.Copy(c, s); c.Close() }()
	}
}

// refuse reads the login and answers it with the FATAL a backend sends
// when it finds its postmaster gone.
func (p *dyingProxy) refuse(c net.Conn) {
	defer c.Close()
	be := pgproto3.NewBackend(c, c)
	for {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		if _, ok := msg.(*pgproto3.SSLRequest); ok {
			if _, err := c.Write([]byte("N")); err != nil {
				return
			}
			continue
		}
		break
	}
	be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: "57P01",
		Message: "terminating connection due to unexpected postmaster exit"})
	if be.Flush() == nil {
		p.refused.Add(1)
	}
}

// die drops every forwarded connection and refuses every new one.
func (p *dyingProxy) die() {
	p.dead.Store(true)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
