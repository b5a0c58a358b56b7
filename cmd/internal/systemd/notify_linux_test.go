package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenNotify binds a datagram socket where systemd's would be and points
// NOTIFY_SOCKET at it.
func listenNotify(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", name)
	return conn
}

func newNotifier(t *testing.T) *Notifier {
	t.Helper()
	n, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if v, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
		t.Errorf("NOTIFY_SOCKET=%q still set after NewNotifier", v)
	}
	return n
}

// readMessage reads one datagram. Notify returns once the datagram is in
// the receiver's queue, so it is there already; the deadline only turns a
// missing message into a failure instead of a hang.
func readMessage(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	k, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("reading notification: %v", err)
	}
	return string(buf[:k])
}

var abstractSeq atomic.Int64

func abstractName() string {
	return fmt.Sprintf("@switchyard-systemd-test-%d-%d", os.Getpid(), abstractSeq.Add(1))
}

func TestNotifyMessages(t *testing.T) {
	steps := []struct {
		name string
		send func(*Notifier) error
		want string // "MONOTONIC_USEC=now" stands for the clock at the send
	}{
		{"ready", func(n *Notifier) error { return n.Ready("listening on 2 servers") },
			"READY=1\nSTATUS=listening on 2 servers"},
		{"status on one line", func(n *Notifier) error { return n.Status("a\nREADY=1") },
			"STATUS=a READY=1"},
		{"status cleared", func(n *Notifier) error { return n.Status("") },
			"STATUS="},
		{"reloading", func(n *Notifier) error { return n.Reloading("reloading /etc/switchyard/switchyard.toml") },
			"RELOADING=1\nMONOTONIC_USEC=now\nSTATUS=reloading /etc/switchyard/switchyard.toml"},
		{"ready without status", func(n *Notifier) error { return n.Ready("") },
			"READY=1"},
		{"reloading without status", func(n *Notifier) error { return n.Reloading("") },
			"RELOADING=1\nMONOTONIC_USEC=now"},
		{"watchdog", func(n *Notifier) error { return n.Watchdog() },
			"WATCHDOG=1"},
		{"stopping", func(n *Notifier) error { return n.Stopping("draining 3 streams") },
			"STOPPING=1\nSTATUS=draining 3 streams"},
		{"stopping without status", func(n *Notifier) error { return n.Stopping("") },
			"STOPPING=1"},
		{"raw", func(n *Notifier) error { return n.Notify("EXTEND_TIMEOUT_USEC=5000000") },
			"EXTEND_TIMEOUT_USEC=5000000"},
	}
	for _, socket := range []struct{ name, addr string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", abstractName()},
	} {
		t.Run(socket.name, func(t *testing.T) {
			conn := listenNotify(t, socket.addr)
			n := newNotifier(t)
			// Send everything first, then read: order is part of the
			// contract.
			var sentAt []int64
			for _, s := range steps {
				if err := s.send(n); err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				now, err := monotonicUsec()
				if err != nil {
					t.Fatal(err)
				}
				sentAt = append(sentAt, now)
			}
			for i, s := range steps {
				got := readMessage(t, conn)
				if err := matchMessage(got, s.want, sentAt[i]); err != nil {
					t.Errorf("%s: got %q, want %q: %v", s.name, got, s.want, err)
				}
			}
		})
	}
}

// matchMessage compares a datagram with want line by line; a want line
// "MONOTONIC_USEC=now" accepts a value within a second of nowUsec.
func matchMessage(got, want string, nowUsec int64) error {
	gl, wl := strings.Split(got, "\n"), strings.Split(want, "\n")
	if len(gl) != len(wl) {
		return fmt.Errorf("%d lines, want %d", len(gl), len(wl))
	}
	for i := range wl {
		if wl[i] != "MONOTONIC_USEC=now" {
			if gl[i] != wl[i] {
				return fmt.Errorf("line %d differs", i+1)
			}
			continue
		}
		v, ok := strings.CutPrefix(gl[i], "MONOTONIC_USEC=")
		if !ok {
			return fmt.Errorf("line %d is not MONOTONIC_USEC", i+1)
		}
		usec, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return err
		}
		if d := time.Duration(nowUsec-usec) * time.Microsecond; d < -time.Second || d > time.Second {
			return fmt.Errorf("MONOTONIC_USEC is %v away from CLOCK_MONOTONIC", d)
		}
	}
	return nil
}

