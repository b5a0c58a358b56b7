package duplex

import (
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/netpoll"
)

// Events are the epoll events both sockets of a duplex must be registered
// for (edge-triggered): readiness both ways, the peer's FIN, and TCP urgent
// data, which changes how a direction reads.
const Events = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLPRI

// Side names one socket of a duplex.
type Side uint8

const (
	Client   Side = 0 // the accepted connection
	Upstream Side = 1 // the connection to the endpoint
)

func (s Side) String() string {
	if s == Client {
		return "client"
	}
	return "upstream"
}

// Status is the state of a duplex after Pump.
type Status uint8

const (
	// Running: bytes may still flow; wait for more events.
	Running Status = iota
	// Finished: both directions reached EOF, every byte was delivered and
	// both sockets were shut down for writing.
	Finished
	// Failed: a socket reported an error (a reset, most often); Err and
	// FailedSide say which and why. The other socket should be reset too.
	Failed
)

// half is one direction: src → dst.
//
// Invariants: pipe is non-nil exactly while held > 0 (bytes read from src
// not yet written to dst); a direction reads src only when held == 0, so
// EAGAIN from splice-in always means src is drained, never that the pipe
// is full; shut implies eof and held == 0.
type half struct {
	src, dst  int
	pipe      *Pipe
	held      int
	readable  bool // src may have bytes or EOF (edge seen, EAGAIN not yet)
	hup       bool // src reported RDHUP, HUP or ERR: read it to the end
	srcErr    bool // src reported ERR: check it even after its EOF
	urgent    bool // src received TCP urgent data: no short-read rule, no splice
	writable  bool // dst may take bytes
	eof       bool // src returned EOF
	shut      bool // dst was shut down for writing
	bulk      bool // a read filled the buffer: move by splice from now on
	noSplice  bool // the kernel refused splice on src: copy instead
	delivered uint64
}

// Duplex pumps bytes both ways between a client and an upstream socket. It
// is embedded in its owner's connection state, owned by one loop, and not
// safe for concurrent use. It never closes the sockets; its owner does, after
// Release.
type Duplex struct {
	pool   *Pool
	h      [2]half // h[0]: client → upstream; h[1]: upstream → client
	moved  bool
	err    error
	failed Side
}

// Init prepares d to pump between the client and upstream sockets, which must
// be connected and non-blocking.
func (d *Duplex) Init(pool *Pool, client, upstream int) {
	*d = Duplex{pool: pool}
	d.h[0] = half{src: client, dst: upstream}
	d.h[1] = half{src: upstream, dst: client}
}

// Ready records epoll events reported for side s. Call Pump after.
func (d *Duplex) Ready(s Side, events uint32) {
	const readable = unix.EPOLLIN | unix.EPOLLPRI | unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
	const writable = unix.EPOLLOUT | unix.EPOLLHUP | unix.EPOLLERR
	const hangup = unix.EPOLLRDHUP | unix.EPOLLHUP | unix.EPOLLERR
	h := &d.h[s]
	if events&readable != 0 {
		h.readable = true
	}
	if events&hangup != 0 {
		h.hup = true
	}
	if events&unix.EPOLLERR != 0 {
		h.srcErr = true
	}
	if events&unix.EPOLLPRI != 0 {
		// TCP urgent data: read(2) stops at the urgent mark and steps
		// over the urgent byte (which is not forwarded: out-of-band
		// data has no place in a byte stream), while splice stops there
		// for good. From now on this direction reads to EAGAIN, without
		// splice.
		h.urgent, h.readable = true, true
	}
	if events&writable != 0 {
		d.h[1-s].writable = true
	}
}

// Pump moves whatever can move now in both directions. Moved reports
// whether the call transferred any byte or EOF.
func (d *Duplex) Pump() Status {
	d.moved = false
	for i := range d.h {
		if err := d.pump(&d.h[i]); err != nil {
			return Failed
		}
	}
	if d.h[0].shut && d.h[1].shut {
		return Finished
	}
	return Running
}

// Moved reports whether the last Pump transferred a byte or an EOF.
func (d *Duplex) Moved() bool { return d.moved }

// Err is the error that made Pump return Failed.
func (d *Duplex) Err() error { return d.err }

// FailedSide is the socket whose error made Pump return Failed.
func (d *Duplex) FailedSide() Side { return d.failed }

// Bytes returns the bytes delivered client → upstream and upstream → client.
func (d *Duplex) Bytes() (up, down uint64) { return d.h[0].delivered, d.h[1].delivered }

