package systemd

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Notifier sends sd_notify messages to the socket systemd named in
// NOTIFY_SOCKET. A nil or zero Notifier is disabled: every method does
// nothing and returns nil. That is what NewNotifier returns outside systemd,
// so callers need no condition around a notification.
//
// A Notifier is safe for concurrent use. Sends are serialised, so messages
// arrive in the order their calls returned.
type Notifier struct {
	addr *unix.SockaddrUnix // nil: disabled; never changes once set

	mu sync.Mutex // guards fd
	// fd is an unconnected datagram socket, non-blocking and close-on-exec,
	// or -1 once closed. Each send names addr, as sd_notify does with a
	// fresh socket per message, so nothing ties the Notifier to one binding
	// of the path.
	fd int
}

// NewNotifier reads NOTIFY_SOCKET, an absolute path or an "@name" in the
// abstract namespace, and removes it from the environment. With
// NOTIFY_SOCKET unset or empty it returns a disabled Notifier. Other forms
// (a relative path, systemd 254's "vsock:") are an error; so is a failure
// to open the socket. On error it returns a nil *Notifier, which is itself
// a disabled Notifier: a caller may log the error and go on using it.
func NewNotifier() (*Notifier, error) {
	name, _ := takeEnv("NOTIFY_SOCKET")
	if name == "" {
		return &Notifier{fd: -1}, nil
	}
	if err := checkNotifySocket(name); err != nil {
		return nil, fmt.Errorf("systemd: NOTIFY_SOCKET=%q: %w", name, err)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("systemd: NOTIFY_SOCKET=%q: %w", name, os.NewSyscallError("socket", err))
	}
	return &Notifier{addr: &unix.SockaddrUnix{Name: name}, fd: fd}, nil
}

func checkNotifySocket(name string) error {
	if name[0] != '/' && name[0] != '@' {
		return fmt.Errorf("not an absolute path or @abstract name")
	}
	// x/sys/unix keeps room for a terminating NUL in sun_path, for an
	// abstract name too; checked here so the error comes at start, not
	// with the first notification.
	if max := len(unix.RawSockaddrUnix{}.Path) - 1; len(name) > max {
		return fmt.Errorf("longer than %d bytes", max)
	}
	return nil
}

func (n *Notifier) disabled() bool { return n == nil || n.addr == nil }

// Notify sends state, newline-separated VAR=value assignments as described
// in sd_notify(3), in one datagram. It never blocks: when the receiving
// socket's queue is full it fails with an error wrapping EAGAIN. systemd
// reads its socket promptly, so that means systemd is wedged; the caller
// logs it and carries on. After Close it fails with net.ErrClosed.
func (n *Notifier) Notify(state string) error {
	if n.disabled() {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fd < 0 {
		return fmt.Errorf("systemd: notify: %w", net.ErrClosed)
	}
	err := ignoringEINTR(func() error {
		return unix.Sendto(n.fd, []byte(state), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, n.addr)
	})
	if err != nil {
		return fmt.Errorf("systemd: notify %s: %w", n.addr.Name, os.NewSyscallError("sendto", err))
	}
	return nil
}

// Ready tells systemd that start-up or a reload has finished: every
// listener is bound. An empty status leaves the status line as it was.
func (n *Notifier) Ready(status string) error {
	return n.Notify("READY=1" + statusAssignment(status))
}

// Reloading tells systemd that a reload has begun, stamped with the current
// CLOCK_MONOTONIC time as Type=notify-reload requires. Send Ready when the
// reload has finished, whether or not it succeeded. An empty status leaves
// the status line as it was.
func (n *Notifier) Reloading(status string) error {
	if n.disabled() {
		return nil
	}
	usec, err := monotonicUsec()
	if err != nil {
		return err
	}
	return n.Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10) + statusAssignment(status))
}

// Stopping tells systemd that the drain has begun. An empty status leaves
// the status line as it was.
func (n *Notifier) Stopping(status string) error {
	return n.Notify("STOPPING=1" + statusAssignment(status))
}

// Status sets the one-line summary `systemctl status` shows; an empty
// status clears it.
func (n *Notifier) Status(status string) error {
	return n.Notify("STATUS=" + oneLine(status))
}

// Watchdog pings the service watchdog; see WatchdogInterval for how often.
func (n *Notifier) Watchdog() error {
	return n.Notify("WATCHDOG=1")
}

// Close closes the socket. Later notifications fail with net.ErrClosed;
// a second Close, or closing a disabled Notifier, does nothing.
func (n *Notifier) Close() error {
	if n.disabled() {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.fd < 0 {
		return nil
	}
	err := unix.Close(n.fd)
	n.fd = -1
	if err != nil {
		return fmt.Errorf("systemd: notify: %w", os.NewSyscallError("close", err))
	}
	return nil
}

// statusAssignment returns the STATUS= line that follows another
// assignment, or "" for an empty status.
func statusAssignment(status string) string {
	if status == "" {
		return ""
	}
	return "\nSTATUS=" + oneLine(status)
}

// oneLine replaces newlines with spaces: a newline in a status would start
// a new assignment, and a status that read "\nREADY=1" would send one.
func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", " ")
}

func monotonicUsec() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("systemd: %w", os.NewSyscallError("clock_gettime", err))
	}
	return ts.Nano() / 1000, nil
}
