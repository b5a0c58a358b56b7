package netpoll

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Epoll event bits handlers receive, re-exported so callers need not import
// unix for them.
const (
	EventIn    = unix.EPOLLIN
	EventOut   = unix.EPOLLOUT
	EventRdHup = unix.EPOLLRDHUP
	EventHup   = unix.EPOLLHUP
	EventErr   = unix.EPOLLERR
)

// Handler receives the readiness events of an fd registered on a Loop. Both
// methods run on the loop's goroutine.
type Handler interface {
	// OnEvent reports epoll event bits for the fd. Registration is
	// edge-triggered: the handler must consume readiness until EAGAIN or
	// remember that it has not.
	OnEvent(events uint32)
	// OnShutdown is called once per registered fd when the loop stops; the
	// handler must release the fd (Loop.Close) and everything it holds.
	OnShutdown()
}

// maxEvents bounds the events taken from one epoll_wait.
const maxEvents = 256

// defaultQueueLimit bounds the tasks waiting in a loop's queue.
const defaultQueueLimit = 65536

// ErrQueueFull is returned by Post when the loop's queue is at its bound.
var ErrQueueFull = errors.New("netpoll: loop queue is full")

// ErrStopped is returned by Post after the loop has stopped.
var ErrStopped = errors.New("netpoll: loop stopped")

type entry struct {
	h   Handler
	gen uint32
}

// Loop is one event loop. Create it with NewLoop, run it with Run on a
// goroutine of its own, stop it with Stop.
type Loop struct {
	id     int
	epfd   int
	wakefd int
	// file holds epfd in the runtime's netpoller, where the loop parks
	// while it has nothing to do (see wait); raw reaches it.
	file *os.File
	raw  syscall.RawConn

	// Owned by the loop goroutine.
	table    []entry // indexed by fd
	gen      uint32
	timers   timerHeap
	now      int64
	events   []unix.EpollEvent
	nfds     int
	deadline int64              // Monotonic time file's read deadline is set for; 0: none
	probe    func(uintptr) bool // l.poll, bound once
	polled   int                // events the last probe took
	pollErr  unix.Errno         // its error

	// Shared with posting goroutines.
	mu       sync.Mutex
	tasks    []func()
	spare    []func()
	limit    int
	notified atomic.Bool
	stopping atomic.Bool
	freed    atomic.Bool
	closed   bool
	done     chan struct{}
}

// NewLoop creates a loop with its epoll instance and wakeup eventfd.
func NewLoop(id int) (*Loop, error) {
	// O_NONBLOCK has no effect on epoll_wait (its timeout rules) but tells
	// os.NewFile that the runtime's netpoller may watch the descriptor.
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	file := os.NewFile(uintptr(epfd), "epoll")
	raw, err := file.SyscallConn()
	if err == nil {
		// Only a descriptor the netpoller holds takes a deadline.
		err = file.SetReadDeadline(time.Time{})
	}
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("netpoll: the runtime cannot poll an epoll descriptor: %w", err)
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		file.Close()
		return nil, os.NewSyscallError("eventfd", err)
	}
	l := &Loop{
		id:     id,
		epfd:   epfd,
		wakefd: wakefd,
		file:   file,
		raw:    raw,
		events: make([]unix.EpollEvent, maxEvents),
		limit:  defaultQueueLimit,
		done:   make(chan struct{}),
		now:    Monotonic(),
	}
	l.probe = l.poll
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(wakefd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &ev); err != nil {
		unix.Close(wakefd)
		file.Close()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	return l, nil
}

// ID is the loop's index among its siblings.
func (l *Loop) ID() int { return l.id }

// Now is the loop's clock (Monotonic), read once per wakeup. Loop only.
func (l *Loop) Now() int64 { return l.now }

// Len is the number of fds registered on the loop. Loop only.
func (l *Loop) Len() int { return l.nfds }

// Add registers fd with h for the given epoll events; EPOLLET is added. The
// loop owns fd from now on: it must be released with Close. Loop only.
func (l *Loop) Add(fd int, events uint32, h Handler) error {
	l.gen++
	if l.gen == 0 {
		l.gen = 1
	}
	ev := unix.EpollEvent{Events: events | unix.EPOLLET, Fd: int32(fd), Pad: int32(l.gen)}
	if e := epollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev); e != 0 {
		return os.NewSyscallError("epoll_ctl", e)
	}
	if fd >= len(l.table) {
		n := 2 * len(l.table)
		if n <= fd {
			n = fd + 64
		}
		t := make([]entry, n)
		copy(t, l.table)
		l.table = t
	}
	l.table[fd] = entry{h: h, gen: l.gen}
	l.nfds++
	return nil
}

