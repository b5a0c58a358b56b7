package router

import (
	"errors"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/binder"
	"github.com/switchyard-proxy/switchyard/duplex"
	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/netpoll"
	"github.com/switchyard-proxy/switchyard/server"
)

type phase uint8

const (
	phaseHandshake   phase = iota // reading a PROXY header or ClientHello, not yet routed
	phaseConnecting               // client accepted, upstream not established
	phaseWaiting                  // waiting for the name's first answer
	phaseEstablished              // bytes flow through the duplex
	phaseClosed                   // both fds closed, Done reported
)

// resourceRetryDelay is how long a stream waits to dial again after the
// host ran out of descriptors or memory.
const resourceRetryDelay = 100 * time.Millisecond

const socketEvents = duplex.Events

// stream is one proxied connection. It lives on the loop that accepted the
// client and is touched only there.
//
// Invariants: cfd is open until phaseClosed; ufd is open exactly while an
// attempt is in flight or the stream is established (-1 otherwise); ep is
// the endpoint of ufd and holds one unit of its load while ufd is open;
// name holds one binding of the destination from start to finish. While
// phaseWaiting the stream is w.waiting[bal][waitIndex], holds one of bal's
// waiter slots, and its timer is set to the connect deadline.
type stream struct {
	w        *worker
	r        *Router
	env      server.Envelope
	name     *binder.Name // bound from start until finish; bal is its balancer
	cfd, ufd int
	client   side
	upstream side

	ep       *endpoint.Endpoint
	tried    []*endpoint.Endpoint
	triedBuf [4]*endpoint.Endpoint

	sni      string         // the ClientHello's server name, when routed by it
	proxyDst netip.AddrPort // the destination an accepted PROXY header gave

	// Small fields together, so that the struct stays in its size class.
	phase        phase
	proxyRead    bool   // the PROXY header expected, if any, is consumed
	clientEvents uint32 // client readiness seen while connecting
	waitIndex    int32  // in the worker's waiting[bal] while phaseWaiting
	batches      uint16 // batches the duplex moved, counted up to env.OffloadAfter
	lastActive   int64
	timer        netpoll.Timer
	dup          duplex.Duplex
	off          *duplex.Offload // non-nil: the kernel moves the bytes, not dup
	declined     [2]uint64       // bytes up, down moved by an offload the kernel then declined
}

// side is the netpoll.Handler of one of a stream's sockets.
type side struct {
	s     *stream
	which duplex.Side
}

func (sd *side) OnEvent(ev uint32) { sd.s.onEvent(sd.which, ev) }
func (sd *side) OnShutdown()       { sd.s.finish(server.ReasonShutdown) }

func (w *worker) newStream() *stream {
	if n := len(w.free); n > 0 {
		s := w.free[n-1]
		w.free[n-1] = nil
		w.free = w.free[:n-1]
		return s
	}
	s := &stream{}
	s.client = side{s: s, which: duplex.Client}
	s.upstream = side{s: s, which: duplex.Upstream}
	return s
}

func (w *worker) recycle(s *stream) {
	if len(w.free) < freeStreams {
		w.free = append(w.free, s)
	}
}

// start takes over an accepted client socket.
func (s *stream) start(w *worker, r *Router, fd int, env *server.Envelope) {
	s.w, s.r, s.env = w, r, *env
	s.cfd, s.ufd = fd, -1
	s.phase = phaseConnecting
	s.ep, s.name = nil, nil
	s.tried = s.triedBuf[:0]
	s.clientEvents = 0
	if err := w.loop.Add(fd, socketEvents, &s.client); err != nil {
		// Cannot register: the socket is useless to us. finish closes an
		// fd the loop does not hold as well as one it does.
		s.finish(server.ReasonReset)
		return
	}
	if env.Handshake != nil {
		s.startHandshake()
		return
	}
	s.route()
}

// route binds the stream's destination and connects, or parks the stream
// until the name's first answer.
func (s *stream) route() {
	w := s.w
	name, err := s.r.names.binder.Bind(s.env.Dst, w.loop.Now())
	if err != nil {
		s.finish(server.ReasonNamesFull)
		return
	}
	s.name = name
	if s.name.Balancer().State() == balancer.Pending {
		s.park()
		return
	}
	if len(w.waiting) > 0 {
		// Waiters for this name may be left behind if the loop's queue
		// refused the answer's wake-up: this connection wakes them.
		w.wake(s.name.Balancer())
	}
	s.connect()
}

