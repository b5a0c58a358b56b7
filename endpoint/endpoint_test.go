package endpoint

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// step is one event in an accrual scenario: a connect outcome at a time, or
// (op "check") only the availability check.
type step struct {
	op        string // "fail", "ok" or "check"
	now       int64
	setAside  bool // for "fail": what Failed returns
	available bool // Available(now) after the step
}

func TestAccrual(t *testing.T) {
	const sec = int64(time.Second)
	policy := Accrual{ConsecutiveFailures: 3, Penalty: 10 * time.Second}
	tests := []struct {
		name   string
		policy Accrual
		steps  []step
	}{
		{"fresh endpoint is available at any time", policy, []step{
			{op: "check", now: -1 << 62, available: true},
			{op: "check", now: 0, available: true},
			{op: "check", now: 1 << 62, available: true},
		}},
		{"third failure in a row sets aside until now+penalty", policy, []step{
			{op: "fail", now: 1 * sec, available: true},
			{op: "fail", now: 2 * sec, available: true},
			{op: "fail", now: 3 * sec, setAside: true, available: false},
			{op: "check", now: 13*sec - 1, available: false},
			{op: "check", now: 13 * sec, available: true},
		}},
		{"success breaks the run", policy, []step{
			{op: "fail", now: 1, available: true},
			{op: "fail", now: 2, available: true},
			{op: "ok", now: 3, available: true},
			{op: "fail", now: 4, available: true},
			{op: "fail", now: 5, available: true},
			{op: "fail", now: 6, setAside: true, available: false},
		}},
		{"setting aside starts a new run", policy, []step{
			{op: "fail", now: 0, available: true},
			{op: "fail", now: 0, available: true},
			{op: "fail", now: 0, setAside: true},
			{op: "fail", now: 11 * sec, available: true},
			{op: "fail", now: 11 * sec, available: true},
			{op: "fail", now: 11 * sec, setAside: true, available: false},
			{op: "check", now: 21 * sec, available: true},
		}},
		{"success does not lift a penalty", policy, []step{
			{op: "fail", now: 0, available: true},
			{op: "fail", now: 0, available: true},
			{op: "fail", now: 0, setAside: true},
			{op: "ok", now: 1, available: false},
		}},
		{"negative epoch", policy, []step{
			{op: "fail", now: -100 * sec, available: true},
			{op: "fail", now: -100 * sec, available: true},
			{op: "fail", now: -100 * sec, setAside: true, available: false},
			{op: "check", now: -90 * sec, available: true},
		}},
		{"penalty past the end of time saturates", Accrual{ConsecutiveFailures: 1, Penalty: 1 << 62}, []step{
			{op: "fail", now: 1 << 62, setAside: true, available: false},
			{op: "check", now: 1<<63 - 2, available: false},
		}},
		{"one failure is enough", Accrual{ConsecutiveFailures: 1, Penalty: time.Second}, []step{
			{op: "fail", now: 0, setAside: true, available: false},
			{op: "check", now: sec, available: true},
		}},
		{"zero disables accrual", Accrual{Penalty: time.Second}, []step{
			{op: "fail", now: 0, available: true},
			{op: "fail", now: 0, available: true},
			{op: "fail", now: 0, available: true},
		}},
		{"negative disables accrual", Accrual{ConsecutiveFailures: -1, Penalty: time.Second}, []step{
			{op: "fail", now: 0, available: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(netip.MustParseAddrPort("127.0.0.1:80"), 1)
			for i, s := range tt.steps {
				switch s.op {
				case "fail":
					if got := e.Failed(s.now, tt.policy); got != s.setAside {
						t.Fatalf("step %d: Failed(%d) = %v, want %v", i, s.now, got, s.setAside)
					}
				case "ok":
					e.Succeeded()
				case "check":
				default:
					t.Fatalf("step %d: unknown op %q", i, s.op)
				}
				if got := e.Available(s.now); got != s.available {
					t.Fatalf("step %d (%s): Available(%d) = %v, want %v", i, s.op, s.now, got, s.available)
				}
			}
		})
	}
}

// TestFailedConcurrent checks that exactly one failure per run reports the
// endpoint set aside when many loops fail at once.
func TestFailedConcurrent(t *testing.T) {
	const (
		goroutines = 8
		each       = 300
		run        = 4
	)
	e := New(netip.MustParseAddrPort("127.0.0.1:80"), 1)
	policy := Accrual{ConsecutiveFailures: run, Penalty: time.Second}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		trips int
	)
	for range goroutines {
		wg.Go(func() {
			n := 0
			for range each {
				if e.Failed(0, policy) {
					n++
				}
			}
			mu.Lock()
			trips += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if want := goroutines * each / run; trips != want {
		t.Errorf("%d concurrent failures set the endpoint aside %d times, want %d", goroutines*each, trips, want)
	}
}

func TestAcquireReleaseConcurrent(t *testing.T) {
	e := New(netip.MustParseAddrPort("127.0.0.1:80"), 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				e.Acquire()
				if e.Load() < 1 {
					t.Error("Load < 1 while holding an acquisition")
				}
				e.Release()
			}
		})
	}
	e.Acquire()
	wg.Wait()
	if got := e.Load(); got != 1 {
		t.Errorf("Load = %d after balanced concurrent use plus one Acquire, want 1", got)
	}
}

