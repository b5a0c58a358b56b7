package endpoint

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/netpoll"
)

// Dial starts a non-blocking TCP connect to e and returns the socket, with
// TCP_NODELAY set. The caller registers the socket with its loop: the
// connection is established when the socket reports EPOLLOUT without
// EPOLLERR or EPOLLHUP, and failed when it reports either (ConnectError then
// says why). An error here means the attempt failed at once; no fd is
// returned then. Safe from any goroutine: e's address is only read.
//
// Its system calls are raw, like the rest of a loop's: none of them
// sleeps, and a connect(2) on loopback that ran the handshake in its
// softirq no longer looks to the scheduler like a blocked syscall whose P
// should be handed to another thread.
func Dial(e *Endpoint) (int, error) {
	sa := e.sa
	fd, errno := netpoll.Socket(sa.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if errno != 0 {
		return -1, os.NewSyscallError("socket", errno)
	}
	if errno := netpoll.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); errno != 0 {
		unix.Close(fd)
		return -1, os.NewSyscallError("setsockopt", errno)
	}
	switch errno := netpoll.Connect(fd, sa.ptr(), sa.len); errno {
	case 0, unix.EINPROGRESS, unix.EALREADY:
		return fd, nil
	default:
		unix.Close(fd)
		return -1, os.NewSyscallError("connect", errno)
	}
}

// ConnectError returns the pending error of a socket whose connect failed
// (SO_ERROR), or nil if it has none.
func ConnectError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return os.NewSyscallError("getsockopt", err)
	}
	if v != 0 {
		return os.NewSyscallError("connect", unix.Errno(v))
	}
	return nil
}

// IsResourceError reports whether err is this host running short (of
// descriptors, memory, buffer space or ephemeral ports) rather than the
// endpoint failing: it says nothing about the endpoint, must not count
// against it, and is worth retrying shortly.
func IsResourceError(err error) bool {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return false
	}
	switch errno {
	case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM, unix.EADDRNOTAVAIL, unix.ENOSPC:
		return true
	}
	return false
}
