package endpoint

import (
	"net"
	"net/netip"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Sockaddr returns the socket address built once by New: a
// *unix.SockaddrInet4 for IPv4 and IPv4-mapped IPv6 addresses, a
// *unix.SockaddrInet6 otherwise. It is shared by every caller and must not be
// modified.
//
// Do not pass it to unix.Connect (or Bind, Sendto, ...) from more than one
// goroutine: those functions write the kernel's form of the address into the
// struct they are given, so concurrent calls race. Event loops dial with
// Dial and a SockaddrBuf of their own instead.
func (e *Endpoint) Sockaddr() unix.Sockaddr { return e.sa }

// SockaddrBuf is scratch space for one event loop's socket addresses, in
// the kernel's form. The zero value is ready to use; it must not be copied
// or shared between goroutines.
type SockaddrBuf struct {
	raw4 unix.RawSockaddrInet4
	raw6 unix.RawSockaddrInet6
}

// rawSockaddrInto writes the endpoint's socket address into buf in the
// kernel's form, for a raw connect(2), and returns it with its length and
// family. It does not allocate.
func (e *Endpoint) rawSockaddrInto(buf *SockaddrBuf) (sa unsafe.Pointer, n uint32, family int) {
	switch sa := e.sa.(type) {
	case *unix.SockaddrInet4:
		buf.raw4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: sa.Addr}
		putPort(&buf.raw4.Port, sa.Port)
		return unsafe.Pointer(&buf.raw4), unix.SizeofSockaddrInet4, unix.AF_INET
	case *unix.SockaddrInet6:
		buf.raw6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Scope_id: sa.ZoneId, Addr: sa.Addr}
		putPort(&buf.raw6.Port, sa.Port)
		return unsafe.Pointer(&buf.raw6), unix.SizeofSockaddrInet6, unix.AF_INET6
	}
	return nil, 0, 0
}

// putPort stores port in network byte order.
func putPort(p *uint16, port int) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
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
