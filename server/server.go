package server

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/netpoll"
)

// Config is where a server listens: what a server keeps across reloads.
type Config struct {
	Listen netip.AddrPort
	// Inherited is a listening socket to accept on instead of binding
	// Listen (systemd's socket activation); 0: none, since inherited
	// descriptors start at 3. The server owns it from Listen on.
	Inherited int
}

// Route is what one generation of the configuration says about a server's
// connections: where they go, their deadlines, how many may be open, and
// what they count into. A reload gives a server a new Route; a connection
// keeps the Route it was accepted under. Immutable once set.
type Route struct {
	Router         string
	Dst            string
	ConnectTimeout time.Duration
	Lifetime       time.Duration // 0: none
	IdleTimeout    time.Duration // 0: none
	MaxConnections int
	Dispatcher     Dispatcher
	Tally          *Tally
	Handshake      *Handshake // nil: none
	// Offload hands each established stream's bytes to the kernel
	// (duplex.StartOffload) instead of splicing them on the loop.
	Offload bool
	// OffloadAfter is how many batches of bytes an established stream
	// moves on its loop before it is offloaded; 0: at once.
	OffloadAfter uint16
}

// Dispatcher takes accepted connections.
type Dispatcher interface {
	// Dispatch is called on loop for each accepted connection. It owns fd
	// from then on (fd is non-blocking and not yet registered) and must
	// call Server.Done exactly once when the connection ends. env is valid
	// only during the call.
	Dispatch(loop *netpoll.Loop, fd int, env *Envelope)
}

// Server is one listening address: its sockets, one per loop, and the
// connections open on it. It outlives reloads that keep its address; its
// Route says what each reload wants done with what it accepts.
type Server struct {
	cfg       Config
	route     atomic.Pointer[Route]
	addr      netip.AddrPort // bound address (port resolved when Listen had 0)
	label     string         // addr, for logs and metrics; set by Listen
	listeners []*listener

	active  atomic.Int64 // accepted and not yet Done, plus in-flight reservations, every Route's
	npaused atomic.Int32
	closing atomic.Bool // Close was called: accept nothing more
}

// Stats is a snapshot of a server's counters.
type Stats struct {
	Accepted      uint64 // connections accepted
	Active        int64  // connections open now
	PausedAtLimit uint64 // times accepting stopped at max_connections
	AcceptErrors  uint64 // accept4 failures (EMFILE, ENFILE, ...)
	ResourceWaits uint64 // connects put off for want of fds or memory

	ConnectAttempts uint64
	// ConnectAttempts counts connect attempts to endpoints (a connection
	// may make several); ConnectFailures counts those that failed (not connections: a
	// connection may make several) by cause.
	ConnectFailures [NumConnectFailures]uint64
	Ended           [NumReasons]uint64 // connections ended, by reason
	BytesUp         uint64             // client → upstream, of ended connections
	BytesDown       uint64             // upstream → client, of ended connections
	ConnectLatency  HistogramStats     // accept → upstream established
	Duration        HistogramStats     // accept → close
}

// New returns a server that accepts under rt. It does not listen until
// Listen. rt.Tally must have a set of counters per loop Listen is given.
func New(cfg Config, rt *Route) *Server {
	s := &Server{cfg: cfg}
	s.route.Store(rt)
	return s
}

// Config returns where the server listens.
func (s *Server) Config() Config { return s.cfg }

// Route returns the route connections are accepted under now.
func (s *Server) Route() *Route { return s.route.Load() }

// SetRoute has connections accepted from now on, on every loop, go by rt.
// Those open keep theirs. A listener paused at max_connections looks again
// at the new limit. Safe from any goroutine.
func (s *Server) SetRoute(rt *Route) {
	s.route.Store(rt)
	if s.npaused.Load() > 0 {
		s.resume()
	}
}

// Addr is the bound address, valid after Listen.
func (s *Server) Addr() netip.AddrPort { return s.addr }

// Label names the server in logs and metrics: its bound address once it
// listens, its configured one before. Made once: it does not allocate.
func (s *Server) Label() string {
	if s.label == "" {
		return s.cfg.Listen.String()
	}
	return s.label
}

// Listen binds the server's sockets and starts accepting: Bind, then
// Start. On error nothing stays open.
func (s *Server) Listen(loops []*netpoll.Loop) error {
	if err := s.Bind(loops); err != nil {
		return err
	}
	s.Start()
	return nil
}

// Bind binds one listening socket per loop (or takes the inherited one),
// without accepting yet: connections wait in the kernel's backlog until
// Start. On error nothing stays open.
func (s *Server) Bind(loops []*netpoll.Loop) error {
	addr := s.cfg.Listen
	if addr.Port() != 0 && s.cfg.Inherited == 0 {
		if err := checkFree(addr); err != nil {
			return fmt.Errorf("server %s: %w", addr, err)
		}
	}
	var lns []*listener
	for i, l := range loops {
		var ln *listener
		var err error
		if s.cfg.Inherited != 0 {
			ln, err = inherit(s.cfg.Inherited, i)
		} else {
			ln, err = listen(addr)
		}
		if err != nil {
			for _, ln := range lns {
				ln.closeUnregistered()
			}
			if s.cfg.Inherited != 0 && len(lns) == 0 {
				unix.Close(s.cfg.Inherited) // ours from Bind on
			}
			return fmt.Errorf("server %s: %w", s.cfg.Listen, err)
		}
		if addr.Port() == 0 {
			addr = ln.addr // the rest of the group joins the port just bound
		}
		ln.srv, ln.loop = s, l
		ln.acceptFn = ln.acceptAll
		lns = append(lns, ln)
	}
	s.addr = addr
	s.label = addr.String()
	s.listeners = lns
	return nil
}