func TestSockaddr(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatalf("loopback interface: %v", err)
	}
	tests := []struct {
		addr string
		want unix.Sockaddr
	}{
		{"127.0.0.1:80", &unix.SockaddrInet4{Port: 80, Addr: [4]byte{127, 0, 0, 1}}},
		{"[::ffff:10.1.2.3]:65535", &unix.SockaddrInet4{Port: 65535, Addr: [4]byte{10, 1, 2, 3}}},
		{"[::1]:443", &unix.SockaddrInet6{Port: 443, Addr: [16]byte{15: 1}}},
		{"[2001:db8::2]:8080", &unix.SockaddrInet6{Port: 8080, Addr: [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}}},
		{"[fe80::1%7]:22", &unix.SockaddrInet6{Port: 22, ZoneId: 7, Addr: [16]byte{0xfe, 0x80, 15: 1}}},
		{"[fe80::1%lo]:22", &unix.SockaddrInet6{Port: 22, ZoneId: uint32(lo.Index), Addr: [16]byte{0xfe, 0x80, 15: 1}}},
		{"[fe80::1%no-such-interface]:22", &unix.SockaddrInet6{Port: 22, Addr: [16]byte{0xfe, 0x80, 15: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			e := New(netip.MustParseAddrPort(tt.addr), 1)
			if got := fromRaw(e.sa.ptr(), e.sa.len, e.sa.family); !sameSockaddr(got, tt.want) {
				t.Errorf("raw address %#v, want %#v", got, tt.want)
			}
			// WithWeight dials the same address.
			if w := e.WithWeight(2); w.sa != e.sa {
				t.Errorf("WithWeight made a new address")
			}
		})
	}
}

// fromRaw decodes a raw socket address as the kernel reads it.
func fromRaw(sa unsafe.Pointer, n uint32, family int) unix.Sockaddr {
	switch {
	case family == unix.AF_INET && n == unix.SizeofSockaddrInet4:
		r := (*unix.RawSockaddrInet4)(sa)
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		if r.Family != unix.AF_INET {
			return nil
		}
		return &unix.SockaddrInet4{Port: int(p[0])<<8 | int(p[1]), Addr: r.Addr}
	case family == unix.AF_INET6 && n == unix.SizeofSockaddrInet6:
		r := (*unix.RawSockaddrInet6)(sa)
		p := (*[2]byte)(unsafe.Pointer(&r.Port))
		if r.Family != unix.AF_INET6 {
			return nil
		}
		return &unix.SockaddrInet6{Port: int(p[0])<<8 | int(p[1]), ZoneId: r.Scope_id, Addr: r.Addr}
	}
	return nil
}

func sameSockaddr(a, b unix.Sockaddr) bool {
	switch a := a.(type) {
	case *unix.SockaddrInet4:
		b, ok := b.(*unix.SockaddrInet4)
		return ok && a.Port == b.Port && a.Addr == b.Addr
	case *unix.SockaddrInet6:
		b, ok := b.(*unix.SockaddrInet6)
		return ok && a.Port == b.Port && a.ZoneId == b.ZoneId && a.Addr == b.Addr
	}
	return false
}

