package testenv

import (
	"bytes"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/agentstate/agentstate-go/redisstore"
)

// FaultProxy is a TCP proxy in front of a store that can lose a reply: armed with a command
// name, it forwards the next request carrying that command to the server, lets the server
// execute it, then throws the reply away and cuts the connection. The client sees exactly
// what a network fault after the write looks like, and go-redis retries the command. It can
// also hold every reply (a stalled network or server) until released.
type FaultProxy struct {
	ln      net.Listener
	target  string
	armed   atomic.Pointer[[]byte] // upper-case command name whose next reply is dropped
	Dropped atomic.Int64           // replies dropped so far
	// Requests counts the reads from clients forwarded to the server: one per pipeline or
	// command, as go-redis writes each in one go (a large one may take several).
	Requests atomic.Int64
	held     atomic.Pointer[chan struct{}] // while set, replies wait for it to close
	wg       sync.WaitGroup
}

// NewFaultProxy listens on a loopback port and forwards to target until the test ends.
func NewFaultProxy(tb testing.TB, target string) *FaultProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &FaultProxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	tb.Cleanup(func() { p.ReleaseReplies(); _ = ln.Close(); p.wg.Wait() })
	return p
}

// HoldReplies makes every reply wait, unsent, until ReleaseReplies: the requests still reach
// the server and are executed.
func (p *FaultProxy) HoldReplies() {
	ch := make(chan struct{})
	p.held.Store(&ch)
}

// ReleaseReplies sends the held replies and stops holding.
func (p *FaultProxy) ReleaseReplies() {
	if ch := p.held.Swap(nil); ch != nil {
		close(*ch)
	}
}

// Addr is where clients connect.
func (p *FaultProxy) Addr() string { return p.ln.Addr().String() }

// DropNextReply arms the proxy: the reply to the next request naming command (e.g. "EVALSHA")
// is lost once.
func (p *FaultProxy) DropNextReply(command string) {
	c := bytes.ToUpper([]byte(command))
	p.armed.Store(&c)
}

func (p *FaultProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.wg.Go(func() { p.pipe(client, server) })
	}
}

// pipe relays one connection. go-redis writes one command per request and waits for its reply
// (pipelines aside), so a request seen on the way in is answered by the next bytes coming back.
func (p *FaultProxy) pipe(client, server net.Conn) {
	var drop atomic.Bool
	closeBoth := func() { _ = client.Close(); _ = server.Close() }
	var wg sync.WaitGroup
	wg.Go(func() {
		defer closeBoth()
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				p.Requests.Add(1)
				if c := p.armed.Load(); c != nil && bytes.Contains(bytes.ToUpper(buf[:n]), *c) && p.armed.CompareAndSwap(c, nil) {
					drop.Store(true)
				}
				if _, werr := server.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	wg.Go(func() {
		defer closeBoth()
		buf := make([]byte, 64<<10)
		for {
			n, err := server.Read(buf)
			if ch := p.held.Load(); n > 0 && ch != nil {
				<-*ch
			}
			if n > 0 && drop.Load() {
				p.Dropped.Add(1)
				return // the reply is lost with the connection
			}
			if n > 0 {
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	})
	wg.Wait()
}

// ThroughProxy returns a copy of e whose client reaches the same server through a FaultProxy
// (go-redis with its default retries, as the server binaries use it).
func (e *Env) ThroughProxy(tb testing.TB) (*Env, *FaultProxy) {
	tb.Helper()
	opts := &redis.Options{}
	if e.Mini != nil {
		opts.Addr = e.Mini.Addr()
	} else if o, err := redis.ParseURL(RedisURL()); err == nil {
		opts = o
	}
	p := NewFaultProxy(tb, opts.Addr)
	opts.Addr, opts.PoolSize = p.Addr(), 8
	rdb := redis.NewClient(opts)
	tb.Cleanup(func() { _ = rdb.Close() })
	return &Env{Name: e.Name + "+proxy", Rdb: rdb, Store: redisstore.New(rdb), Mini: e.Mini, Clock: e.Clock}, p
}