// Unbind closes the sockets of a server bound and never started.
func (s *Server) Unbind() {
	for _, ln := range s.listeners {
		ln.closeUnregistered()
	}
}

// Start registers each socket with its loop, through the loop's queue:
// the server accepts from then on. A loop whose queue is full is asked
// again until it takes the task.
func (s *Server) Start() {
	for _, ln := range s.listeners {
		ln.postRegister()
	}
}

// Done records the end of a connection handed to the Dispatcher, counting
// it in c, its Envelope's counters, and frees its slot under
// max_connections. On the connection's loop.
func (s *Server) Done(c *Counters, r Reason) {
	c.ended[r].Add(1)
	s.release()
}

// Stats returns the counts of the current route's tally, with Active the
// connections open on the server under any route. Safe from any goroutine.
func (s *Server) Stats() Stats {
	st := s.Route().Tally.Stats()
	st.Active = s.active.Load()
	return st
}

// Close stops the server taking new connections, on every loop, at once:
// listeners stay registered (their loops close them at shutdown) but accept
// nothing more. Safe from any goroutine.
func (s *Server) Close() { s.closing.Store(true) }

// Shut stops the server accepting and closes its listening sockets, on
// every loop, and returns once they are closed, or after shutWait if a
// loop does not get to it: connections that arrive from now on are
// refused, those accepted run on. Safe from any goroutine.
func (s *Server) Shut() {
	s.closing.Store(true)
	var wg sync.WaitGroup
	for _, ln := range s.listeners {
		wg.Add(1)
		ln.postShut(wg.Done)
	}
	closed := make(chan struct{})
	go func() {
		wg.Wait()
		close(closed)
	}()
	t := time.NewTimer(shutWait)
	defer t.Stop()
	select {
	case <-closed:
	case <-t.C:
	}
}

// shutRetryDelay is how long Shut and Start wait before asking a loop
// whose queue was full again; shutWait bounds how long it waits for the loops.
const (
	shutRetryDelay = 10 * time.Millisecond
	shutWait       = 5 * time.Second
)

// postRegister has the listener's loop register it. A full queue is asked
// again until it takes the task; a loop that has stopped never will, and
// the socket is closed here.
func (ln *listener) postRegister() {
	switch err := ln.loop.Post(ln.register); {
	case errors.Is(err, netpoll.ErrQueueFull):
		time.AfterFunc(shutRetryDelay, ln.postRegister)
	case err != nil:
		ln.closeUnregistered()
	}
}

// postShut has the listener's loop close it, then calls done. A full
// queue is asked again until it takes the task; a loop that has stopped
// has closed its listener already.
func (ln *listener) postShut(done func()) {
	err := ln.loop.Post(func() {
		ln.OnShutdown()
		done()
	})
	switch {
	case errors.Is(err, netpoll.ErrQueueFull):
		time.AfterFunc(shutRetryDelay, func() { ln.postShut(done) })
	case err != nil:
		done()
	}
}

// Open returns the number of connections accepted and not yet ended.
// Safe from any goroutine.
func (s *Server) Open() int64 { return s.active.Load() }

// reserve takes a slot under limit (max_connections) before an accept.
func (s *Server) reserve(limit int) bool {
	if s.closing.Load() {
		return false
	}
	if s.active.Add(1) > int64(limit) {
		s.active.Add(-1)
		return false
	}
	return true
}

// release frees a slot and wakes listeners that paused at the limit.
func (s *Server) release() {
	s.active.Add(-1)
	if s.npaused.Load() > 0 {
		s.resume()
	}
}

func (s *Server) resume() {
	if s.closing.Load() {
		return
	}
	for _, ln := range s.listeners {
		if ln.paused.CompareAndSwap(true, false) {
			s.npaused.Add(-1)
			if ln.loop.Post(ln.acceptFn) != nil {
				// Queue full (or loop stopped): stay paused, so the
				// next release tries again.
				if ln.paused.CompareAndSwap(false, true) {
					s.npaused.Add(1)
				}
			}
		}
	}
}

// ResourceExhausted records, in c, that a connection accepted on loop could
// not get a descriptor (or memory) to reach its endpoint, and rests the
// server's listener on that loop for a moment: new clients wait in the
// kernel's backlog instead of being accepted only to fail. Loop only.
func (s *Server) ResourceExhausted(l *netpoll.Loop, c *Counters) {
	c.resourceWaits.Add(1)
	for _, ln := range s.listeners {
		if ln.loop == l {
			ln.rest()
		}
	}
}

// ConnectFailure is the cause of a failed connect attempt.
type ConnectFailure uint8

const (
	ConnectRefused ConnectFailure = iota // the endpoint refused (RST)
	ConnectTimeout                       // no answer within the attempt's deadline
	ConnectOther                         // unreachable, reset, or any other error
	NumConnectFailures
)

var connectFailureNames = [NumConnectFailures]string{"refused", "timeout", "other"}

func (f ConnectFailure) String() string {
	if f < NumConnectFailures {
		return connectFailureNames[f]
	}
	return "unknown"
}
