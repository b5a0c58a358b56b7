package endpoint

import (
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"
)

// Sockaddr returns the socket address built once by New: a
// *unix.SockaddrInet4 for IPv4 and IPv4-mapped IPv6 addresses, a
// *unix.SockaddrInet6 otherwise. It is shared by every caller and must not be
// modified.
//
// Do not pass it to unix.Connect (or Bind, Sendto, ...) from more than one
// goroutine: those functions write the kernel's form of the address into the
// struct they are given, so concurrent calls race. Event loops use
// SockaddrInto instead.
func (e *Endpoint) Sockaddr() unix.Sockaddr { return e.sa }

// SockaddrBuf is scratch space for one event loop's socket addresses. The
// zero value is ready to use; it must not be copied or shared between
// goroutines.
type SockaddrBuf struct {
	v4 unix.SockaddrInet4
	v6 unix.SockaddrInet6
}

// SockaddrInto copies the endpoint's socket address into buf and returns a
// pointer into buf, which stays valid until the next SockaddrInto with the
// same buf. Unlike Sockaddr, the result may be handed to unix.Connect: only
// buf's owner writes to it. It does not allocate.
func (e *Endpoint) SockaddrInto(buf *SockaddrBuf) unix.Sockaddr {
	switch sa := e.sa.(type) {
	case *unix.SockaddrInet4:
		buf.v4 = unix.SockaddrInet4{Port: sa.Port, Addr: sa.Addr}
		return &buf.v4
	case *unix.SockaddrInet6:
		buf.v6 = unix.SockaddrInet6{Port: sa.Port, ZoneId: sa.ZoneId, Addr: sa.Addr}
		return &buf.v6
	}
	return nil
}

// sockaddr builds the socket address for ap. IPv4-mapped IPv6 addresses
// become IPv4 ones, so they can be dialled from an AF_INET socket. A zone is
// an interface index or name; a name that does not resolve leaves the scope
// unset, and the connect fails as it would without one.
func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	addr := ap.Addr().Unmap()
	if addr.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: addr.As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), ZoneId: zoneID(addr.Zone()), Addr: addr.As16()}
}

// zoneID returns the interface index that zone names, or 0.
func zoneID(zone string) uint32 {
	if zone == "" {
		return 0
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n)
	}
	if ifi, err := net.InterfaceByName(zone); err == nil {
		return uint32(ifi.Index)
	}
	return 0
}