func TestNotifyDisabled(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	unset, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	if unset == nil {
		t.Fatal("NewNotifier returned nil with NOTIFY_SOCKET unset")
	}
	t.Setenv("NOTIFY_SOCKET", "")
	empty, err := NewNotifier()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		n    *Notifier
	}{
		{"unset", unset},
		{"empty", empty},
		{"nil", nil},
		{"zero", &Notifier{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			calls := map[string]func() error{
				"Notify":    func() error { return c.n.Notify("READY=1") },
				"Ready":     func() error { return c.n.Ready("up") },
				"Reloading": func() error { return c.n.Reloading("reloading") },
				"Stopping":  func() error { return c.n.Stopping("draining") },
				"Status":    func() error { return c.n.Status("up") },
				"Watchdog":  c.n.Watchdog,
				"Close":     c.n.Close,
			}
			for name, call := range calls {
				if err := call(); err != nil {
					t.Errorf("%s: %v", name, err)
				}
			}
		})
	}
}

func TestNewNotifierRejects(t *testing.T) {
	for _, c := range []struct{ name, value string }{
		{"relative path", "run/notify"},
		{"vsock", "vsock:2:1234"},
		{"path too long", "/" + strings.Repeat("x", 107)},
		{"abstract name too long", "@" + strings.Repeat("x", 107)},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("NOTIFY_SOCKET", c.value)
			n, err := NewNotifier()
			if err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET") {
				t.Errorf("err = %v, want an error naming NOTIFY_SOCKET", err)
			}
			if n != nil {
				t.Errorf("returned %v, want nil", n)
			}
			if err := n.Ready("up"); err != nil {
				t.Errorf("nil Notifier: Ready: %v", err)
			}
			if _, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
				t.Error("NOTIFY_SOCKET still set")
			}
		})
	}
}

// The longest names the kernel takes are accepted.
func TestNotifyLongestNames(t *testing.T) {
	max := len(unix.RawSockaddrUnix{}.Path) - 1 // room for a NUL
	path := filepath.Join(t.TempDir(), "n")
	path += strings.Repeat("x", max-len(path))
	abstract := abstractName()
	abstract += strings.Repeat("y", max-len(abstract))
	for _, name := range []string{path, abstract} {
		conn := listenNotify(t, name)
		n := newNotifier(t)
		if err := n.Watchdog(); err != nil {
			t.Fatalf("%d-byte name: %v", len(name), err)
		}
		if got := readMessage(t, conn); got != "WATCHDOG=1" {
			t.Errorf("got %q", got)
		}
	}
}

func TestNotifyNoReceiver(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	n := newNotifier(t)
	err := n.Ready("up")
	if !errors.Is(err, unix.ENOENT) {
		t.Fatalf("err = %v, want ENOENT", err)
	}
	if !strings.Contains(err.Error(), "sendto") {
		t.Errorf("err = %v, want it to name sendto", err)
	}
}

// A receiver that never reads fills up; Notify must then fail at once, not
// wait for room.
func TestNotifyFullQueue(t *testing.T) {
	conn := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	if err := conn.SetReadBuffer(1); err != nil {
		t.Fatal(err)
	}
	n := newNotifier(t)
	type result struct {
		sent int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		for i := range 100_000 {
			if err := n.Status(strings.Repeat("s", 1000)); err != nil {
				done <- result{i, err}
				return
			}
		}
		done <- result{100_000, nil}
	}()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	select {
	case r := <-done:
		if !errors.Is(r.err, unix.EAGAIN) {
			t.Fatalf("after %d messages: err = %v, want EAGAIN", r.sent, r.err)
		}
		if r.sent == 0 {
			t.Error("the first message already failed")
		}
		t.Logf("queue full after %d messages: %v", r.sent, r.err)
	case <-timeout.C:
		t.Fatal("Notify blocked on a full queue")
	}
}

func TestNotifyClose(t *testing.T) {
	listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	n := newNotifier(t)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if err := n.Ready("up"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Ready after Close: err = %v, want net.ErrClosed", err)
	}
	if err := n.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNotifyConcurrent(t *testing.T) {
	conn := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	n := newNotifier(t)
	// Fewer senders than the smallest default queue (net.unix.max_dgram_qlen
	// is 10), so nothing is dropped while no one reads.
	const senders = 8
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			if err := n.Status(fmt.Sprintf("sender %d", i)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var got, want []string
	for i := range senders {
		got = append(got, readMessage(t, conn))
		want = append(want, fmt.Sprintf("STATUS=sender %d", i))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Close racing with sends: each send either goes out or reports the close.
func TestNotifyCloseWhileSending(t *testing.T) {
	conn := listenNotify(t, filepath.Join(t.TempDir(), "notify"))
	n := newNotifier(t)
	var wg sync.WaitGroup
	var sent atomic.Int64
	for range 4 {
		wg.Go(func() {
			for range 2 {
				switch err := n.Watchdog(); {
				case err == nil:
					sent.Add(1)
				case !errors.Is(err, net.ErrClosed):
					t.Error(err)
				}
			}
		})
	}
	if err := n.Close(); err != nil {
		t.Error(err)
	}
	wg.Wait()
	for range sent.Load() {
		if got := readMessage(t, conn); got != "WATCHDOG=1" {
			t.Errorf("got %q", got)
		}
	}
}
