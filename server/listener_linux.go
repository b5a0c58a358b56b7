package server

import (
	"errors"
	"net/netip"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/netpoll"
)

const (
	// acceptRetryDelay is how long a listener rests after accept4 failed
	// for want of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM).
	acceptRetryDelay = 100 * time.Millisecond
	// acceptBatch bounds the accepts of one wakeup, so a connection flood
	// cannot starve the loop's established streams.
	acceptBatch = 64
	// backlog is passed to listen(2); the kernel caps it at somaxconn.
	backlog = 65535
)

// listener is one SO_REUSEPORT socket of a server, owned by one loop.
type listener struct {
	srv      *Server
	loop     *netpoll.Loop
	fd       int
	addr     netip.AddrPort
	wildcard bool
	// closed: the socket is closed or being closed. Its loop sets it, but
	// for a listener its loop never took (closeUnregistered), whose
	// closer may race with that loop's shutdown: a CAS closes it once.
	closed   atomic.Bool
	paused   atomic.Bool // stopped at max_connections; shared with releasers
	acceptFn func()      // ln.acceptAll, bound once so posting it never allocates
	retry    netpoll.Timer
	rsa      unix.RawSockaddrAny
	env      Envelope
}

func listen(addr netip.AddrPort) (*listener, error) {
	family, sa := sockaddrOf(addr)
	ip := addr.Addr().Unmap()
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	fail := func(call string, err error) (*listener, error) {
		unix.Close(fd)
		return nil, os.NewSyscallError(call, err)
	}
	for _, opt := range [...]struct{ level, name int }{
		{unix.SOL_SOCKET, unix.SO_REUSEADDR},
		{unix.SOL_SOCKET, unix.SO_REUSEPORT},
		// Accepted sockets inherit TCP_NODELAY from the listener, which
		// saves a setsockopt per connection.
		{unix.IPPROTO_TCP, unix.TCP_NODELAY},
	} {
		if err := unix.SetsockoptInt(fd, opt.level, opt.name, 1); err != nil {
			return fail("setsockopt", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fail("listen", err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	ln := &listener{fd: fd, addr: addrPortOf(bound), wildcard: ip.IsUnspecified()}
	return ln, nil
}

// inherit makes a listener of fd, a listening TCP socket handed to us
// (by systemd's socket activation): n is the number of the loops that will
// share it, i this listener's index among them. The first uses fd itself
// and the others duplicates of it, so that each is closed once, by its own
// loop. Every loop's epoll watches the one socket: an arriving connection
// wakes them all, and one of them accepts it.
func inherit(fd, i int) (*listener, error) {
	if i > 0 {
		dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, os.NewSyscallError("fcntl", err)
		}
		fd = dup
	} else {
		// O_NONBLOCK is shared by the duplicates: one open file.
		if err := unix.SetNonblock(fd, true); err != nil {
			return nil, os.NewSyscallError("fcntl", err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return nil, os.NewSyscallError("setsockopt", err)
		}
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		if i > 0 {
			unix.Close(fd)
		}
		return nil, os.NewSyscallError("getsockname", err)
	}
	addr := addrPortOf(bound)
	return &listener{fd: fd, addr: addr, wildcard: addr.Addr().Unmap().IsUnspecified()}, nil
}

func sockaddrOf(addr netip.AddrPort) (int, unix.Sockaddr) {
	ip := addr.Addr().Unmap()
	if ip.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(addr.Port()), Addr: ip.As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(addr.Port()), Addr: ip.As16()}
}

// ErrAddrInUse is returned by Listen when another socket listens on the
// address (or on a wildcard address of its port).
var ErrAddrInUse = errors.New("address in use by another listening socket")

// checkFree fails with ErrAddrInUse when a socket listens on addr. Our
// listeners share their port through SO_REUSEPORT, and so would any socket
// of the same user that sets it too: a second Switchyard on the same
// address would silently take part of the first one's connections. A probe
// bound without SO_REUSEPORT (with SO_REUSEADDR, so that connections in
// TIME_WAIT do not count) fails if anything listens there, as nginx's bind
// does without reuseport.
func checkFree(addr netip.AddrPort) error {
	family, sa := sockaddrOf(addr)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return os.NewSyscallError("setsockopt", err)
	}
	switch err := unix.Bind(fd, sa); {
	case errors.Is(err, unix.EADDRINUSE):
		return ErrAddrInUse
	case err != nil:
		return os.NewSyscallError("bind", err)
	}
	return nil
}

// register adds the listener to its loop and accepts what is already
// waiting. Loop only.
func (ln *listener) register() {
	if ln.closed.Load() {
		return // shut before its loop got to it
	}
	if err := ln.loop.Add(ln.fd, netpoll.EventIn, ln); err != nil {
		// Cannot happen for a fresh socket on a live epoll; close it so
		// the port is not silently half-served.
		ln.closeUnregistered()
		return
	}
	ln.acceptAll()
}

func (ln *listener) closeUnregistered() {
	if ln.closed.CompareAndSwap(false, true) {
		unix.Close(ln.fd)
	}
}

// OnEvent implements netpoll.Handler.
func (ln *listener) OnEvent(uint32) { ln.acceptAll() }

// OnTimer implements netpoll.TimerHandler: the rest after an accept error
// or a full batch is over.
func (ln *listener) OnTimer(int64) { ln.acceptAll() }

// OnShutdown implements netpoll.Handler.
func (ln *listener) OnShutdown() {
	if ln.closed.CompareAndSwap(false, true) {
		ln.loop.Cancel(&ln.retry)
		_ = ln.loop.Close(ln.fd)
	}
}

// acceptAll accepts until EAGAIN, the server's limit, a resource error or
// the end of a batch. Loop only.
func (ln *listener) acceptAll() {
	s := ln.srv
	if ln.closed.Load() || ln.paused.Load() || ln.retry.Scheduled() {
		return
	}
	rt := s.Route()
	c := rt.Tally.Loop(ln.loop)
	for i := 0; i < acceptBatch; i++ {
		if !s.reserve(rt.MaxConnections) {
			if !s.closing.Load() {
				ln.pause(rt, c)
			}
			return
		}
		fd, errno := ln.accept()
		if errno != 0 {
			s.release()
			switch errno {
			case unix.EAGAIN:
				return
			case unix.EINTR, unix.ECONNABORTED, unix.EPROTO, unix.EPERM,
				unix.ENETDOWN, unix.ENOPROTOOPT, unix.EHOSTDOWN, unix.ENONET,
				unix.EHOSTUNREACH, unix.EOPNOTSUPP, unix.ENETUNREACH:
				continue // this connection is gone; the next may not be
			default: // EMFILE, ENFILE, ENOBUFS, ENOMEM, ...
				c.acceptErrors.Add(1)
				ln.rest()
				return
			}
		}
		c.accepted.Add(1)
		ln.fill(rt, c)
		rt.Dispatcher.Dispatch(ln.loop, fd, &ln.env)
		if ln.retry.Scheduled() {
			return // the connection found the host short of resources: rest
		}
	}
	// More may be waiting: come back after the loop's other events.
	ln.loop.Schedule(&ln.retry, ln.loop.Now(), ln)
}

// rest stops accepting for acceptRetryDelay. Loop only.
func (ln *listener) rest() {
	if !ln.closed.Load() {
		ln.loop.Schedule(&ln.retry, ln.loop.Now()+int64(acceptRetryDelay), ln)
	}
}

// pause stops accepting at max_connections until a connection ends.
func (ln *listener) pause(rt *Route, c *Counters) {
	s := ln.srv
	if !ln.paused.CompareAndSwap(false, true) {
		return
	}
	s.npaused.Add(1)
	c.pausedAtLimit.Add(1)
	// A connection may have ended between reserve and pause, or a reload
	// raised the limit; their resume saw no paused listener, so look
	// again ourselves.
	if s.active.Load() < int64(s.Route().MaxConnections) {
		s.resume()
	}
}

// accept is accept4 without allocation: the peer address lands in ln.rsa.
func (ln *listener) accept() (int, unix.Errno) {
	n := uint32(unix.SizeofSockaddrAny)
	fd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(ln.fd),
		uintptr(unsafe.Pointer(&ln.rsa)), uintptr(unsafe.Pointer(&n)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	return int(fd), e
}

func (ln *listener) fill(rt *Route, c *Counters) {
	now := ln.loop.Now()
	ln.env = Envelope{
		Source:          rawAddrPort(&ln.rsa),
		Server:          ln.srv,
		Counters:        c,
		Dst:             rt.Dst,
		Accepted:        now,
		ConnectDeadline: now + int64(rt.ConnectTimeout),
		IdleTimeout:     rt.IdleTimeout,
		Handshake:       rt.Handshake,
		Offload:         rt.Offload,
		OffloadAfter:    rt.OffloadAfter,
	}
	if rt.Lifetime > 0 {
		ln.env.LifetimeDeadline = now + int64(rt.Lifetime)
	}
}

// SockName returns the local address of the socket fd, without allocating.
func SockName(fd int) (netip.AddrPort, error) {
	var rsa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	if _, _, e := unix.RawSyscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&n))); e != 0 {
		return netip.AddrPort{}, os.NewSyscallError("getsockname", e)
	}
	return rawAddrPort(&rsa), nil
}

func rawAddrPort(rsa *unix.RawSockaddrAny) netip.AddrPort {
	switch rsa.Addr.Family {
	case unix.AF_INET:
		p := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(p.Addr), ntohs(p.Port))
	case unix.AF_INET6:
		p := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(p.Addr).Unmap(), ntohs(p.Port))
	}
	return netip.AddrPort{}
}

// ntohs reads a port stored in network byte order.
func ntohs(v uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&v))
	return uint16(b[0])<<8 | uint16(b[1])
}

func addrPortOf(sa unix.Sockaddr) netip.AddrPort {
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	}
	return netip.AddrPort{}
}
