package systemd

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// listenFDsStart is the first inherited fd, SD_LISTEN_FDS_START.
const listenFDsStart = 3

// Listener is a listening TCP socket inherited from systemd (plain or
// Multipath TCP).
type Listener struct {
	// FD belongs to the caller, which closes it when no server takes it.
	// It is close-on-exec; its blocking mode is as inherited, so a caller
	// that polls it sets O_NONBLOCK itself.
	FD int
	// Name is the socket's FileDescriptorName= (by default, the name of
	// its .socket unit), or "" when LISTEN_FDNAMES is unset.
	Name string
	// Addr is the bound address, with an IPv4-mapped IPv6 address
	// unmapped and no zone, as server.Server reports its own.
	Addr netip.AddrPort
}

// Listeners returns the listening sockets systemd passed to this process,
// in fd order from fd 3. It reads LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES and removes them from the environment, so it answers once
// per process: call it at start.
//
// It returns none, without an error, when LISTEN_PID is unset or names
// another process (the variables were meant for a parent), or LISTEN_FDS
// is unset or 0. A malformed variable, a LISTEN_FDNAMES whose count of
// names differs from LISTEN_FDS, or an fd that is not a listening TCP
// socket over IPv4 or IPv6 is an error naming the variable or the fd. On
// error the inherited fds are left open, and the caller is expected to
// exit: a unit that passes what Switchyard cannot serve is misconfigured.
func Listeners() ([]Listener, error) {
	pidVar, _ := takeEnv("LISTEN_PID")
	fdsVar, _ := takeEnv("LISTEN_FDS")
	namesVar, namesSet := takeEnv("LISTEN_FDNAMES")
	if pidVar == "" {
		return nil, nil
	}
	pid, err := parsePid(pidVar)
	if err != nil {
		return nil, fmt.Errorf("systemd: LISTEN_PID=%q: %w", pidVar, err)
	}
	if pid != os.Getpid() {
		return nil, nil
	}
	n, err := parseFDCount(fdsVar)
	if err != nil {
		return nil, fmt.Errorf("systemd: LISTEN_FDS=%q: %w", fdsVar, err)
	}
	if n == 0 {
		return nil, nil
	}
	var names []string
	if namesSet {
		if names, err = parseFDNames(namesVar, n); err != nil {
			return nil, fmt.Errorf("systemd: LISTEN_FDNAMES=%q: %w", namesVar, err)
		}
	}
	var ls []Listener
	for i := range n {
		fd := listenFDsStart + i
		var name string
		if names != nil {
			name = names[i]
		}
		l, err := inherit(fd, name)
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// parseFDCount parses LISTEN_FDS: a count of fds from fd 3 on. Unset or
// empty is 0. The count is not bounded here: inherit fails at the first fd
// that is not open.
func parseFDCount(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, numError(err)
	}
	if n < 0 || n > int64(maxFD-listenFDsStart) {
		return 0, strconv.ErrRange
	}
	return int(n), nil
}

// maxFD is the largest fd number, which is an int in the kernel.
const maxFD = 1<<31 - 1

// parseFDNames splits LISTEN_FDNAMES, which names each of n fds, separated
// by colons. systemd always sends as many names as fds; a different count
// is an error rather than a guess at which name belongs to which fd.
func parseFDNames(s string, n int) ([]string, error) {
	if n == 0 && s == "" {
		return []string{}, nil
	}
	names := strings.Split(s, ":")
	if len(names) != n {
		return nil, fmt.Errorf("%d names for %d fds", len(names), n)
	}
	return names, nil
}

// inherit checks that fd is a listening TCP socket, makes it
// close-on-exec, and returns it with its bound address.
func inherit(fd int, name string) (Listener, error) {
	fail := func(err error) (Listener, error) {
		return Listener{}, fmt.Errorf("systemd: inherited fd %d (name %q): %w", fd, name, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return fail(os.NewSyscallError("fcntl F_SETFD", err))
	}
	for _, opt := range [...]struct {
		opt  int
		name string
		ok   func(int) bool
		want string
	}{
		{unix.SO_DOMAIN, "SO_DOMAIN", func(v int) bool { return v == unix.AF_INET || v == unix.AF_INET6 }, "AF_INET or AF_INET6"},
		{unix.SO_TYPE, "SO_TYPE", func(v int) bool { return v == unix.SOCK_STREAM }, "SOCK_STREAM"},
		// Multipath TCP too: Go's own listeners use it where the kernel has
		// it, and it serves plain TCP clients as TCP.
		{unix.SO_PROTOCOL, "SO_PROTOCOL", func(v int) bool { return v == unix.IPPROTO_TCP || v == unix.IPPROTO_MPTCP }, "IPPROTO_TCP or IPPROTO_MPTCP"},
		{unix.SO_ACCEPTCONN, "SO_ACCEPTCONN", func(v int) bool { return v == 1 }, "1 (listening)"},
	} {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, opt.opt)
		if err != nil {
			return fail(fmt.Errorf("not a listening TCP socket: %w", os.NewSyscallError("getsockopt "+opt.name, err)))
		}
		if !opt.ok(v) {
			return fail(fmt.Errorf("not a listening TCP socket: %s is %d, want %s", opt.name, v, opt.want))
		}
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail(os.NewSyscallError("getsockname", err))
	}
	var addr netip.AddrPort
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		addr = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		addr = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	default:
		return fail(fmt.Errorf("getsockname: unexpected %T", sa))
	}
	return Listener{FD: fd, Name: name, Addr: addr}, nil
}

// Match returns the inherited listener for a server configured to listen
// on addr and, optionally, to take the socket named name.
//
// The address decides first, compared exactly with both sides unmapped and
// zones ignored. So a wildcard bind matches only the same wildcard
// address: 0.0.0.0:80 serves 127.0.0.1:80 too but does not match it, and
// [::]:80, which systemd binds for ListenStream=80, does not match
// 0.0.0.0:80.
//
// Failing that, a non-empty name matches the one listener with that name.
// A name that several listeners share matches none: one .socket unit with
// several ListenStream= lines gives them all its FileDescriptorName=, and
// nothing says which one the server meant.
func Match(ls []Listener, addr netip.AddrPort, name string) (Listener, bool) {
	if addr.IsValid() {
		want := normalize(addr)
		for _, l := range ls {
			if normalize(l.Addr) == want {
				return l, true
			}
		}
	}
	if name == "" {
		return Listener{}, false
	}
	var found Listener
	n := 0
	for _, l := range ls {
		if l.Name == name {
			found = l
			n++
		}
	}
	if n != 1 {
		return Listener{}, false
	}
	return found, true
}

func normalize(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
}
