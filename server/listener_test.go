package server

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestRawAddrPort(t *testing.T) {
	var rsa unix.RawSockaddrAny
	v4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
	v4.Family = unix.AF_INET
	v4.Addr = [4]byte{10, 1, 2, 3}
	p := (*[2]byte)(unsafe.Pointer(&v4.Port))
	p[0], p[1] = 0x1f, 0x90 // 8080 in network byte order
	if got, want := rawAddrPort(&rsa), netip.MustParseAddrPort("10.1.2.3:8080"); got != want {
		t.Errorf("IPv4: got %v, want %v", got, want)
	}

	rsa = unix.RawSockaddrAny{}
	v6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
	v6.Family = unix.AF_INET6
	v6.Addr = netip.MustParseAddr("::ffff:192.0.2.7").As16()
	p = (*[2]byte)(unsafe.Pointer(&v6.Port))
	p[0], p[1] = 0x01, 0xbb // 443
	if got, want := rawAddrPort(&rsa), netip.MustParseAddrPort("192.0.2.7:443"); got != want {
		t.Errorf("IPv4-mapped IPv6: got %v, want %v (unmapped)", got, want)
	}

	rsa = unix.RawSockaddrAny{}
	if got := rawAddrPort(&rsa); got.IsValid() {
		t.Errorf("unknown family: got %v, want the zero AddrPort", got)
	}
}

// The group of SO_REUSEPORT listeners of one server: the first binds port
// 0, the rest must join its port; all accept on it.
func TestListenGroupSharesThePort(t *testing.T) {
	first, err := listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	defer first.closeUnregistered()
	if first.addr.Port() == 0 {
		t.Fatal("no port bound")
	}
	second, err := listen(first.addr)
	if err != nil {
		t.Fatalf("second listener on %v: %v", first.addr, err)
	}
	defer second.closeUnregistered()
	if second.addr != first.addr {
		t.Fatalf("second listener bound %v, want %v", second.addr, first.addr)
	}
	if first.wildcard || second.wildcard {
		t.Fatal("a loopback listener marked wildcard")
	}
	for _, ln := range []*listener{first, second} {
		v, err := unix.GetsockoptInt(ln.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY)
		if err != nil || v == 0 {
			t.Errorf("listener without TCP_NODELAY (accepted sockets inherit it): %v, %v", v, err)
		}
	}
}

func TestListenRejectsAnAddressInUse(t *testing.T) {
	// A socket without SO_REUSEPORT holds the port: our group cannot join.
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*unix.SockaddrInet4).Port))
	if ln, err := listen(addr); err == nil {
		ln.closeUnregistered()
		t.Fatalf("listen on %v succeeded while another socket holds it", addr)
	}
}

func TestReasonAndFailureNames(t *testing.T) {
	want := []string{"eof", "reset", "idle_timeout", "lifetime", "connect_timeout", "connect_failed", "no_endpoints", "waiters_full", "names_full", "shutdown",
		"no_sni", "bad_handshake", "handshake_timeout", "proxy_refused"}
	for i, w := range want {
		if got := Reason(i).String(); got != w {
			t.Errorf("Reason(%d) = %q, want %q", i, got, w)
		}
	}
	if NumReasons != Reason(len(want)) {
		t.Errorf("NumReasons = %d, want %d", NumReasons, len(want))
	}
	if Reason(200).String() != "unknown" || ConnectFailure(200).String() != "unknown" {
		t.Error("out-of-range names should read unknown")
	}
}

// Another group of SO_REUSEPORT listeners (a second Switchyard, or any
// program of the same user that sets it) on our address would share our
// connections: checkFree refuses an address anything listens on, while
// connections in TIME_WAIT on it do not count.
func TestCheckFreeRefusesAReusePortGroup(t *testing.T) {
	ours, err := listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	addr := ours.addr
	if err := checkFree(addr); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("checkFree(%v) with a reuseport listener there = %v, want ErrAddrInUse", addr, err)
	}
	wildcard := netip.AddrPortFrom(netip.IPv4Unspecified(), addr.Port())
	if err := checkFree(wildcard); !errors.Is(err, ErrAddrInUse) {
		t.Fatalf("checkFree(%v) with 127.0.0.1 listening on its port = %v, want ErrAddrInUse", wildcard, err)
	}

	// A connection through it, closed by us first, leaves TIME_WAIT.
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	nfd, _, err := unix.Accept4(ours.fd, unix.SOCK_CLOEXEC)
	for errors.Is(err, unix.EAGAIN) {
		nfd, _, err = unix.Accept4(ours.fd, unix.SOCK_CLOEXEC)
	}
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(nfd)
	c.Close()
	ours.closeUnregistered()
	if err := checkFree(addr); err != nil {
		t.Fatalf("checkFree(%v) with only a closed connection left = %v", addr, err)
	}
}
