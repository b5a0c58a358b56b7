package duplex

// Kernel-offloaded streams (an experiment, issue 13 part 3): a BPF sk_skb
// verdict program forwards each socket's data to its peer's send queue, so
// bytes move with no wakeup of the loop per batch. The loop hears of the
// stream only at a FIN, an error, or its deadlines.
//
// Three maps, shared by every loop, made on first use:
//
//   - targets, a SOCKHASH: each socket under its peer's key. A key is a
//     socket's own 4-tuple as its sk_skb program reads it (local IPv4,
//     remote IPv4, local port in host order, remote port in network
//     order), so the program finds the peer from its skb alone.
//   - verdict, a SOCKHASH with the program attached: each socket under its
//     own key. A socket is put here only once both are in targets, so no
//     byte is ever redirected to a peer not yet there (which would drop it).
//   - counters, a HASH: per socket, the bytes it received and forwarded
//     and the CLOCK_MONOTONIC time of the last batch, written by the
//     program and read by the loop at idle deadlines and at close.
//
// A FIN is passed on once the kernel has written every byte before it to
// the peer: the bytes the source received since the offload (TCP_INFO)
// against those the program forwarded (counters), and those against what
// the destination's send queue took (bytes acked plus SIOCOUTQ).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/switchyard-proxy/switchyard/netpoll"
)

// OffloadEvents are the epoll events an offloaded socket is registered for:
// its peer's FIN; errors and hang-ups come unasked. Readiness is left out,
// since the kernel, not the loop, moves the bytes.
const OffloadEvents = unix.EPOLLRDHUP

// offloadMaxSockets bounds the sockets offloaded at once; past it streams
// are spliced.
const offloadMaxSockets = 1 << 17

// offloadSndBuf is the send buffer of an offloaded socket. The kernel
// sends what the program redirects from a work item that, finding the
// send buffer half full, sleeps a jiffy (4 ms at HZ=250); and since no one
// polls the socket for writing, TCP never grows its buffer past the
// initial one. Measured on the 2-core VM, P1 loopback: autotuned 4.7 Gb/s,
// 4 MiB 8.4, 16 MiB 8.5, 32 MiB 8.5; P4: 15.5, 16.9, 19.0, 18.8.
const offloadSndBuf = 16 << 20

// Offsets in struct __sk_buff (include/uapi/linux/bpf.h).
const (
	skbLen        = 0
	skbRemoteIP4  = 92
	skbLocalIP4   = 96
	skbRemotePort = 132
	skbLocalPort  = 136
)

// sockKey is a socket's 4-tuple as its sk_skb program reads it.
type sockKey [16]byte

// sockCount is a socket's value in counters, as the program writes it.
type sockCount struct {
	Bytes uint64 // received and forwarded to the peer
	Last  uint64 // CLOCK_MONOTONIC of the last batch
}

type offloader struct {
	targets, verdict, counters *ebpf.Map
	prog                       *ebpf.Program
	clockBase                  int64 // CLOCK_MONOTONIC minus netpoll.Monotonic
}

var (
	offloadMu    sync.Mutex
	offloadState atomic.Pointer[offloader]
)

// loadOffloader makes the maps and the program once per process. The
// router calls it (OffloadSupported) when it builds a configuration that
// wants them, so that no event loop waits for the verifier. A failure is
// not kept: the next configuration (a reload, once the operator gave the
// capability or raised the memlock limit) tries again. An event loop only
// reads the pointer, and never makes an offloader itself: when the router
// could not, its streams are spliced.
func loadOffloader() (*offloader, error) {
	if o := offloadState.Load(); o != nil {
		return o, nil
	}
	return nil, errNoOffloader
}

var errNoOffloader = errors.New("the maps and program were not made: see the warning logged when the configuration was loaded")