// park makes the stream wait, on its loop, for the first answer of its
// name: until the answer, or its connect deadline, whichever comes first.
// Past max_waiters it fails at once.
func (s *stream) park() {
	bal := s.name.Balancer()
	if !bal.AddWaiter() {
		if s.r.client.MaxWaiters == 0 {
			s.finish(server.ReasonNoEndpoints)
		} else {
			s.finish(server.ReasonWaitersFull)
		}
		return
	}
	w := s.w
	list, ok := w.waiting[bal]
	if !ok && !bal.OnAnswer(w, func() { w.postWake(bal) }) {
		bal.DoneWaiting() // answered since we looked
		s.connect()
		return
	}
	s.phase = phaseWaiting
	s.waitIndex = int32(len(list))
	w.waiting[bal] = append(list, s)
	w.loop.Schedule(&s.timer, s.env.ConnectDeadline, s)
}

// unpark takes a waiting stream out of its worker's waiters.
func (s *stream) unpark() {
	bal, w := s.name.Balancer(), s.w
	list := w.waiting[bal]
	last := len(list) - 1
	list[s.waitIndex] = list[last]
	list[s.waitIndex].waitIndex = s.waitIndex
	list[last] = nil
	if last == 0 {
		delete(w.waiting, bal)
	} else {
		w.waiting[bal] = list[:last]
	}
	bal.DoneWaiting()
	s.phase = phaseConnecting
}

// connect starts the next connect attempt, or ends the stream when no
// endpoint is left to try or the attempts are used up.
func (s *stream) connect() {
	l := s.w.loop
	now := l.Now()
	for {
		if now >= s.env.ConnectDeadline {
			s.finish(server.ReasonConnectTimeout)
			return
		}
		if len(s.tried) >= s.r.client.ConnectAttempts {
			s.finish(server.ReasonConnectFailed) // attempts ran out first: connect_timeout is the deadline only
			return
		}
		ep := s.name.Balancer().PickKey(s.hashKey(), s.w.rng, now, s.tried)
		if ep == nil {
			if len(s.tried) == 0 {
				s.finish(server.ReasonNoEndpoints)
			} else {
				s.finish(server.ReasonConnectFailed)
			}
			return
		}
		s.tried = append(s.tried, ep)
		ep.Acquire()
		fd, err := endpoint.Dial(ep)
		if err == nil {
			err = l.Add(fd, socketEvents, &s.upstream)
			if err != nil {
				unix.Close(fd)
			}
		}
		if err == nil || !endpoint.IsResourceError(err) {
			s.env.Counters.ConnectAttempted()
		}
		if err != nil {
			ep.Release()
			if endpoint.IsResourceError(err) {
				// Not the endpoint's fault: try again shortly, while
				// the listener rests so no more clients pile in.
				s.tried = s.tried[:len(s.tried)-1]
				s.env.Server.ResourceExhausted(l, s.env.Counters)
				l.Schedule(&s.timer, min(now+int64(resourceRetryDelay), s.env.ConnectDeadline), s)
				return
			}
			s.env.Counters.ConnectFailed(server.ConnectOther)
			s.failed(ep, now)
			continue
		}
		s.ep, s.ufd = ep, fd
		l.Schedule(&s.timer, min(now+int64(s.r.client.ConnectTimeout), s.env.ConnectDeadline), s)
		return
	}
}

// failed charges a failed connect to ep, and reports ep when that sets it
// aside.
func (s *stream) failed(ep *endpoint.Endpoint, now int64) {
	if ep.Failed(now, s.r.client.FailureAccrual) {
		s.r.gen.p.events.setAside(s.r, s.env.Dst, ep)
	}
}

// attemptFailed closes the upstream socket of a failed attempt, counts
// the failure by cause, charges it to the endpoint and moves on to the
// next attempt.
func (s *stream) attemptFailed(cause server.ConnectFailure) {
	s.env.Counters.ConnectFailed(cause)
	s.closeUpstream()
	s.failed(s.ep, s.w.loop.Now())
	s.ep.Release()
	s.ep = nil
	s.connect()
}