// Dial reaches listeners on both loopbacks through the raw addresses New
// encoded, port and all, from several goroutines at once sharing them.
func TestDial(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		ln, err := net.Listen(network, map[string]string{"tcp4": "127.0.0.1:0", "tcp6": "[::1]:0"}[network])
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		e := New(netip.MustParseAddrPort(ln.Addr().String()), 1)
		const dials = 8
		accepted := make(chan error, dials)
		go func() {
			for range dials {
				c, err := ln.Accept()
				if err == nil {
					c.Close()
				}
				accepted <- err
			}
		}()
		var wg sync.WaitGroup
		for range dials {
			wg.Go(func() {
				fd, err := Dial(e)
				if err != nil {
					t.Errorf("Dial %v: %v", e.Addr, err)
					accepted <- nil // nothing to accept for this one
					return
				}
				defer unix.Close(fd)
				pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
				if n, err := unix.Poll(pfd, 10_000); n != 1 || err != nil {
					t.Errorf("connect to %v did not complete: %v", e.Addr, err)
				} else if err := ConnectError(fd); err != nil {
					t.Errorf("connect to %v: %v", e.Addr, err)
				}
			})
		}
		wg.Wait()
		for range dials {
			select {
			case err := <-accepted:
				if err != nil {
					t.Fatalf("accept: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%v: not every dial reached the listener", e.Addr)
			}
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		addr   string
		weight float64
		want   string
	}{
		{"127.0.0.1:80", 1, "127.0.0.1:80"},
		{"127.0.0.1:80", 2.5, "127.0.0.1:80*2.5"},
		{"[::1]:443", 3, "[::1]:443*3"},
		{"[::1]:443", 1e-9, "[::1]:443*1e-09"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := New(netip.MustParseAddrPort(tt.addr), tt.weight).String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name   string
		addr   netip.AddrPort
		weight float64
	}{
		{"zero weight", netip.MustParseAddrPort("127.0.0.1:80"), 0},
		{"negative weight", netip.MustParseAddrPort("127.0.0.1:80"), -1},
		{"infinite weight", netip.MustParseAddrPort("127.0.0.1:80"), math.Inf(1)},
		{"NaN weight", netip.MustParseAddrPort("127.0.0.1:80"), math.NaN()},
		{"invalid address", netip.AddrPort{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%v, %v) did not panic", tt.addr, tt.weight)
				}
			}()
			New(tt.addr, tt.weight)
		})
	}
}

func TestWithWeightSharesState(t *testing.T) {
	old := New(netip.MustParseAddrPort("127.0.0.1:80"), 1)
	policy := Accrual{ConsecutiveFailures: 2, Penalty: time.Second}
	old.Acquire()
	old.Acquire()
	old.Failed(0, policy)

	e := old.WithWeight(4)
	if e == old || e.Weight != 4 || old.Weight != 1 || e.Addr != old.Addr {
		t.Fatalf("WithWeight(4) = %v from %v", e, old)
	}
	old.Release()
	if got := e.Load(); got != 1 {
		t.Errorf("Load after releasing through the old endpoint = %d, want 1", got)
	}
	if !e.Failed(0, policy) {
		t.Error("second failure through the new endpoint did not complete the run begun on the old one")
	}
	if old.Available(0) {
		t.Error("old endpoint still available after the shared state was set aside")
	}
}

func TestAllocations(t *testing.T) {
	e := New(netip.MustParseAddrPort("[2001:db8::1]:80"), 2)
	policy := Accrual{ConsecutiveFailures: 2, Penalty: time.Second}
	now := int64(0)
	allocs := testing.AllocsPerRun(100, func() {
		now++
		e.Acquire()
		_ = e.Load()
		_ = e.Available(now)
		e.Failed(now, policy)
		e.Succeeded()
		e.Release()
	})
	if allocs != 0 {
		t.Errorf("endpoint methods allocate %v times per run, want 0", allocs)
	}
}
