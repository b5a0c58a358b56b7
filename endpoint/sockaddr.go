package endpoint

import (
	"net"
	"net/netip"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawSockaddr is an endpoint's socket address in the kernel's form, built
// once by New and never written after: the raw connect(2) of Dial only
// reads it, so every loop shares it.
type rawSockaddr struct {
	family int
	len    uint32
	raw4   unix.RawSockaddrInet4
	raw6   unix.RawSockaddrInet6
}

// newRawSockaddr encodes ap. IPv4-mapped IPv6 addresses become IPv4 ones,
// so they are dialled from an AF_INET socket. A zone is an interface index
// or name; a name that does not resolve leaves the scope unset, and the
// connect fails as it would without one.
func newRawSockaddr(ap netip.AddrPort) *rawSockaddr {
	addr := ap.Addr().Unmap()
	if addr.Is4() {
		r := &rawSockaddr{family: unix.AF_INET, len: unix.SizeofSockaddrInet4}
		r.raw4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: addr.As4()}
		putPort(&r.raw4.Port, ap.Port())
		return r
	}
	r := &rawSockaddr{family: unix.AF_INET6, len: unix.SizeofSockaddrInet6}
	r.raw6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Scope_id: zoneID(addr.Zone()), Addr: addr.As16()}
	putPort(&r.raw6.Port, ap.Port())
	return r
}

// ptr is the address to hand to connect(2), of r.len bytes.
func (r *rawSockaddr) ptr() unsafe.Pointer {
	if r.family == unix.AF_INET {
		return unsafe.Pointer(&r.raw4)
	}
	return unsafe.Pointer(&r.raw6)
}

// putPort stores port in network byte order.
func putPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
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