// connectFailure classifies the pending error of a socket whose connect
// failed (SO_ERROR).
func connectFailure(fd int) server.ConnectFailure {
	err := endpoint.ConnectError(fd)
	switch {
	case errors.Is(err, unix.ECONNREFUSED):
		return server.ConnectRefused
	case errors.Is(err, unix.ETIMEDOUT):
		return server.ConnectTimeout
	}
	return server.ConnectOther
}

func (s *stream) onEvent(which duplex.Side, ev uint32) {
	switch s.phase {
	case phaseHandshake:
		s.clientEvents |= ev
		s.handshake()
	case phaseWaiting, phaseConnecting:
		if which == duplex.Client {
			if ev&(netpoll.EventErr|netpoll.EventHup) != 0 {
				s.finish(server.ReasonReset) // the client gave up
				return
			}
			s.clientEvents |= ev
			return
		}
		if ev&(netpoll.EventErr|netpoll.EventHup) != 0 {
			s.attemptFailed(connectFailure(s.ufd))
			return
		}
		if ev&netpoll.EventOut != 0 {
			s.established(ev)
		}
	case phaseEstablished:
		if s.off != nil {
			s.off.Ready(which, ev)
			s.pumpOffload()
			return
		}
		s.dup.Ready(which, ev)
		s.pump()
	}
}

// established starts the duplex once the upstream connect completed.
func (s *stream) established(ev uint32) {
	l := s.w.loop
	if s.r.sendProxy != 0 && !s.sendProxy() {
		s.attemptFailed(server.ConnectOther)
		return
	}
	s.ep.Succeeded()
	s.env.Counters.ObserveConnect(time.Duration(l.Now() - s.env.Accepted))
	s.phase = phaseEstablished
	s.batches = 0
	s.dup.Init(s.w.pool, s.cfd, s.ufd)
	s.lastActive = l.Now()
	if s.env.Offload && s.env.OffloadAfter == 0 {
		partial := s.env.Handshake != nil && s.env.Handshake.Proxy != 0 // a PROXY header was read
		if s.offload(partial, s.clientEvents, ev) {
			return
		}
	}
	s.dup.Ready(duplex.Client, s.clientEvents)
	s.dup.Ready(duplex.Upstream, ev)
	s.armDeadline()
	s.pump()
}

func (s *stream) pump() {
	switch s.dup.Pump() {
	case duplex.Running:
		if s.dup.Moved() {
			s.lastActive = s.w.loop.Now()
			if s.env.Offload {
				s.promote()
			}
		}
	case duplex.Finished:
		s.finish(server.ReasonEOF)
	case duplex.Failed:
		s.finish(server.ReasonReset)
	}
}

// armDeadline schedules the timer for the nearer of the lifetime and idle
// deadlines, or cancels it when neither applies.
func (s *stream) armDeadline() {
	next := s.env.LifetimeDeadline
	if s.env.IdleTimeout > 0 {
		if idle := s.lastActive + int64(s.env.IdleTimeout); next == 0 || idle < next {
			next = idle
		}
	}
	if s.off != nil && s.off.Draining() {
		if poll := s.w.loop.Now() + s.off.PollDelay(); next == 0 || poll < next {
			next = poll
		}
	}
	if next == 0 {
		s.w.loop.Cancel(&s.timer)
		return
	}
	s.w.loop.Schedule(&s.timer, next, s)
}