func newOffloader() (_ *offloader, err error) {
	o := &offloader{}
	defer func() {
		if err != nil {
			o.close() // what was made before the failure: its fds
		}
	}()
	sockhash := func() (*ebpf.Map, error) {
		return ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.SockHash, KeySize: 16, ValueSize: 4, MaxEntries: offloadMaxSockets})
	}
	if o.targets, err = sockhash(); err != nil {
		return nil, fmt.Errorf("sockhash: %w", err)
	}
	if o.verdict, err = sockhash(); err != nil {
		return nil, fmt.Errorf("sockhash: %w", err)
	}
	o.counters, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 16, ValueSize: 16,
		MaxEntries: offloadMaxSockets, Flags: unix.BPF_F_NO_PREALLOC})
	if err != nil {
		return nil, fmt.Errorf("hash: %w", err)
	}
	o.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "switchyard_fwd",
		Type:         ebpf.SkSKB,
		AttachType:   ebpf.AttachSkSKBStreamVerdict,
		License:      "GPL",
		Instructions: verdictProgram(o.counters.FD(), o.targets.FD()),
	})
	if err != nil {
		return nil, fmt.Errorf("sk_skb program: %w", err)
	}
	err = link.RawAttachProgram(link.RawAttachProgramOptions{
		Target: o.verdict.FD(), Program: o.prog, Attach: ebpf.AttachSkSKBStreamVerdict,
	})
	if err != nil {
		return nil, fmt.Errorf("sk_skb attach: %w", err)
	}
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return nil, os.NewSyscallError("clock_gettime", err)
	}
	o.clockBase = ts.Nano() - netpoll.Monotonic()
	return o, nil
}

// close releases the maps and program of an offloader that could not be
// completed (a complete one lives as long as the process).
func (o *offloader) close() {
	for _, m := range []*ebpf.Map{o.targets, o.verdict, o.counters} {
		if m != nil {
			_ = m.Close()
		}
	}
	if o.prog != nil {
		_ = o.prog.Close()
	}
}

// OffloadSupported reports why streams cannot be offloaded here (no root,
// a kernel without sockmap), or nil. It makes the maps and the program.
func OffloadSupported() error {
	offloadMu.Lock()
	defer offloadMu.Unlock()
	if offloadState.Load() != nil {
		return nil
	}
	o, err := newOffloader()
	if err != nil {
		return err
	}
	offloadState.Store(o)
	return nil
}

// verdictProgram counts each batch a socket receives under the socket's own
// key, then redirects it to the egress of the socket stored under that key
// in targets: the peer. An empty skb (a bare FIN) is dropped: the loop
// passes FINs on itself, after the bytes.
func verdictProgram(counters, targets int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, skbLen, asm.Word),
		asm.JEq.Imm(asm.R7, 0, "drop"),
		asm.LoadMem(asm.R2, asm.R6, skbLocalIP4, asm.Word),
		asm.StoreMem(asm.RFP, -16, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, asm.R6, skbRemoteIP4, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, asm.R6, skbLocalPort, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, asm.R6, skbRemotePort, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R2, asm.Word),

		asm.LoadMapPtr(asm.R1, counters),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "redirect"),
		asm.StoreXAdd(asm.R0, asm.R7, asm.DWord),
		asm.Mov.Reg(asm.R8, asm.R0),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.R8, 8, asm.R0, asm.DWord),

		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("redirect"),
		asm.LoadMapPtr(asm.R2, targets),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -16),
		asm.Mov.Imm(asm.R4, 0), // egress: out of the peer
		asm.FnSkRedirectHash.Call(),
		asm.Return(),

		asm.Mov.Imm(asm.R0, 0).WithSymbol("drop"), // SK_DROP
		asm.Return(),
	}
}

// Why a stream asked to be offloaded is spliced instead.
const (
	FallbackBPF      = "bpf"       // the maps or program could not be made (no root, old kernel)
	FallbackNotIPv4  = "not_ipv4"  // a socket is not IPv4
	FallbackState    = "state"     // a socket is no longer established (a FIN came first)
	FallbackBusy     = "busy"      // a peer would not take the bytes queued before the offload
	FallbackMapsFull = "maps_full" // offloadMaxSockets reached
	FallbackOther    = "other"
)

var fallbackReasons = [...]string{FallbackBPF, FallbackNotIPv4, FallbackState, FallbackBusy, FallbackMapsFull, FallbackOther}

