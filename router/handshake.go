package router

import (
	"errors"
	"net/netip"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/netpoll"
	"github.com/switchyard-proxy/switchyard/server"
)

// A server with a PROXY protocol header to accept, or a dst with {sni},
// reads the start of each connection before routing it: the header is
// consumed (its source becomes the connection's), the ClientHello only
// peeked at (the endpoint receives it untouched). The stream waits in
// phaseHandshake, on its loop, with one timer (handshake_timeout) and no
// goroutine; each time the client sends more, what it sent so far is
// peeked again into the loop's buffer and parsed from its start.

// peekSize is the loop's buffer for handshakes: a PROXY header and a
// ClientHello behind it.
const peekSize = server.ProxyHeaderMax + server.MaxClientHello

// startHandshake begins the handshake of a stream just registered.
func (s *stream) startHandshake() {
	hs := s.env.Handshake
	if hs.Proxy != 0 && !trusted(hs.From, s.env.Source.Addr()) {
		s.finish(server.ReasonProxyRefused)
		return
	}
	s.phase = phaseHandshake
	s.proxyRead = hs.Proxy == 0
	s.w.loop.Schedule(&s.timer, s.env.Accepted+int64(hs.Timeout), s)
	s.handshake() // the first bytes may have come with the connection
}

// trusted reports whether a may send a PROXY header.
func trusted(from []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range from {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// handshake reads what the client has sent so far and, once it holds all
// that routing needs, routes the stream. Loop only.
func (s *stream) handshake() {
	hs := s.env.Handshake
	buf := s.w.peekBuf()
	n, errno := peek(s.cfd, buf)
	switch {
	case errno == unix.EAGAIN:
		return // nothing new: wait for the next event
	case errno != 0:
		s.finish(server.ReasonReset)
		return
	case n == 0:
		s.finish(server.ReasonEOF) // the client closed before it said anything routable
		return
	}
	b := buf[:n]
	if !s.proxyRead {
		h, size, err := server.ParseProxy(b, hs.Proxy)
		switch {
		case errors.Is(err, server.ErrProxyIncomplete):
			return
		case err != nil:
			s.finish(server.ReasonBadHandshake)
			return
		}
		// Consume the header, and nothing after it.
		if got, errno := consume(s.cfd, buf[:size]); errno != 0 || got != size {
			s.finish(server.ReasonReset)
			return
		}
		s.proxyRead = true
		if !h.Local {
			s.env.Source, s.proxyDst = h.Src, h.Dst
		}
		b = buf[size:n]
		if !hs.SNI {
			s.handshakeDone()
			return
		}
		if len(b) == 0 {
			return // the ClientHello is yet to come
		}
	}
	name, err := server.ServerName(b)
	switch {
	case errors.Is(err, server.ErrIncomplete):
		return
	case err == nil:
		s.sni = name
		s.env.Dst = strings.Replace(s.env.Dst, sniPlaceholder, name, 1)
	case hs.Default != "":
		s.env.Dst = hs.Default
	case errors.Is(err, server.ErrNoSNI):
		s.finish(server.ReasonNoSNI)
		return
	default:
		s.finish(server.ReasonBadHandshake)
		return
	}
	s.handshakeDone()
}

// handshakeDone routes a stream whose handshake is over. Its connect
// deadline starts now. The events its socket had are the duplex's to
// know (edge-triggered, they come once): readable, since the bytes peeked
// at wait in the socket, and writable, as a socket nothing was written to
// yet is.
func (s *stream) handshakeDone() {
	l := s.w.loop
	now := l.Now()
	l.Cancel(&s.timer)
	s.env.ConnectDeadline = now + (s.env.ConnectDeadline - s.env.Accepted)
	s.phase = phaseConnecting
	s.clientEvents |= netpoll.EventIn | netpoll.EventOut
	s.route()
}

// peekBuf is the loop's handshake buffer, made at its first handshake.
func (w *worker) peekBuf() []byte {
	if w.peek == nil {
		w.peek = make([]byte, peekSize)
	}
	return w.peek
}

// peek copies what the socket holds, up to len(b), without taking it.
func peek(fd int, b []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_PEEK|unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}

// consume takes len(b) bytes the socket holds (peeked before) into b.
func consume(fd int, b []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		unix.MSG_DONTWAIT, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), 0
}