// Release destroys the pipes d still holds, each one holding bytes (the
// connection is being torn down): a pipe goes back to the pool as soon as
// it is emptied.
func (d *Duplex) Release() {
	for i := range d.h {
		h := &d.h[i]
		if h.pipe != nil {
			d.pool.destroy(h.pipe)
			h.pipe = nil
			h.held = 0
		}
	}
}

func (d *Duplex) fail(fd int, err error) error {
	d.err = err
	d.failed = Client
	if fd == d.h[1].src {
		d.failed = Upstream
	}
	return err
}

// pump runs one direction until it can make no more progress. A non-nil
// error means a socket failed; d.err and d.failed are set.
func (d *Duplex) pump(h *half) error {
	for {
		// Deliver what the pipe holds before reading more.
		for h.held > 0 {
			if !h.writable {
				return nil
			}
			n, err := splice(h.pipe.r, h.dst, h.held)
			if err == unix.EAGAIN {
				h.writable = false
				return nil
			}
			if err != nil {
				return d.fail(h.dst, os.NewSyscallError("splice", err))
			}
			h.held -= n
			h.delivered += uint64(n)
			d.moved = true
		}
		if h.pipe != nil {
			d.pool.put(h.pipe)
			h.pipe = nil
		}
		if h.eof {
			if h.srcErr {
				// src failed after its EOF (a reset after a
				// half-close): only SO_ERROR tells, since it will
				// never be read again.
				h.srcErr = false
				if err := sockError(h.src); err != nil {
					return d.fail(h.src, err)
				}
			}
			d.shut(h)
			return nil
		}
		if !h.readable {
			return nil
		}
		p := d.pool.get()
		if p == nil {
			return d.copy(h) // pool exhausted: move bytes without holding any
		}
		var err error
		if h.bulk && !h.noSplice && !h.urgent {
			err = d.spliceIn(h, p)
		} else {
			err = d.readWrite(h, p)
		}
		if h.pipe != p {
			d.pool.put(p)
		}
		if err != nil || !h.readable {
			return err
		}
	}
}

// shut passes h's EOF on once everything before it was delivered:
// shutdown(SHUT_WR) on dst. When the other direction is already shut, both
// sockets are about to be closed, and close sends the FIN by itself.
func (d *Duplex) shut(h *half) {
	if h.shut {
		return
	}
	h.shut = true
	d.moved = true
	other := &d.h[0]
	if h == other {
		other = &d.h[1]
	}
	if !other.shut {
		// ENOTCONN: the peer is already gone; the other direction will
		// see why.
		_ = netpoll.Shutdown(h.dst, unix.SHUT_WR)
	}
}

// spliceIn moves what src holds into the empty pipe p. On return p is
// h.pipe if it holds bytes, else p is still the caller's.
func (d *Duplex) spliceIn(h *half, p *Pipe) error {
	n, err := splice(h.src, p.w, p.size)
	switch {
	case err == unix.EAGAIN:
		h.readable = false
	case err == unix.EINVAL:
		h.noSplice = true
	case err != nil:
		return d.fail(h.src, os.NewSyscallError("splice", err))
	case n == 0:
		h.eof = true
		d.moved = true
	default:
		h.pipe, h.held = p, n
	}
	return nil
}

// readWrite moves one batch through the loop's buffer: small transfers
// cost less copied than spliced. Whatever dst does not take at once is
// parked in the empty pipe p, which then becomes h.pipe. A read that fills
// the buffer marks the direction bulk: later batches are spliced.
func (d *Duplex) readWrite(h *half, p *Pipe) error {
	buf := d.pool.buf
	if len(buf) > p.size {
		buf = buf[:p.size] // leftovers must fit the pipe
	}
	n, err := read(h.src, buf)
	switch {
	case err == unix.EAGAIN:
		h.readable = false
		return nil
	case err != nil:
		return d.fail(h.src, os.NewSyscallError("read", err))
	case n == 0:
		h.eof = true
		d.moved = true
		return nil
	}
	switch {
	case n == len(buf):
		h.bulk = true
	case !h.hup && !h.urgent:
		// A short read emptied the socket's receive queue, and under
		// EPOLLET every later arrival of data raises a new event, so
		// there is no need to read again just to see EAGAIN. A FIN
		// that came with this data was flagged by RDHUP (hup), and
		// then we do read on, to the EOF.
		h.readable = false
	}
	d.moved = true
	m := 0
	if h.writable {
		m, err = write(h.dst, buf[:n])
		if err == unix.EAGAIN {
			m, h.writable = 0, false
		} else if err != nil {
			return d.fail(h.dst, os.NewSyscallError("write", err))
		}
	}
	h.delivered += uint64(m)
	if m == n {
		return nil
	}
	// An empty pipe of at least len(buf) bytes takes the rest in one write.
	k, err := write(p.w, buf[m:n])
	if k > 0 {
		h.pipe, h.held = p, k // never back to the pool while it holds bytes
	}
	if err != nil || k != n-m {
		return d.fail(h.src, os.NewSyscallError("write", errPipeShort(err)))
	}
	return nil
}

