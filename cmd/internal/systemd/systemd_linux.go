// Package systemd speaks the two protocols Switchyard shares with systemd
// when it runs as a unit: sd_notify(3), datagrams to $NOTIFY_SOCKET that
// report readiness, reloads, the drain, a status line and watchdog pings;
// and socket activation, sd_listen_fds(3), listening sockets inherited as
// fds 3, 4, … and described by $LISTEN_PID, $LISTEN_FDS and
// $LISTEN_FDNAMES.
//
// cmd/switchyard calls NewNotifier, WatchdogInterval and Listeners once, at
// start. Each reads its variables and removes them from the environment, so
// that a process Switchyard starts does not take systemd's messages for its
// own. Outside systemd every variable is unset and each of them answers
// "nothing to do" without an error.
package systemd

import (
	"os"

	"golang.org/x/sys/unix"
)

// takeEnv returns the value of key and removes key from the environment.
func takeEnv(key string) (string, bool) {
	v, ok := os.LookupEnv(key)
	os.Unsetenv(key) // cannot fail: key is a valid name
	return v, ok
}

// ignoringEINTR calls fn until it fails with something other than EINTR.
func ignoringEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
