package netpoll

import (
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newLoop returns a loop that is freed when the test ends (after run's
// cleanup has stopped it, since cleanups run last registered first).
func newLoop(t *testing.T) *Loop {
	t.Helper()
	l, err := NewLoop(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Free)
	return l
}

// run starts l and stops it when the test ends.
func run(t *testing.T, l *Loop) {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- l.Run() }()
	t.Cleanup(func() {
		l.Stop()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// onLoop runs f on l and waits for it.
func onLoop(t *testing.T, l *Loop, f func()) {
	t.Helper()
	done := make(chan struct{})
	if err := l.Post(func() { f(); close(done) }); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("task did not run")
	}
}

func TestPostRunsEveryTaskInOrder(t *testing.T) {
	l := newLoop(t)
	run(t, l)
	const n = 10000
	var got []int
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		if err := l.Post(func() { got = append(got, i); wg.Done() }); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	onLoop(t, l, func() {
		for i, v := range got {
			if v != i {
				t.Fatalf("task %d ran as %d", i, v)
			}
		}
	})
}

func TestPostFromManyGoroutines(t *testing.T) {
	l := newLoop(t)
	run(t, l)
	var ran atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				for l.Post(func() { ran.Add(1) }) == ErrQueueFull {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	onLoop(t, l, func() {})
	if got := ran.Load(); got != 8000 {
		t.Fatalf("ran %d tasks, want 8000", got)
	}
}

func TestPostFailsFastWhenFull(t *testing.T) {
	l := newLoop(t) // not running: nothing drains the queue
	l.limit = 3
	for i := 0; i < 3; i++ {
		if err := l.Post(func() {}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Post(func() {}); err != ErrQueueFull {
		t.Fatalf("Post on a full queue = %v, want ErrQueueFull", err)
	}
	run(t, l)
}

func TestPostAfterStop(t *testing.T) {
	l := newLoop(t)
	go l.Run()
	l.Stop()
	<-l.Done()
	if err := l.Post(func() {}); err != ErrStopped {
		t.Fatalf("Post after stop = %v, want ErrStopped", err)
	}
}

type timerFunc func(now int64)

func (f timerFunc) OnTimer(now int64) { f(now) }

func TestTimersFireInOrder(t *testing.T) {
	l := newLoop(t)
	run(t, l)
	var fired []int
	done := make(chan struct{})
	timers := make([]Timer, 5)
	onLoop(t, l, func() {
		base := l.Now()
		// Scheduled out of order; timer 3 is moved, timer 4 cancelled.
		for _, i := range []int{2, 0, 4, 1, 3} {
			i := i
			l.Schedule(&timers[i], base+int64(i+1)*int64(5*time.Millisecond), timerFunc(func(int64) {
				fired = append(fired, i)
				if i == 3 {
					close(done)
				}
			}))
		}
		l.Schedule(&timers[3], base+int64(30*time.Millisecond), timers[3].h)
		l.Cancel(&timers[4])
		if timers[4].Scheduled() {
			t.Error("cancelled timer still scheduled")
		}
	})
	<-done
	onLoop(t, l, func() {
		want := []int{0, 1, 2, 3}
		if len(fired) != len(want) {
			t.Fatalf("fired %v, want %v", fired, want)
		}
		for i := range want {
			if fired[i] != want[i] {
				t.Fatalf("fired %v, want %v", fired, want)
			}
		}
	})
}

func TestTimerDoesNotFireEarly(t *testing.T) {
	l := newLoop(t)
	run(t, l)
	var tm Timer
	fired := make(chan int64, 1)
	var due int64
	onLoop(t, l, func() {
		due = l.Now() + int64(20*time.Millisecond)
		l.Schedule(&tm, due, timerFunc(func(now int64) { fired <- now }))
	})
	if now := <-fired; now < due {
		t.Fatalf("fired %v early", time.Duration(due-now))
	}
}

func TestTimerHeapRandomised(t *testing.T) {
	var h timerHeap
	ts := make([]Timer, 500)
	for i := range ts {
		ts[i].when = int64((i * 7919) % 1000)
		h.push(&ts[i])
	}
	for i := 0; i < len(ts); i += 3 {
		h.remove(&ts[i])
	}
	last := int64(-1)
	for len(h) > 0 {
		top := h[0]
		if top.when < last {
			t.Fatalf("heap order broken: %d after %d", top.when, last)
		}
		last = top.when
		h.remove(top)
	}
}

type recorder struct {
	events   atomic.Int64
	shutdown atomic.Int64
	onEvent  func()
}

func (r *recorder) OnEvent(uint32) {
	r.events.Add(1)
	if r.onEvent != nil {
		r.onEvent()
	}
}
func (r *recorder) OnShutdown() { r.shutdown.Add(1) }

func socketpair(t *testing.T) (int, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fds[0], fds[1]
}

// An event already taken from epoll for an fd that a handler then closes,
// and whose number is reused at once, must not reach the new owner: with
// Close, and with CloseUnshared, which leaves the registration to the
// kernel.
func TestStaleEventNeverReachesRecycledFD(t *testing.T) {
	t.Run("Close", func(t *testing.T) { testStaleEvent(t, (*Loop).Close) })
	t.Run("CloseUnshared", func(t *testing.T) { testStaleEvent(t, (*Loop).CloseUnshared) })
}

func testStaleEvent(t *testing.T, closeFD func(*Loop, int) error) {
	l := newLoop(t)
	a1, b1 := socketpair(t)
	a2, b2 := socketpair(t)
	defer unix.Close(b1)
	defer unix.Close(b2)
	fresh := &recorder{}
	var h1, h2 recorder
	swapped := false
	// Whichever handler runs first closes the other's fd and puts an
	// empty pipe, which is never readable, under the same number.
	recycle := func(victim int) func() {
		return func() {
			if swapped {
				return
			}
			swapped = true
			if err := closeFD(l, victim); err != nil {
				t.Error(err)
			}
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
				t.Error(err)
				return
			}
			if p[0] != victim { // the kernel may already have reused the number
				if err := unix.Dup3(p[0], victim, unix.O_CLOEXEC); err != nil {
					t.Error(err)
				}
				unix.Close(p[0])
			}
			// The write end stays open and unused: the read end is never
			// readable, so no event for it is legitimate.
			t.Cleanup(func() { unix.Close(p[1]) })
			if err := l.Add(victim, EventIn, fresh); err != nil {
				t.Error(err)
			}
		}
	}
	h1.onEvent = recycle(a2)
	h2.onEvent = recycle(a1)
	// Registered before Run, so both become ready before the first wait
	// and arrive in one batch.
	if err := l.Add(a1, EventIn, &h1); err != nil {
		t.Fatal(err)
	}
	if err := l.Add(a2, EventIn, &h2); err != nil {
		t.Fatal(err)
	}
	unix.Write(b1, []byte("x"))
	unix.Write(b2, []byte("x"))
	run(t, l)
	onLoop(t, l, func() {})
	onLoop(t, l, func() {
		if !swapped {
			t.Fatal("no handler ran")
		}
		if h1.events.Load()+h2.events.Load() != 1 {
			t.Errorf("old handlers got %d events, want 1", h1.events.Load()+h2.events.Load())
		}
		if n := fresh.events.Load(); n != 0 {
			t.Errorf("the recycled fd's new handler got %d stale events", n)
		}
	})
}

// CloseUnshared on a descriptor whose file is shared after all (a dup
// outlives it) leaves the registration alive in the kernel: its events
// must reach no handler, and the loop must go on.
func TestCloseUnsharedOfASharedFile(t *testing.T) {
	l := newLoop(t)
	run(t, l)
	a, b := socketpair(t)
	defer unix.Close(b)
	dup, err := unix.Dup(a)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dup)
	var h recorder
	onLoop(t, l, func() {
		if err := l.Add(a, EventIn, &h); err != nil {
			t.Fatal(err)
		}
	})
	onLoop(t, l, func() {
		if err := l.CloseUnshared(a); err != nil {
			t.Error(err)
		}
	})
	for i := 0; i < 10; i++ {
		unix.Write(b, []byte("x"))
		onLoop(t, l, func() {})
	}
	if n := h.events.Load(); n != 0 {
		t.Errorf("handler of a closed fd got %d events", n)
	}
}

func TestShutdownReachesEveryHandler(t *testing.T) {
	l := newLoop(t)
	errc := make(chan error, 1)
	go func() { errc <- l.Run() }()
	var hs [4]recorder
	var peers []int
	onLoop(t, l, func() {
		for i := range hs {
			a, b := socketpair(t)
			peers = append(peers, b)
			if err := l.Add(a, EventIn, &hs[i]); err != nil {
				t.Error(err)
			}
		}
	})
	l.Stop()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	for i := range hs {
		if n := hs[i].shutdown.Load(); n != 1 {
			t.Errorf("handler %d: OnShutdown called %d times, want 1", i, n)
		}
	}
	// The loop closed what the handlers left open: the peers see EOF.
	for _, b := range peers {
		var buf [1]byte
		if n, err := unix.Read(b, buf[:]); n != 0 || err != nil {
			t.Errorf("peer read = %d, %v; want EOF", n, err)
		}
		unix.Close(b)
	}
}

// A timer cancelled after the loop set its wake-up for it leaves an early
// deadline behind: the loop must wake, find nothing due, and wait for the
// next timer instead of forgetting it; and a deadline that passed must not
// stay in force (a timer that re-arms itself keeps firing).
func TestTimerAfterCancelledOneStillFires(t *testing.T) {
	l := newLoop(t)
	run(t, l)
	fired := make(chan string, 64)
	var early, late, tick Timer
	onLoop(t, l, func() {
		now := Monotonic()
		l.Schedule(&early, now+int64(5*time.Millisecond), timerFunc(func(int64) { fired <- "early" }))
	})
	// The loop has parked with its deadline at early's time.
	onLoop(t, l, func() {
		l.Cancel(&early)
		l.Schedule(&late, Monotonic()+int64(30*time.Millisecond), timerFunc(func(int64) { fired <- "late" }))
	})
	if got := <-fired; got != "late" {
		t.Fatalf("fired %q, want late (early was cancelled)", got)
	}
	n := 0
	var again func(int64)
	again = func(now int64) {
		n++
		fired <- "tick"
		if n < 20 {
			l.Schedule(&tick, now+int64(time.Millisecond), timerFunc(again))
		}
	}
	onLoop(t, l, func() { l.Schedule(&tick, Monotonic()+int64(time.Millisecond), timerFunc(again)) })
	for i := 0; i < 20; i++ {
		if got := <-fired; got != "tick" {
			t.Fatalf("fired %q, want tick", got)
		}
	}
}

// An idle loop is parked in the runtime's netpoller, as a goroutine
// waiting on a socket is: it holds no P, so loops need no GOMAXPROCS of
// their own and any number of them leave the CPU to everything else.
func TestIdleLoopIsParkedInNetpoller(t *testing.T) {
	l := newLoop(t)
	run(t, l)
	onLoop(t, l, func() {}) // running, and now idle
	deadline := time.Now().Add(10 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if !strings.Contains(g, "netpoll.(*Loop).Run") {
				continue
			}
			if strings.Contains(g, "[IO wait") {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("idle loop's goroutine is not parked in the netpoller:\n%s", g)
			}
		}
		runtime.Gosched()
	}
}

// With a single P, loops that wait for events must not keep a posting
// goroutine from running: each round trip here needs the poster and a loop
// to take turns on the one P.
func TestLoopsShareOneP(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var loops [4]*Loop
	for i := range loops {
		loops[i] = newLoop(t)
		run(t, loops[i])
	}
	done := make(chan struct{}, 1)
	start := time.Now()
	for i := 0; i < 2000; i++ {
		if err := loops[i%len(loops)].Post(func() { done <- struct{}{} }); err != nil {
			t.Fatal(err)
		}
		<-done
	}
	// Not a timing goal: a loop that held the P while it slept would be
	// preempted only by sysmon, every 10 ms, making this take 20 s.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("2000 round trips took %v: loops hold the P while they wait", d)
	}
}

// More fds ready at once than one batch takes: every one is delivered,
// although those past the first batch raise no new notification (the loop
// must poll again before it waits). They are registered ready before Run,
// so their notifications may all be spent before the loop's first wait.
func TestMoreReadyThanOneBatch(t *testing.T) {
	l := newLoop(t)
	const n = maxEvents + maxEvents/2
	hs := make([]recorder, n)
	done := make(chan struct{}, n)
	for i := range hs {
		a, b := socketpair(t)
		t.Cleanup(func() { unix.Close(b) })
		unix.Write(b, []byte("x"))
		hs[i].onEvent = func() { done <- struct{}{} }
		if err := l.Add(a, EventIn, &hs[i]); err != nil {
			t.Fatal(err)
		}
	}
	runtime.Gosched() // let the runtime's netpoller take the notifications
	run(t, l)
	timeout := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-done:
		case <-timeout:
			t.Fatalf("%d of %d ready fds delivered", i, n)
		}
	}
}