var (
	fallbacks [len(fallbackReasons)]atomic.Uint64
	offloaded atomic.Uint64
)

// OffloadsStarted returns how many streams were offloaded. Safe from any
// goroutine.
func OffloadsStarted() uint64 { return offloaded.Load() }

// OffloadError is why StartOffload declined a stream; it is spliced instead.
type OffloadError struct {
	Reason string // one of the Fallback constants
	Err    error
	// First: the first fallback of this reason in the process, worth a
	// log line; later ones are only counted.
	First bool
	// Up and Down were moved client → upstream and upstream → client
	// before the offload was declined: the owner counts them, its Duplex
	// will not.
	Up, Down uint64
	// Broken: the program had begun to move one socket's bytes when the
	// kernel refused the other socket. Where those bytes are (sent, or
	// dropped with the peer's psock) cannot be known, so the stream
	// cannot go on spliced: reset both ends.
	Broken bool
}

func (e *OffloadError) Error() string { return "offload " + e.Reason + ": " + e.Err.Error() }
func (e *OffloadError) Unwrap() error { return e.Err }

// fallback counts a decline for reason, one of the Fallback constants.
func fallback(reason string, err error) *OffloadError {
	i := slices.Index(fallbackReasons[:], reason)
	return &OffloadError{Reason: reason, Err: err, First: fallbacks[i].Add(1) == 1}
}

// OffloadFallbacks returns how many streams were spliced for want of an
// offload, by reason. Safe from any goroutine.
func OffloadFallbacks() map[string]uint64 {
	m := make(map[string]uint64, len(fallbackReasons))
	for i, r := range fallbackReasons {
		m[r] = fallbacks[i].Load()
	}
	return m
}

// Offload is a stream whose bytes the kernel moves. Like Duplex it is owned
// by one loop and never closes the sockets; its owner calls Stop before
// closing them.
//
// Invariants: both sockets are in targets, verdict and counters from
// StartOffload to Stop; shut[s] implies eof[s]; side s's FIN was passed on
// (the other side shut for writing) exactly when shut[s] and not shut[1-s]
// before it.
type Offload struct {
	o      *offloader
	fd     [2]int
	key    [2]sockKey
	baseRx [2]uint64 // TCP bytes_received of side s when offloaded, less its unread bytes
	baseW  [2]uint64 // bytes written into side s's send queue when offloaded
	pre    [2]uint64 // bytes from side s moved before the kernel took them: by StartOffload itself, or Carry
	eof    [2]bool   // side s sent its FIN
	shut   [2]bool   // side s's FIN was dealt with
	stats  [2]sockCount
	err    error
	failed Side
	poll   int64 // the wait before the next drain check, doubled each time
	done   bool  // Stop was called
}

