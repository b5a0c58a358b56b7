package router

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/balancer"
	"github.com/switchyard-proxy/switchyard/server"
)

// proxyHeaderRoom is the loop's buffer for the PROXY headers it sends: a
// v1 line takes at most 104 bytes, a v2 header 52.
const proxyHeaderRoom = 112

// sendProxy writes the PROXY header of client send_proxy to the endpoint
// just connected, before any byte of the client's: the client's source
// (or the one an accepted header gave) and the address it connected to
// (or the accepted header's). The socket's buffer is empty, so the write
// is whole or the connection is broken. Loop only.
func (s *stream) sendProxy() bool {
	dst := s.proxyDst
	if !dst.IsValid() {
		dst, _ = server.SockName(s.cfd) // invalid on error: the header says UNKNOWN
	}
	hdr := server.AppendProxy(s.w.proxyHdr[:0], s.r.sendProxy, s.env.Source, dst)
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(s.ufd), uintptr(unsafe.Pointer(&hdr[0])), uintptr(len(hdr)))
	return e == 0 && int(n) == len(hdr)
}

// hashKey is the stream's key for a hash balancer: its server name when
// the router hashes by SNI and the ClientHello gave one, else its source
// address. Loop only; it does not allocate.
func (s *stream) hashKey() uint64 {
	switch {
	case !s.r.hashed:
		return 0
	case s.r.hashSNI && s.sni != "":
		return balancer.KeyOfString(s.sni)
	}
	return balancer.KeyOfAddr(s.env.Source.Addr())
}