// Close removes fd from epoll, then closes it. Events already taken from
// the kernel for fd are dropped. Close must be called exactly once per fd
// given to Add. Loop only.
func (l *Loop) Close(fd int) error {
	if fd < len(l.table) && l.table[fd].h != nil {
		l.table[fd] = entry{}
		l.nfds--
		// The fd is closed right after; EPOLL_CTL_DEL can only fail if it
		// was never added, which the table rules out.
		_ = epollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	}
	if e := closeFD(fd); e != 0 {
		return os.NewSyscallError("close", e)
	}
	return nil
}

// Modify changes the epoll events fd is registered for (EPOLLET is added);
// its handler and generation stay. Loop only.
func (l *Loop) Modify(fd int, events uint32) error {
	if fd >= len(l.table) || l.table[fd].h == nil {
		return os.NewSyscallError("epoll_ctl", unix.ENOENT)
	}
	ev := unix.EpollEvent{Events: events | unix.EPOLLET, Fd: int32(fd), Pad: int32(l.table[fd].gen)}
	if e := epollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &ev); e != 0 {
		return os.NewSyscallError("epoll_ctl", e)
	}
	return nil
}

// CloseUnshared is Close for an fd that is the only descriptor of its file
// in any process, such as a socket this process accepted or created and
// never duplicated: closing it drops its registration in the kernel (an
// epoll registration lives as long as the file), so it saves Close's
// EPOLL_CTL_DEL, two system calls per proxied connection. Were the file
// shared after all, events for the old number would still be told apart by
// their generation tag, and only cost wakeups. Loop only.
func (l *Loop) CloseUnshared(fd int) error {
	if fd < len(l.table) && l.table[fd].h != nil {
		l.table[fd] = entry{}
		l.nfds--
	}
	if e := closeFD(fd); e != 0 {
		return os.NewSyscallError("close", e)
	}
	return nil
}

// Schedule arms t to call h at when (monotonic nanoseconds), replacing any
// earlier schedule of t. Loop only.
func (l *Loop) Schedule(t *Timer, when int64, h TimerHandler) {
	t.h = h
	if t.idx != 0 {
		t.when = when
		l.timers.fix(t.idx - 1)
		return
	}
	t.when = when
	l.timers.push(t)
}

// Cancel disarms t if it is scheduled. Loop only.
func (l *Loop) Cancel(t *Timer) {
	if t.idx != 0 {
		l.timers.remove(t)
	}
}

// Post queues f to run on the loop and wakes it. It fails fast when the
// queue is at its bound or the loop has stopped. Safe from any goroutine.
func (l *Loop) Post(f func()) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrStopped
	}
	if len(l.tasks) >= l.limit {
		l.mu.Unlock()
		return ErrQueueFull
	}
	l.tasks = append(l.tasks, f)
	l.mu.Unlock()
	l.wake()
	return nil
}

func (l *Loop) wake() {
	if !l.notified.CompareAndSwap(false, true) {
		return
	}
	one := uint64(1)
	for {
		_, err := unix.Write(l.wakefd, (*[8]byte)(unsafe.Pointer(&one))[:])
		if err != unix.EINTR {
			// EAGAIN means the counter is saturated: the loop is
			// already due to wake.
			return
		}
	}
}

// Stop asks the loop to shut down: every registered handler gets
// OnShutdown, then Run returns. Unlike a posted task it cannot be refused
// by a full queue. Safe from any goroutine; idempotent.
func (l *Loop) Stop() {
	l.stopping.Store(true)
	if !l.freed.Load() {
		l.wake()
	}
}

// Done is closed when Run has returned.
func (l *Loop) Done() <-chan struct{} { return l.done }

// Run runs the loop on the calling goroutine until Stop. It returns the
// first error of epoll_wait other than EINTR, after shutting the loop down.
func (l *Loop) Run() error {
	defer close(l.done)
	var err error
	for !l.stopping.Load() {
		var n int
		n, err = l.wait()
		if err != nil {
			break
		}
		l.now = Monotonic()
		l.dispatch(n)
		l.runTimers()
	}
	l.shutdown()
	return err
}