// copy moves bytes src → dst through the pool's shared buffer for as long as
// both sides allow. It peeks at src, writes what dst takes, then discards
// exactly that much from src, so nothing is held between calls. Entered
// only with the pipe empty.
func (d *Duplex) copy(h *half) error {
	for h.readable && !h.eof {
		if !h.writable {
			return nil
		}
		m, err := peekMove(h.src, h.dst, d.pool.buf)
		switch {
		case err == unix.EAGAIN && m < 0:
			h.readable = false
			return nil
		case err == unix.EAGAIN:
			h.writable = false
			return nil
		case err == io.EOF:
			h.eof = true
			d.moved = true
		case err != nil && m < 0:
			return d.fail(h.src, err)
		case err != nil:
			return d.fail(h.dst, err)
		default:
			h.delivered += uint64(m)
			d.moved = true
		}
	}
	if h.eof {
		d.shut(h)
	}
	return nil
}

// peekMove moves the head of src's receive queue to dst without holding a
// byte: peeked into buf, written to dst, and exactly what dst took is then
// taken off src. It returns the bytes moved, or io.EOF, or the failure of
// a call: unix.EAGAIN itself, else wrapped. m is -1 when src's call failed
// (nothing to read: EAGAIN), 0 when dst's did (full: EAGAIN).
func peekMove(src, dst int, buf []byte) (m int, err error) {
	n, err := recv(src, buf, unix.MSG_PEEK)
	switch {
	case err == unix.EAGAIN:
		return -1, err
	case err != nil:
		return -1, os.NewSyscallError("recvfrom", err)
	case n == 0:
		return 0, io.EOF
	}
	m, err = write(dst, buf[:n])
	switch {
	case err == unix.EAGAIN:
		return 0, err
	case err != nil:
		return 0, os.NewSyscallError("write", err)
	}
	if _, err := recv(src, buf[:m], unix.MSG_TRUNC); err != nil {
		return -1, os.NewSyscallError("recvfrom", err)
	}
	return m, nil
}

// The syscalls below return their errno as an error (nil for none), so
// callers compare with unix.EAGAIN and wrap the rest once.

func splice(from, to, max int) (int, error) { return result(netpoll.Splice(from, to, max)) }

func read(fd int, p []byte) (int, error) { return result(netpoll.Read(fd, p)) }

func write(fd int, p []byte) (int, error) { return result(netpoll.Write(fd, p)) }

func recv(fd int, p []byte, flags int) (int, error) { return result(netpoll.Recv(fd, p, flags)) }

// sockError returns the pending error of a socket (SO_ERROR), if any.
func sockError(fd int) error {
	v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return os.NewSyscallError("getsockopt", err)
	}
	if v != 0 {
		return os.NewSyscallError("read", unix.Errno(v))
	}
	return nil
}

// Holding reports whether bytes read from one side wait in a pipe for the
// other: closing now would lose them.
func (d *Duplex) Holding() bool { return d.h[0].held > 0 || d.h[1].held > 0 }

// Quiet reports whether d holds nothing and nothing is pending: no byte
// read and not yet written, both receive queues seen empty (EAGAIN or a
// short read), no EOF, hang-up, error or urgent data seen, and a poll of
// both sockets finds them so now (one poll(2), made only when the rest
// holds). Bytes that arrive later are whole segments in a receive queue,
// none read in part, so the sockets can be handed to StartOffload
// (partial false). The poll is what catches a read that stopped short at
// an urgent mark before its EPOLLPRI was seen: the segment behind the mark
// is still queued, read in part.
func (d *Duplex) Quiet() bool {
	for i := range d.h {
		h := &d.h[i]
		if h.held > 0 || h.readable || h.eof || h.hup || h.srcErr || h.urgent {
			return false
		}
	}
	if d.err != nil {
		return false
	}
	const pending = unix.POLLIN | unix.POLLPRI // POLLERR and POLLHUP always count
	fds := [2]unix.PollFd{{Fd: int32(d.h[0].src), Events: pending}, {Fd: int32(d.h[1].src), Events: pending}}
	n, e := netpoll.Poll(fds[:])
	return e == 0 && n == 0
}

func result(n int, e unix.Errno) (int, error) {
	if e != 0 {
		return 0, e
	}
	return n, nil
}

// errPipeShort is the error of a write into an empty pipe that did not
// take everything, which the pipe's size rules out.
func errPipeShort(err error) error {
	if err != nil {
		return err
	}
	return unix.EIO
}
