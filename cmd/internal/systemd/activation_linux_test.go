package systemd

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

var listenVars = []string{"LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}

// Cases that fail or give up before touching an fd run in this process.
func TestListenersEnvironment(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	for _, c := range []struct {
		name             string
		pid, fds, fdname string
		err              string // substring; "" for none
	}{
		{"unset", unset, unset, unset, ""},
		{"fds without pid", unset, "2", "a:b", ""},
		{"another process", strconv.Itoa(os.Getpid() + 1), "2", "a:b", ""},
		{"no fds", self, "0", "", ""},
		{"fds unset", self, unset, unset, ""},
		{"pid not a number", "abc", "1", unset, `LISTEN_PID="abc": invalid syntax`},
		{"pid zero", "0", "1", unset, `LISTEN_PID="0": not a process id`},
		{"fds not a number", self, "two", unset, `LISTEN_FDS="two": invalid syntax`},
		{"fds negative", self, "-1", unset, `LISTEN_FDS="-1": value out of range`},
		{"fds too many", self, "2147483647", unset, `LISTEN_FDS="2147483647": value out of range`},
		{"fewer names", self, "2", "public", `LISTEN_FDNAMES="public": 1 names for 2 fds`},
		{"more names", self, "1", "public:admin", `LISTEN_FDNAMES="public:admin": 2 names for 1 fds`},
		{"empty names for two", self, "2", "", `LISTEN_FDNAMES="": 1 names for 2 fds`},
	} {
		t.Run(c.name, func(t *testing.T) {
			setenv(t, "LISTEN_PID", c.pid)
			setenv(t, "LISTEN_FDS", c.fds)
			setenv(t, "LISTEN_FDNAMES", c.fdname)
			ls, err := Listeners()
			if ls != nil {
				t.Errorf("got listeners %v", ls)
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("err = %v, want one containing %q", err, c.err)
			}
			for _, key := range listenVars {
				if v, set := os.LookupEnv(key); set {
					t.Errorf("%s=%q still set", key, v)
				}
			}
		})
	}
}

// helperResult is what TestHelperProcess saw, printed on one line after
// helperPrefix.
type helperResult struct {
	Listeners   []Listener
	Err         string
	CloseOnExec []bool   // per listener, after Listeners returned
	Env         []string // LISTEN_* variables still set
}

const (
	helperSwitch = "SWITCHYARD_SYSTEMD_TEST_HELPER"
	helperPrefix = "helper result: "
	// childPid in LISTEN_PID asks the helper to put its own pid there.
	childPid = "child"
)

// TestHelperProcess is not a test: it is the process socket activation
// starts, re-executed from this test binary by runHelper.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperSwitch) != "listeners" {
		return
	}
	// systemd sets LISTEN_PID between fork and exec, once the child's pid
	// is known (systemd-socket-activate does the same). os/exec cannot run
	// code there, so the child fills in its own pid before reading it.
	if os.Getenv("LISTEN_PID") == childPid {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	var r helperResult
	ls, err := Listeners()
	r.Listeners = ls
	if err != nil {
		r.Err = err.Error()
	}
	for _, l := range ls {
		flags, err := unix.FcntlInt(uintptr(l.FD), unix.F_GETFD, 0)
		r.CloseOnExec = append(r.CloseOnExec, err == nil && flags&unix.FD_CLOEXEC != 0)
	}
	for _, key := range listenVars {
		if v, ok := os.LookupEnv(key); ok {
			r.Env = append(r.Env, key+"="+v)
		}
	}
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	os.Stdout.Write(append([]byte(helperPrefix), append(b, '\n')...))
	os.Exit(0)
}

// runHelper starts TestHelperProcess with files as fds 3, 4, … and env
// added to an environment cleared of systemd's variables.
func runHelper(t *testing.T, files []*os.File, env ...string) helperResult {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	for _, kv := range os.Environ() {
		key, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(listenVars, key) && key != "NOTIFY_SOCKET" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// The race detector waits a second at exit for late reports; the
	// helper has no goroutines to wait for.
	cmd.Env = append(cmd.Env, helperSwitch+"=listeners", "GORACE=atexit_sleep_ms=0")
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = files
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr.Bytes())
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), helperPrefix); ok {
			var r helperResult
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatal(err)
			}
			return r
		}
	}
	t.Fatalf("helper printed no result:\n%s\nstderr:\n%s", out, stderr.Bytes())
	return helperResult{}
}