// wait takes the next batch of events, parking the loop until one arrives
// or the nearest timer is due.
//
// The loop first polls its epoll instance without blocking, a raw syscall
// that keeps its P: a busy loop never leaves the CPU or the scheduler's
// sight. Only when nothing is ready does it park, through the runtime's
// own netpoller, which watches the epoll descriptor like any socket (an
// epoll instance is readable while it has events ready) and whose read
// deadline is the nearest timer. A parked loop holds no P and no thread, so
// loops need no GOMAXPROCS of their own, are not preempted by sysmon while
// they sleep, and are woken by whichever thread polls the network, as a
// goroutine blocked on a net.Conn is. Registration is edge-triggered there,
// which is why the loop parks only after a poll that found nothing: an
// event that arrives after that poll marks the descriptor ready, and the
// park returns at once.
func (l *Loop) wait() (int, error) {
	if len(l.timers) > 0 {
		when := l.timers[0].when
		d := when - Monotonic()
		if d <= 0 {
			// A timer is due: take what is ready, do not wait.
			l.poll(0)
			return l.result()
		}
		// A deadline later than the nearest timer is moved forward; an
		// earlier one is left to fire, find nothing due and be set again,
		// which is cheaper than moving it each time a timer is cancelled.
		if l.deadline <= 0 || when < l.deadline {
			l.deadline = when
			_ = l.file.SetReadDeadline(time.Now().Add(time.Duration(d)))
		}
	} else if l.deadline < 0 {
		// A deadline that passed stays in force until cleared: every
		// wait would fail at once.
		l.deadline = 0
		_ = l.file.SetReadDeadline(time.Time{})
	}
	l.polled, l.pollErr = 0, 0
	err := l.raw.Read(l.probe)
	switch {
	case err == nil:
		return l.result()
	case errors.Is(err, os.ErrDeadlineExceeded):
		l.deadline = -1
		return 0, nil
	}
	return 0, fmt.Errorf("netpoll: waiting on epoll: %w", err)
}

// poll is a non-blocking epoll_pwait. It reports whether the loop has
// something to do: events, or an error to return. EINTR counts as
// something, an empty batch, so that the loop polls again before it parks.
func (l *Loop) poll(uintptr) bool {
	r, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(l.epfd),
		uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
	l.polled, l.pollErr = int(r), e
	if e != 0 {
		l.polled = 0
	}
	return l.polled > 0 || e != 0
}

func (l *Loop) result() (int, error) {
	switch l.pollErr {
	case 0, unix.EINTR:
		return l.polled, nil
	}
	return 0, os.NewSyscallError("epoll_pwait", l.pollErr)
}

func (l *Loop) dispatch(n int) {
	woke := false
	for i := 0; i < n; i++ {
		ev := &l.events[i]
		fd := int(ev.Fd)
		if fd == l.wakefd {
			woke = true
			continue
		}
		l.deliver(fd, uint32(ev.Pad), ev.Events)
	}
	if woke {
		l.runTasks()
	}
}

func (l *Loop) deliver(fd int, gen uint32, events uint32) {
	if fd < 0 || fd >= len(l.table) {
		return
	}
	e := l.table[fd]
	if e.h == nil || e.gen != gen {
		return // closed, or the number now belongs to someone else
	}
	e.h.OnEvent(events)
}

func (l *Loop) runTimers() {
	for len(l.timers) > 0 {
		t := l.timers[0]
		if t.when > l.now {
			return
		}
		l.timers.remove(t)
		t.h.OnTimer(l.now)
	}
}

func (l *Loop) runTasks() {
	var buf [8]byte
	_, _ = unix.Read(l.wakefd, buf[:])
	l.notified.Store(false)
	l.mu.Lock()
	tasks := l.tasks
	l.tasks = l.spare[:0]
	l.mu.Unlock()
	for i, f := range tasks {
		f()
		tasks[i] = nil
	}
	l.mu.Lock()
	l.spare = tasks[:0]
	l.mu.Unlock()
}

// shutdown gives every registered handler OnShutdown, runs tasks posted
// until then, and releases the loop's own fds.
func (l *Loop) shutdown() {
	l.mu.Lock()
	l.closed = true
	tasks := l.tasks
	l.tasks = nil
	l.mu.Unlock()
	for _, f := range tasks {
		f()
	}
	for fd := range l.table {
		if h := l.table[fd].h; h != nil {
			h.OnShutdown()
		}
	}
	for fd := range l.table {
		if l.table[fd].h != nil {
			// A handler that did not release its fd: do it for it.
			_ = l.Close(fd)
		}
	}
	l.timers = nil
	// epfd and wakefd stay open until Free: another goroutine may be in
	// the middle of a Post or Stop, and a closed wakefd number could be
	// reused by someone's socket before its eventfd write lands.
}

// Free closes the loop's epoll and eventfd descriptors. Call it once Run
// has returned and nothing will Post to or Stop the loop again.
func (l *Loop) Free() {
	if l.freed.CompareAndSwap(false, true) {
		unix.Close(l.wakefd)
		l.file.Close() // and epfd with it
	}
}

// String names the loop in logs.
func (l *Loop) String() string { return fmt.Sprintf("loop%d", l.id) }