// Modify changes what wakes a handler: after a change to RDHUP only, data
// raises no event, the peer's shutdown does; an fd never added is refused.
func TestModify(t *testing.T) {
	l := newLoop(t)
	run(t, l)
	a, b := socketpair(t)
	defer unix.Close(b)
	events := make(chan uint32, 16)
	h := &eventsTo{ch: events}
	// t.Fatal must not end the loop's goroutine: errors are checked here.
	var addErr, modErr, strayErr error
	onLoop(t, l, func() {
		addErr = l.Add(a, EventIn|EventRdHup, h)
		modErr = l.Modify(a, EventRdHup)
		strayErr = l.Modify(b, EventIn)
	})
	if addErr != nil || modErr != nil {
		t.Fatalf("Add: %v; Modify: %v", addErr, modErr)
	}
	if strayErr == nil {
		t.Error("Modify of an fd never added: no error")
	}
	unix.Write(b, []byte("x"))
	// The data's readiness is queued before this task's wakeup: an event
	// for it would be delivered by the time the task has run.
	onLoop(t, l, func() {})
	select {
	case ev := <-events:
		t.Fatalf("event %#x for data, registered for RDHUP only", ev)
	default:
	}
	unix.Shutdown(b, unix.SHUT_WR)
	select {
	case ev := <-events:
		if ev&EventRdHup == 0 {
			t.Fatalf("event %#x, want RDHUP", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event for the peer's shutdown")
	}
}

type eventsTo struct{ ch chan uint32 }

func (h *eventsTo) OnEvent(ev uint32) { h.ch <- ev }
func (h *eventsTo) OnShutdown()       {}