// tcpListener returns a listening socket's fd as a file, and its address.
func tcpListener(t *testing.T, network, addr string) (*os.File, netip.AddrPort) {
	t.Helper()
	l, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, l.Addr().(*net.TCPAddr).AddrPort()
}

// rawSocket returns a socket made with unix calls, for kinds package net
// does not make: setup binds it, maybe listens.
func rawSocket(t *testing.T, family, typ int, setup func(fd int) error) *os.File {
	t.Helper()
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "raw socket")
	t.Cleanup(func() { f.Close() })
	if err := setup(fd); err != nil {
		t.Fatal(err)
	}
	return f
}

// mappedListener listens on an IPv6 socket bound to ::ffff:127.0.0.1.
func mappedListener(t *testing.T) (*os.File, netip.AddrPort) {
	t.Helper()
	f := rawSocket(t, unix.AF_INET6, unix.SOCK_STREAM, func(fd int) error {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return err
		}
		mapped := netip.MustParseAddr("::ffff:127.0.0.1").As16()
		if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: mapped}); err != nil {
			return err
		}
		return unix.Listen(fd, 8)
	})
	sa, err := unix.Getsockname(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	return f, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(sa.(*unix.SockaddrInet6).Port))
}

// Go's net.Listen makes Multipath TCP sockets where the kernel has it; the
// mapped listener, made with unix.Socket, is plain TCP either way.
func TestListenersInherited(t *testing.T) {
	v4, v4Addr := tcpListener(t, "tcp4", "127.0.0.1:0")
	v6, v6Addr := tcpListener(t, "tcp6", "[::1]:0")
	mapped, mappedAddr := mappedListener(t)
	for _, c := range []struct {
		name  string
		files []*os.File
		env   []string
		want  []Listener
	}{
		{
			name:  "named",
			files: []*os.File{v4, v6, mapped},
			env:   []string{"LISTEN_PID=" + childPid, "LISTEN_FDS=3", "LISTEN_FDNAMES=public:internal:mapped"},
			want:  []Listener{{3, "public", v4Addr}, {4, "internal", v6Addr}, {5, "mapped", mappedAddr}},
		},
		{
			name:  "unnamed",
			files: []*os.File{v6, v4},
			env:   []string{"LISTEN_PID=" + childPid, "LISTEN_FDS=2"},
			want:  []Listener{{3, "", v6Addr}, {4, "", v4Addr}},
		},
		{
			name:  "fewer fds than files",
			files: []*os.File{v4, v6},
			env:   []string{"LISTEN_PID=" + childPid, "LISTEN_FDS=1", "LISTEN_FDNAMES=public"},
			want:  []Listener{{3, "public", v4Addr}},
		},
		{
			name:  "meant for another process",
			files: []*os.File{v4},
			env:   []string{"LISTEN_PID=1", "LISTEN_FDS=1", "LISTEN_FDNAMES=public"},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runHelper(t, c.files, c.env...)
			if r.Err != "" {
				t.Fatalf("Listeners: %s", r.Err)
			}
			if !slices.Equal(r.Listeners, c.want) {
				t.Errorf("got %+v, want %+v", r.Listeners, c.want)
			}
			for i, ok := range r.CloseOnExec {
				if !ok {
					t.Errorf("fd %d is not close-on-exec", r.Listeners[i].FD)
				}
			}
			if len(r.Env) > 0 {
				t.Errorf("still set: %q", r.Env)
			}
		})
	}
}