// StartOffload puts a connected client and upstream socket in the kernel's
// hands. Nothing may have been read from either that is not yet written to
// the other; if something was read from the client (a PROXY header), say
// so with partial, and what the client has queued is moved first through
// pool's buffer. On error (an *OffloadError) the sockets are as they were,
// but for the bytes the error counts as moved: splice them, unless the
// error says Broken.
func StartOffload(pool *Pool, client, upstream int, partial bool) (*Offload, error) {
	o, err := loadOffloader()
	if err != nil {
		return nil, fallback(FallbackBPF, err)
	}
	f := &Offload{o: o, fd: [2]int{client, upstream}}
	for s := range f.fd {
		if f.key[s], err = keyOf(f.fd[s]); err != nil {
			return nil, fallback(FallbackNotIPv4, err)
		}
	}
	// The program takes whole skbs off a receive queue, even one whose
	// head was read in part (a PROXY header consumed, and the bytes after
	// it in the same segment): what such a queue holds is moved here. (The
	// endpoint may answer, or close, before the offload is in place: then
	// the stream is spliced.)
	decline := func(reason string, err error) *OffloadError {
		e := fallback(reason, err)
		e.Up = f.pre[Client]
		return e
	}
	if partial {
		switch err := f.forward(pool.buf, Client); {
		case errors.Is(err, errQueueEOF):
			return nil, decline(FallbackState, err)
		case errors.Is(err, errPeerFull):
			return nil, decline(FallbackBusy, err)
		case err != nil:
			return nil, decline(FallbackOther, err)
		}
	}
	for s := range f.fd {
		q, err := queuesOf(f.fd[s])
		if err != nil {
			return nil, decline(FallbackOther, err)
		}
		if !q.established { // a sockmap takes no other state (but LISTEN)
			return nil, decline(FallbackState, errors.New("socket not established"))
		}
		f.baseRx[s], f.baseW[s] = q.taken, q.written
	}
	if err := f.insert(); err != nil {
		f.remove()
		reason := FallbackOther
		switch {
		case errors.Is(err, unix.EOPNOTSUPP):
			reason = FallbackState
		case errors.Is(err, unix.E2BIG), errors.Is(err, unix.ENOMEM), errors.Is(err, unix.ENOSPC):
			reason = FallbackMapsFull
		}
		oe := decline(reason, err)
		oe.Up += f.stats[Client].Bytes
		oe.Down += f.stats[Upstream].Bytes
		oe.Broken = f.stats[Client].Bytes+f.stats[Upstream].Bytes > 0
		return nil, oe
	}
	for _, fd := range f.fd {
		if netpoll.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, offloadSndBuf) != 0 {
			_ = netpoll.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, offloadSndBuf) // capped by net.core.wmem_max
		}
	}
	// Bytes that arrived before the verdict was in place wait in the
	// receive queues for the next batch to run it; setting SO_RCVLOWAT
	// runs it now (tcp_set_rcvlowat calls sk_data_ready).
	for _, fd := range f.fd {
		_ = netpoll.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVLOWAT, 1)
	}
	offloaded.Add(1)
	return f, nil
}

var (
	errQueueEOF = errors.New("EOF while moving the queued bytes")
	errPeerFull = errors.New("the peer's send queue is full")
)

// forward moves what side s's receive queue holds to the other side:
// peeked, written, and exactly what was written taken off the queue, so
// the queue holds whole skbs again when it returns nil.
func (f *Offload) forward(buf []byte, s Side) error {
	for {
		m, err := peekMove(f.fd[s], f.fd[1-s], buf)
		switch {
		case err == unix.EAGAIN && m < 0:
			return nil // the queue is empty
		case err == unix.EAGAIN:
			return errPeerFull
		case err == io.EOF:
			return errQueueEOF
		case err != nil:
			return err
		}
		f.pre[s] += uint64(m)
	}
}

// insert puts both sockets in the maps: their counters, each as the
// other's target, then each under the verdict program, from which moment
// the kernel moves its bytes.
func (f *Offload) insert() error {
	var zero sockCount
	for s := range f.fd {
		if err := f.update(s, f.o.counters, &f.key[s], &zero); err != nil {
			return err
		}
	}
	for s := range f.fd {
		if err := f.update(2+s, f.o.targets, &f.key[1-s], uint32(f.fd[s])); err != nil {
			return err
		}
	}
	for s := range f.fd {
		if err := f.update(4+s, f.o.verdict, &f.key[s], uint32(f.fd[s])); err != nil {
			return err
		}
	}
	return nil
}

// insertFault, set by tests, runs before each of insert's map updates
// (numbered from 0) and fails the one it returns an error for.
var insertFault func(step int) error

func (f *Offload) update(step int, m *ebpf.Map, k *sockKey, v any) error {
	if insertFault != nil {
		if err := insertFault(step); err != nil {
			return err
		}
	}
	return m.Update(k, v, ebpf.UpdateAny)
}

// remove takes both sockets out of the maps, the verdict first so that
// nothing is forwarded to a socket leaving targets, and reads the
// counters once the program can no longer run for either (f.stats).
// Entries the kernel already dropped (a socket that closed or reset), or
// never got, are no error.
func (f *Offload) remove() {
	for s := range f.key {
		_ = f.o.verdict.Delete(&f.key[s])
	}
	// A run of the program that began before the delete, on another CPU,
	// may still be adding to the counters: it runs under the socket's
	// lock, which TCP_INFO takes, so once this returns for both sockets
	// no run is left.
	for _, fd := range f.fd {
		_, _ = unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	}
	for s := range f.key {
		_ = f.read(Side(s))
	}
	for s := range f.key {
		_ = f.o.targets.Delete(&f.key[s])
	}
	for s := range f.key {
		_ = f.o.counters.Delete(&f.key[s])
	}
}