// OnTimer implements netpoll.TimerHandler. Activity only records the time,
// so an idle deadline that fires early is pushed out here rather than on
// every byte batch.
func (s *stream) OnTimer(now int64) {
	switch s.phase {
	case phaseHandshake:
		s.finish(server.ReasonHandshakeTimeout)
	case phaseWaiting:
		s.finish(server.ReasonConnectTimeout)
	case phaseConnecting:
		if now >= s.env.ConnectDeadline {
			if s.ep != nil {
				s.env.Counters.ConnectFailed(server.ConnectTimeout)
				s.failed(s.ep, now)
			}
			s.finish(server.ReasonConnectTimeout)
			return
		}
		if s.ep == nil { // waiting for descriptors, not for an endpoint
			s.connect()
			return
		}
		s.attemptFailed(server.ConnectTimeout)
	case phaseEstablished:
		if d := s.env.LifetimeDeadline; d != 0 && now >= d {
			s.finish(server.ReasonLifetime)
			return
		}
		if t := int64(s.env.IdleTimeout); t > 0 && now >= s.lastActive+t {
			if s.off != nil {
				// The kernel moved the bytes: its counters say when.
				s.lastActive = max(s.lastActive, s.off.LastActive())
			}
			if now >= s.lastActive+t {
				s.finish(server.ReasonIdleTimeout)
				return
			}
		}
		if s.off != nil && s.off.Draining() {
			s.pumpOffload()
			return
		}
		s.armDeadline()
	}
}

func (s *stream) closeUpstream() {
	if s.ufd >= 0 {
		_ = s.w.loop.CloseUnshared(s.ufd) // a socket of ours, never shared
		s.ufd = -1
	}
}

// finish ends the stream with reason: it closes both sockets (resetting the
// one that did not fail when the other did), gives back what the stream
// holds and reports the reason to the server. Idempotent.
func (s *stream) finish(reason server.Reason) {
	if s.phase == phaseClosed {
		return
	}
	l := s.w.loop
	l.Cancel(&s.timer)
	if s.phase == phaseWaiting {
		s.unpark()
	}
	if reason == server.ReasonReset && s.phase == phaseConnecting && s.ufd >= 0 {
		resetOnClose(s.ufd) // the client reset while we were connecting
	}
	var up, down uint64
	switch {
	case s.phase == phaseEstablished && s.off != nil:
		up, down = s.finishOffload(reason)
	case s.phase == phaseEstablished:
		s.resetAtEnd(reason == server.ReasonReset, s.dup.FailedSide(), s.dup.Holding())
		s.dup.Release()
		up, down = s.dup.Bytes()
	}
	if up, down = up+s.declined[0], down+s.declined[1]; up|down != 0 {
		s.env.Counters.AddBytes(up, down)
	}
	if a := s.r.gen.access; a != nil {
		s.recordAccess(a, reason, l.Now(), up, down)
	}
	s.phase = phaseClosed
	if s.ep != nil {
		s.ep.Release()
		s.ep = nil
	}
	s.closeUpstream()
	_ = l.CloseUnshared(s.cfd) // accepted here, never shared
	s.cfd = -1
	if s.name != nil {
		s.name.Release(l.Now())
		s.name = nil
	}
	srv, counters := s.env.Server, s.env.Counters
	counters.ObserveDuration(time.Duration(l.Now() - s.env.Accepted))
	s.env = server.Envelope{}
	s.sni, s.proxyDst, s.proxyRead = "", netip.AddrPort{}, false
	clear(s.triedBuf[:])
	s.declined = [2]uint64{}
	s.tried = nil
	srv.Done(counters, reason)
	s.r.gen.streamEnded(l)
	s.r = nil
	s.w.recycle(s)
}

// recordAccess hands the access log the line of a stream that ends now.
func (s *stream) recordAccess(a *accessLog, reason server.Reason, now int64, up, down uint64) {
	r := accessRecord{
		router:   s.r.label,
		listen:   s.env.Server.Label(),
		dst:      s.env.Dst,
		source:   s.env.Source,
		duration: time.Duration(now - s.env.Accepted),
		reason:   reason,
		up:       up,
		down:     down,
	}
	if s.ep != nil {
		r.endpoint = s.ep.Addr
	}
	a.record(r)
}

// resetAtEnd sets up the resets an established stream's close must send:
// when a socket failed (reset), the other one is reset too; when bytes
// are still on their way (holding) as a deadline or shutdown cuts the
// stream, both are, since a FIN would pass the truncated stream off as
// complete.
func (s *stream) resetAtEnd(reset bool, failed duplex.Side, holding bool) {
	switch {
	case reset:
		peer := s.cfd
		if failed == duplex.Client {
			peer = s.ufd
		}
		resetOnClose(peer)
	case holding:
		resetOnClose(s.cfd)
		resetOnClose(s.ufd)
	}
}