func TestListenersRejectsNonListeners(t *testing.T) {
	good, _ := tcpListener(t, "tcp4", "127.0.0.1:0")
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	udpFile, err := udp.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udpFile.Close() })
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pr.Close(); pw.Close() })
	bound := rawSocket(t, unix.AF_INET, unix.SOCK_STREAM, func(fd int) error {
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	})
	unixListener, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unixListener.Close() })
	unixFile, err := unixListener.(*net.UnixListener).File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unixFile.Close() })

	for _, c := range []struct {
		name string
		bad  *os.File
		err  string
	}{
		{"udp", udpFile, "SO_TYPE is 2, want SOCK_STREAM"},
		{"pipe", pr, "getsockopt SO_DOMAIN: socket operation on non-socket"},
		{"tcp not listening", bound, "SO_ACCEPTCONN is 0, want 1 (listening)"},
		{"unix listener", unixFile, "SO_DOMAIN is 1, want AF_INET or AF_INET6"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runHelper(t, []*os.File{good, c.bad},
				"LISTEN_PID="+childPid, "LISTEN_FDS=2", "LISTEN_FDNAMES=public:odd")
			want := `systemd: inherited fd 4 (name "odd"): not a listening TCP socket: ` + c.err
			if r.Err != want {
				t.Errorf("err = %q, want %q", r.Err, want)
			}
			if r.Listeners != nil {
				t.Errorf("got listeners %+v with the error", r.Listeners)
			}
			if len(r.Env) > 0 {
				t.Errorf("still set: %q", r.Env)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	ap := netip.MustParseAddrPort
	ls := []Listener{
		{3, "public", ap("127.0.0.1:7474")},
		{4, "internal", ap("[::1]:7475")},
		{5, "any4", ap("0.0.0.0:80")},
		{6, "any6", ap("[::]:8080")},
		{7, "pair", ap("127.0.0.2:9000")},
		{8, "pair", ap("127.0.0.3:9000")},
		{9, "", ap("10.0.0.9:1")},
	}
	for _, c := range []struct {
		name   string
		addr   netip.AddrPort
		fdname string
		want   int // fd; 0 for no match
	}{
		{"IPv4 address", ap("127.0.0.1:7474"), "", 3},
		{"IPv6 address", ap("[::1]:7475"), "", 4},
		{"IPv4-mapped address", ap("[::ffff:127.0.0.1]:7474"), "", 3},
		{"zone ignored", ap("[::1%lo]:7475"), "", 4},
		{"other port", ap("127.0.0.1:7475"), "", 0},
		{"specific address under a wildcard", ap("127.0.0.1:80"), "", 0},
		{"IPv4 wildcard", ap("0.0.0.0:80"), "", 5},
		{"IPv6 wildcard", ap("[::]:8080"), "", 6},
		{"IPv4 wildcard against IPv6 wildcard", ap("0.0.0.0:8080"), "", 0},
		{"IPv6 wildcard against IPv4 wildcard", ap("[::]:80"), "", 0},
		{"name without address", netip.AddrPort{}, "internal", 4},
		{"name when the address differs", ap("10.0.0.1:1"), "public", 3},
		{"address before name", ap("127.0.0.1:7474"), "internal", 3},
		{"shared name", ap("10.0.0.1:1"), "pair", 0},
		{"shared name and an address", ap("127.0.0.3:9000"), "pair", 8},
		{"unknown name", ap("10.0.0.1:1"), "admin", 0},
		{"empty name matches no unnamed socket", ap("10.0.0.1:1"), "", 0},
		{"nothing", netip.AddrPort{}, "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, ok := Match(ls, c.addr, c.fdname)
			switch {
			case c.want == 0 && ok:
				t.Errorf("matched %+v, want none", l)
			case c.want != 0 && !ok:
				t.Errorf("no match, want fd %d", c.want)
			case c.want != 0 && l.FD != c.want:
				t.Errorf("matched %+v, want fd %d", l, c.want)
			}
		})
	}
	if _, ok := Match(nil, ap("127.0.0.1:7474"), "public"); ok {
		t.Error("matched in an empty list")
	}
}

func FuzzParseFDNames(f *testing.F) {
	for _, s := range []struct {
		names string
		n     uint8
	}{{"", 0}, {"", 1}, {"public", 1}, {"public:internal", 2}, {"a::b", 3}, {":", 2}, {"a:b", 1}} {
		f.Add(s.names, s.n)
	}
	f.Fuzz(func(t *testing.T, s string, n uint8) {
		names, err := parseFDNames(s, int(n))
		if err != nil {
			if strings.Count(s, ":")+1 == int(n) {
				t.Fatalf("%q for %d fds: %v", s, n, err)
			}
			return
		}
		if len(names) != int(n) {
			t.Fatalf("%q for %d fds gave %d names", s, n, len(names))
		}
		if strings.Join(names, ":") != s {
			t.Fatalf("%q split into %q", s, names)
		}
	})
}

func FuzzParseFDCount(f *testing.F) {
	for _, s := range []string{"", "0", "1", "-1", "2147483644", "2147483645", "x", "+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseFDCount(s)
		if err != nil {
			return
		}
		if n < 0 || n > maxFD-listenFDsStart {
			t.Fatalf("%q gave %d", s, n)
		}
		if s != "" {
			if v, err := strconv.ParseInt(s, 10, 64); err != nil || v != int64(n) {
				t.Fatalf("%q gave %d", s, n)
			}
		}
	})
}