// Ready records epoll events for side s. Call Pump after.
func (f *Offload) Ready(s Side, events uint32) {
	if events&unix.EPOLLERR != 0 && f.err == nil {
		f.err = sockError(f.fd[s])
		if f.err == nil {
			f.err = os.NewSyscallError("read", unix.ECONNRESET)
		}
		f.failed = s
	}
	if events&(unix.EPOLLRDHUP|unix.EPOLLHUP) != 0 {
		f.eof[s] = true
	}
}

// Pump passes on each FIN whose bytes the kernel has delivered.
func (f *Offload) Pump() Status {
	if f.err != nil {
		return Failed
	}
	for s := range f.eof {
		if !f.eof[s] || f.shut[s] {
			continue
		}
		ok, failed, err := f.drained(Side(s))
		if err != nil {
			f.err, f.failed = err, failed
			return Failed
		}
		if !ok {
			continue
		}
		f.shut[s] = true
		f.poll = 0 // the other FIN's checks start again from the shortest wait
		if !f.shut[1-s] {
			_ = netpoll.Shutdown(f.fd[1-s], unix.SHUT_WR)
		}
	}
	if f.shut[0] && f.shut[1] {
		return Finished
	}
	return Running
}

// Draining reports whether a FIN waits for its bytes to be delivered: the
// owner calls Pump again after PollDelay.
func (f *Offload) Draining() bool {
	return f.err == nil && (f.eof[0] && !f.shut[0] || f.eof[1] && !f.shut[1])
}

// PollDelay is how long to wait before the next Pump while Draining:
// 1 ms, doubling to 64 ms.
func (f *Offload) PollDelay() int64 {
	const first, most = 1e6, 64e6
	switch {
	case f.poll == 0:
		f.poll = first
	case f.poll < most:
		f.poll *= 2
	}
	return f.poll
}

// drained reports whether every byte side s sent before its FIN went
// through the program and into the other side's send queue. On error,
// failed is the socket that failed.
func (f *Offload) drained(s Side) (ok bool, failed Side, err error) {
	ti, err := unix.GetsockoptTCPInfo(f.fd[s], unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return false, s, os.NewSyscallError("getsockopt", err)
	}
	if err := f.read(s); err != nil {
		return false, s, err
	}
	// bytes_received counts the FIN too.
	if f.stats[s].Bytes+1 < ti.Bytes_received-f.baseRx[s] {
		return false, s, nil
	}
	ok, err = f.delivered(s)
	if err != nil {
		return false, 1 - s, err
	}
	return ok, s, nil
}

// delivered reports whether every byte the program forwarded from side s,
// as last read, is in the other side's send queue (or acked).
func (f *Offload) delivered(s Side) (bool, error) {
	q, err := queuesOf(f.fd[1-s])
	if err != nil {
		return false, err
	}
	return q.written-f.baseW[1-s] >= f.stats[s].Bytes, nil
}

// Holding reports whether bytes forwarded by the program may still wait
// for a send queue: cutting the stream now would lose them.
func (f *Offload) Holding() bool {
	for s := range f.fd {
		if f.read(Side(s)) != nil {
			return true
		}
		if ok, err := f.delivered(Side(s)); err != nil || !ok {
			return true
		}
	}
	return false
}

func (f *Offload) read(s Side) error {
	if f.done {
		return nil
	}
	var c sockCount
	if err := f.o.counters.Lookup(&f.key[s], &c); err != nil {
		return fmt.Errorf("offload counters: %w", err)
	}
	f.stats[s] = c
	return nil
}

// LastActive reads the counters and returns when the program last moved a
// batch either way, on the loop's clock; 0: never.
func (f *Offload) LastActive() int64 {
	var last uint64
	for s := range f.fd {
		if f.read(Side(s)) == nil {
			last = max(last, f.stats[s].Last)
		}
	}
	if last == 0 {
		return 0
	}
	return int64(last) - f.o.clockBase
}