// resetOnClose makes the coming close of fd send a reset (SO_LINGER 0).
func resetOnClose(fd int) {
	_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
}

// offload hands the established stream's bytes to the kernel, with the
// bytes its duplex moved so far, and registers its sockets anew for
// hang-ups and errors only, so the loop is not woken per batch. clientEv
// and upstreamEv are events seen and not yet acted on; partial: a PROXY
// header was read from the client. It reports false, with nothing changed,
// when the kernel cannot take the stream: then it is spliced (the reason is
// counted in duplex.OffloadFallbacks and logged the first time).
func (s *stream) offload(partial bool, clientEv, upstreamEv uint32) bool {
	off, broken := s.startOffload(partial)
	if broken {
		s.abandon()
		return true
	}
	if off == nil {
		return false
	}
	off.Carry(s.dup.Bytes()) // the duplex holds no pipe: it was Quiet, or never ran
	s.off = off
	// Should Modify fail, readiness wakes the loop for nothing, and the
	// offload works on.
	_ = s.w.loop.Modify(s.cfd, duplex.OffloadEvents)
	_ = s.w.loop.Modify(s.ufd, duplex.OffloadEvents)
	const hangups = netpoll.EventErr | netpoll.EventHup | netpoll.EventRdHup
	off.Ready(duplex.Client, clientEv&hangups)
	off.Ready(duplex.Upstream, upstreamEv&hangups)
	s.pumpOffload()
	return true
}

// startOffload asks the kernel to take the stream's sockets. When it
// cannot (off nil), the stream is not offered again, the reason is logged
// the first time and the bytes the attempt moved are counted; broken: the
// kernel had begun to move bytes when it refused, and the stream must be
// abandoned.
func (s *stream) startOffload(partial bool) (off *duplex.Offload, broken bool) {
	off, err := duplex.StartOffload(s.w.pool, s.cfd, s.ufd, partial)
	if err == nil {
		return off, false
	}
	s.env.Offload = false
	var oe *duplex.OffloadError
	if !errors.As(err, &oe) {
		return nil, false
	}
	if oe.First {
		s.r.gen.p.log.Warn("offload: splicing instead", "server", s.env.Server.Label(), "reason", oe.Reason, "err", oe.Err)
	}
	s.declined = [2]uint64{oe.Up, oe.Down}
	return nil, oe.Broken
}

// abandon ends an established stream whose bytes the kernel began to move
// before it refused the stream: where they are is not known, so both ends
// are reset rather than shut, which would pass the stream off as complete.
func (s *stream) abandon() {
	resetOnClose(s.cfd)
	resetOnClose(s.ufd)
	s.finish(server.ReasonReset)
}

// promote counts a batch the duplex moved and, from the OffloadAfter-th
// on, hands the stream to the kernel at the first moment the duplex is
// quiet (holding no byte, both receive queues seen empty), so that no
// segment was read in part. A stream the kernel refuses stays spliced, and
// is not offered again.
func (s *stream) promote() {
	if s.batches < s.env.OffloadAfter {
		s.batches++
	}
	if s.batches < s.env.OffloadAfter || !s.dup.Quiet() {
		return
	}
	s.offload(false, 0, 0)
}

func (s *stream) pumpOffload() {
	switch s.off.Pump() {
	case duplex.Running:
		s.armDeadline()
	case duplex.Finished:
		s.finish(server.ReasonEOF)
	case duplex.Failed:
		s.finish(server.ReasonReset)
	}
}

// finishOffload takes an offloaded stream's sockets back from the kernel
// before they are closed, resetting as finish does for a spliced one, and
// returns its bytes. Holding is asked after Stop: until the sockets are out
// of the maps the program may forward one more batch, which a full send
// queue holds and the removal drops.
func (s *stream) finishOffload(reason server.Reason) (up, down uint64) {
	up, down = s.off.Stop()
	reset := reason == server.ReasonReset
	s.resetAtEnd(reset, s.off.FailedSide(), !reset && reason != server.ReasonEOF && s.off.Holding())
	s.off = nil
	return up, down
}
