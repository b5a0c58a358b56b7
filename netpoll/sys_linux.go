package netpoll

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The system calls a loop makes on its hot path, as raw syscalls: they are
// all non-blocking, so the scheduler's syscall bookkeeping (entersyscall,
// exitsyscall, and sysmon watching for Ps stuck in syscalls) would be pure
// overhead. Each returns the errno unwrapped; EINTR is retried here, in one
// place. Loop only.

// Splice moves up to n bytes from in to out (SPLICE_F_MOVE|SPLICE_F_NONBLOCK).
func Splice(in, out, n int) (int, unix.Errno) {
	return retry(unix.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n),
		unix.SPLICE_F_MOVE|unix.SPLICE_F_NONBLOCK)
}

// Read is read(2).
func Read(fd int, p []byte) (int, unix.Errno) {
	return retryPtr2(unix.SYS_READ, uintptr(fd), bufPtr(p), uintptr(len(p)), 0)
}

// Write is write(2).
func Write(fd int, p []byte) (int, unix.Errno) {
	return retryPtr2(unix.SYS_WRITE, uintptr(fd), bufPtr(p), uintptr(len(p)), 0)
}

// Recv is recvfrom(2) with MSG_DONTWAIT added to flags and no address.
func Recv(fd int, p []byte, flags int) (int, unix.Errno) {
	return retryPtr2(unix.SYS_RECVFROM, uintptr(fd), bufPtr(p), uintptr(len(p)),
		uintptr(flags|unix.MSG_DONTWAIT))
}

// Socket is socket(2). Pass SOCK_NONBLOCK|SOCK_CLOEXEC in typ.
func Socket(family, typ, proto int) (int, unix.Errno) {
	return retry(unix.SYS_SOCKET, uintptr(family), uintptr(typ), uintptr(proto), 0, 0, 0)
}

// Connect is connect(2) of a non-blocking socket to the raw address sa of
// n bytes (a unix.RawSockaddrInet4 or RawSockaddrInet6), which the kernel
// only reads. It never sleeps, but on loopback it runs the peer's side of
// the handshake in its softirq: tens of µs in which the loop keeps its P,
// as it would doing that work anywhere else. EINPROGRESS is the usual
// answer; EALREADY after an interrupted call means the same.
func Connect(fd int, sa unsafe.Pointer, n uint32) unix.Errno {
	_, e := retryPtr2(unix.SYS_CONNECT, uintptr(fd), sa, uintptr(n), 0)
	return e
}

// Poll is ppoll(2) with a zero timeout: which of fds are ready now.
func Poll(fds []unix.PollFd) (int, unix.Errno) {
	for {
		r, _, e := unix.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(unsafe.SliceData(fds))), uintptr(len(fds)),
			uintptr(unsafe.Pointer(&zeroTimeout)), 0, 0, 0)
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

var zeroTimeout unix.Timespec

// Shutdown is shutdown(2).
func Shutdown(fd, how int) unix.Errno {
	_, e := retry(unix.SYS_SHUTDOWN, uintptr(fd), uintptr(how), 0, 0, 0, 0)
	return e
}

// SetsockoptInt is setsockopt(2) with an int value.
func SetsockoptInt(fd, level, opt, value int) unix.Errno {
	v := int32(value)
	_, e := retryPtr4(unix.SYS_SETSOCKOPT, uintptr(fd), uintptr(level), uintptr(opt),
		unsafe.Pointer(&v), 4)
	return e
}

// closeFD is close(2). EINTR is not retried: on Linux the fd is released
// even then, and a retry could close a number someone else now owns.
func closeFD(fd int) unix.Errno {
	_, _, e := unix.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
	if e == unix.EINTR {
		return 0
	}
	return e
}

func epollCtl(epfd, op, fd int, ev *unix.EpollEvent) unix.Errno {
	_, e := retryPtr4(unix.SYS_EPOLL_CTL, uintptr(epfd), uintptr(op), uintptr(fd),
		unsafe.Pointer(ev), 0)
	return e
}

func retry(trap, a1, a2, a3, a4, a5, a6 uintptr) (int, unix.Errno) {
	for {
		r, _, e := unix.RawSyscall6(trap, a1, a2, a3, a4, a5, a6)
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

// retryPtr2 and retryPtr4 are retry for calls that pass a pointer as
// their second or fourth argument. It reaches them as an unsafe.Pointer and
// becomes a uintptr only in the call of the assembly RawSyscall6, the one
// place where the compiler keeps the object alive and in place for the
// call (unsafe.Pointer, rule 4): converted earlier, a stack object could
// move under the kernel if the stack grew in between.
func retryPtr2(trap, a1 uintptr, p unsafe.Pointer, a3, a4 uintptr) (int, unix.Errno) {
	for {
		r, _, e := unix.RawSyscall6(trap, a1, uintptr(p), a3, a4, 0, 0)
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

func retryPtr4(trap, a1, a2, a3 uintptr, p unsafe.Pointer, a5 uintptr) (int, unix.Errno) {
	for {
		r, _, e := unix.RawSyscall6(trap, a1, a2, a3, uintptr(p), a5, 0)
		if e != unix.EINTR {
			return int(r), e
		}
	}
}

var zero uintptr

func bufPtr(p []byte) unsafe.Pointer {
	if len(p) == 0 {
		return unsafe.Pointer(&zero)
	}
	return unsafe.Pointer(&p[0])
}