// Err is the error that made Pump return Failed.
func (f *Offload) Err() error { return f.err }

// FailedSide is the socket whose error made Pump return Failed.
func (f *Offload) FailedSide() Side { return f.failed }

// Stop takes the sockets out of the kernel's hands, which the owner must do
// before closing them, and returns the bytes forwarded client → upstream
// and upstream → client. Idempotent.
func (f *Offload) Stop() (up, down uint64) {
	if !f.done {
		f.remove()
		f.done = true
	}
	return f.Bytes()
}

// Carry adds bytes the stream moved before it was offloaded (spliced by
// its loop) to those Bytes reports.
func (f *Offload) Carry(up, down uint64) {
	f.pre[0] += up
	f.pre[1] += down
}

// Bytes returns the bytes forwarded as last read (final after Stop).
func (f *Offload) Bytes() (up, down uint64) {
	return f.pre[0] + f.stats[0].Bytes, f.pre[1] + f.stats[1].Bytes
}

// keyOf is fd's 4-tuple as the sk_skb program of fd reads it.
func keyOf(fd int) (sockKey, error) {
	var k sockKey
	la, err := unix.Getsockname(fd)
	if err != nil {
		return k, os.NewSyscallError("getsockname", err)
	}
	ra, err := unix.Getpeername(fd)
	if err != nil {
		return k, os.NewSyscallError("getpeername", err)
	}
	lip, lport, ok1 := ipv4Of(la)
	rip, rport, ok2 := ipv4Of(ra)
	if !ok1 || !ok2 {
		return k, errors.New("not an IPv4 socket")
	}
	copy(k[0:4], lip[:])
	copy(k[4:8], rip[:])
	binary.NativeEndian.PutUint32(k[8:12], uint32(lport))
	// remote_port: the port in network order in the upper half of a u32,
	// as the kernel fills in __sk_buff (on little-endian machines).
	k[14], k[15] = byte(rport>>8), byte(rport)
	return k, nil
}

// ipv4Of is sa's IPv4 address and port: of an AF_INET socket, or of an
// AF_INET6 one with an IPv4-mapped address (an IPv4 client of a
// dual-stack listener), whose packets are IPv4 and whose __sk_buff
// local_ip4 and remote_ip4 the kernel fills in alike.
func ipv4Of(sa unix.Sockaddr) (ip [4]byte, port int, ok bool) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Addr, a.Port, true
	case *unix.SockaddrInet6:
		if m := netip.AddrFrom16(a.Addr); m.Is4In6() {
			return m.Unmap().As4(), a.Port, true
		}
	}
	return ip, 0, false
}

// queues is what a socket's byte counters say at one moment.
type queues struct {
	taken       uint64 // bytes received and read: TCP bytes_received less the receive queue (SIOCINQ)
	written     uint64 // bytes the send queue has taken: acked plus queued (SIOCOUTQ)
	established bool
}

// queuesOf reads fd's counters: TCP_INFO around the two queue lengths,
// again until no byte arrived and no ACK came in between (at most 8
// times).
func queuesOf(fd int) (queues, error) {
	const tcpEstablished = 1 // include/net/tcp_states.h
	for range 8 {
		a, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return queues{}, os.NewSyscallError("getsockopt", err)
		}
		inq, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
		if err != nil {
			return queues{}, os.NewSyscallError("ioctl", err)
		}
		outq, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ)
		if err != nil {
			return queues{}, os.NewSyscallError("ioctl", err)
		}
		b, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		if err != nil {
			return queues{}, os.NewSyscallError("getsockopt", err)
		}
		if a.Bytes_received == b.Bytes_received && a.Bytes_acked == b.Bytes_acked {
			return queues{
				taken:       a.Bytes_received - uint64(inq),
				written:     a.Bytes_acked + uint64(outq),
				established: b.State == tcpEstablished,
			}, nil
		}
	}
	return queues{}, errors.New("byte counters would not settle")
}
