package main

import (
	"fmt"
	"os"
	"syscall"
)

// fdReserve is the descriptors each process keeps for everything but the
// idle connections: listeners, logs, epoll, pipes of the busy paths.
const fdReserve = 400

// raiseOpenFiles raises the soft RLIMIT_NOFILE to the hard limit and
// returns the result. It calls syscall.Setrlimit, not x/sys/unix, because
// that tells the runtime to pass the raised limit on to the children
// instead of restoring the original soft limit in them.
func raiseOpenFiles() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, os.NewSyscallError("getrlimit", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return lim.Cur, os.NewSyscallError("setrlimit", err)
		}
	}
	return lim.Cur, nil
}

// idleCap is how many idle connections fit under limit, the open-files
// limit of every process, when the hungriest process in the path needs
// fdsPerConn descriptors per connection: a proxy needs 2 (client and
// upstream side), the echo server 1, or 3 if it holds a splice pipe per
// connection. Rounded down to a hundred.
func idleCap(limit uint64, fdsPerConn int) int {
	if limit <= fdReserve {
		return 0
	}
	n := (limit - fdReserve) / uint64(max(fdsPerConn, 1))
	return int(min(n, 1<<30)) / 100 * 100
}

// idleNote explains a cap of the idle test, or is empty if there is none.
func idleNote(requested, capped int, limit uint64, echoFds int) string {
	if capped >= requested {
		return ""
	}
	return fmt.Sprintf("idle connections capped from %d to %d: RLIMIT_NOFILE is %d (raising the hard limit needs CAP_SYS_RESOURCE) "+
		"and the echo server holds %d fds per connection, a proxy 2", requested, capped, limit, echoFds)
}
