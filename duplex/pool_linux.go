package duplex

import (
	"os"

	"golang.org/x/sys/unix"
)

// Pipe is a kernel pipe used as a splice buffer. r and w are non-blocking.
type Pipe struct {
	r, w int
	size int // capacity in bytes as granted by the kernel
}

// Pool is a loop's bounded set of pipes. It is owned by one loop and is not
// safe for concurrent use. Every pipe in the free list is empty.
type Pool struct {
	size  int // requested capacity per pipe
	max   int // pipes in use plus free, at most
	open  int // pipes created and not yet destroyed
	free  []*Pipe
	buf   []byte // the loop's copy buffer, shared by all its duplexes
	stats PoolStats
}

// PoolStats counts pool events for operators.
type PoolStats struct {
	Exhausted   uint64 // a direction wanted a pipe and none could be had
	CreateError uint64 // pipe2 or F_SETPIPE_SZ failed
}

// NewPool returns a pool of at most max pipes of size bytes each, with a copy
// buffer of bufSize bytes for the fallback path.
func NewPool(size, max, bufSize int) *Pool {
	return &Pool{size: size, max: max, buf: make([]byte, bufSize)}
}

// Stats returns the pool's counters. Loop only.
func (p *Pool) Stats() PoolStats { return p.stats }

// Open returns how many pipes exist (in use or free). Loop only.
func (p *Pool) Open() int { return p.open }

// Free returns how many empty pipes wait in the pool. Loop only.
func (p *Pool) Free() int { return len(p.free) }

// get returns an empty pipe, or nil when the pool is at its bound or the
// kernel will not give another pipe.
func (p *Pool) get() *Pipe {
	if n := len(p.free); n > 0 {
		pp := p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
		return pp
	}
	if p.open >= p.max {
		p.stats.Exhausted++
		return nil
	}
	pp, err := newPipe(p.size)
	if err != nil {
		p.stats.CreateError++
		p.stats.Exhausted++
		return nil
	}
	p.open++
	return pp
}

// put returns an empty pipe to the pool.
func (p *Pool) put(pp *Pipe) { p.free = append(p.free, pp) }

// destroy closes a pipe that may still hold bytes.
func (p *Pool) destroy(pp *Pipe) {
	unix.Close(pp.r)
	unix.Close(pp.w)
	p.open--
}

// Close destroys every free pipe. Pipes held by live duplexes are destroyed
// when those duplexes close. Loop only.
func (p *Pool) Close() {
	for _, pp := range p.free {
		p.destroy(pp)
	}
	p.free = nil
}

func newPipe(size int) (*Pipe, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_NONBLOCK|unix.O_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	pp := &Pipe{r: fds[0], w: fds[1]}
	got, err := unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, size)
	if err != nil {
		// EPERM past the per-user pipe quota: keep the default size.
		got, err = unix.FcntlInt(uintptr(fds[0]), unix.F_GETPIPE_SZ, 0)
		if err != nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return nil, os.NewSyscallError("fcntl", err)
		}
	}
	pp.size = got
	return pp, nil
}
