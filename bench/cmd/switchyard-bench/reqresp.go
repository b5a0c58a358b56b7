package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

// The reqresp measurement is the request rate of long-lived connections
// that each keep a window of small requests in flight, as an RPC client
// pipelining on a pool of connections does: reqrespConns connections,
// opened once through the target before the clock starts, each keeping
// reqrespWindow requests of reqrespSize bytes outstanding against the echo
// server, which sends each back, as it came (64 B replies) or amplified
// sixteenfold (1 KiB replies: requests of 'K', see switchyard-echo). For
// every reply read a connection writes the next request; replies that
// arrive together are answered by one write of as many requests, so that
// the client spends few system calls and leaves the CPU to the target.
// It runs for -reqresp-secs; the outstanding requests are then read back,
// and count. The target's CPU is that of its process tree over the run,
// per completed request.
const (
	reqrespConns  = 50
	reqrespWindow = 16
	reqrespSize   = 64
	// reqrespAmplify is how much larger than its request a reply is in the
	// second shape: switchyard-echo's amplification.
	reqrespAmplify = 16
	// reqrespAmplified is the byte of the second shape's requests.
	reqrespAmplified = 'K'
)

const (
	figReqrespPerSec   = "reqresp_per_sec"
	figReqrespCPU      = "reqresp_cpu_us"
	figReqresp1KPerSec = "reqresp_1k_per_sec"
	figReqresp1KCPU    = "reqresp_1k_cpu_us"
	// The machine's CPU per request: the client's, the echo server's, the
	// proxy's and the kernel's on their behalf (see machinecpu.go).
	figReqrespMachineCPU   = "reqresp_machine_cpu_us"
	figReqresp1KMachineCPU = "reqresp_1k_machine_cpu_us"
)

// reqrespFigures are reqresp's figures, in the order of its table; like
// edgeFigures, they are apart from the main catalogue.
var reqrespFigures = []figure{
	{figReqrespPerSec, "requests/s, 64 B replies", "req/s", benchsummary.BetterHigher, 0, shareOfDirect},
	{figReqrespCPU, "CPU µs/request, 64 B replies", "µs", benchsummary.BetterLower, 3, unrelated},
	{figReqresp1KPerSec, "requests/s, 1 KiB replies", "req/s", benchsummary.BetterHigher, 0, shareOfDirect},
	{figReqresp1KCPU, "CPU µs/request, 1 KiB replies", "µs", benchsummary.BetterLower, 3, unrelated},
	{figReqrespMachineCPU, "machine CPU µs/request, 64 B replies", "µs", benchsummary.BetterLower, 3, addedOverDirect},
	{figReqresp1KMachineCPU, "machine CPU µs/request, 1 KiB replies", "µs", benchsummary.BetterLower, 3, addedOverDirect},
}

// reqrespConfig says how reqresp loads a target. Zero fields take the
// defaults named beside them.
type reqrespConfig struct {
	Conns  int // connections; zero: reqrespConns
	Window int // requests in flight per connection; zero: reqrespWindow
	Size   int // bytes per request; zero: reqrespSize
	// Amplified asks for replies reqrespAmplify times the request's size:
	// the requests are of reqrespAmplified, which switchyard-echo answers
	// so.
	Amplified bool
	Duration  time.Duration // zero: 5s
	Timeout   time.Duration // connect; and the wait for the last replies after Duration; zero: 5s
}

func (c reqrespConfig) conns() int              { return orDefault(c.Conns, reqrespConns) }
func (c reqrespConfig) window() int             { return orDefault(c.Window, reqrespWindow) }
func (c reqrespConfig) size() int               { return orDefault(c.Size, reqrespSize) }
func (c reqrespConfig) duration() time.Duration { return orDefault(c.Duration, 5*time.Second) }
func (c reqrespConfig) timeout() time.Duration  { return orDefault(c.Timeout, 5*time.Second) }

// request and reply are a request's bytes and those of its reply.
func (c reqrespConfig) request() []byte {
	if c.Amplified {
		return bytes.Repeat([]byte{reqrespAmplified}, c.size())
	}
	return bytes.Repeat([]byte{'r'}, c.size())
}

func (c reqrespConfig) reply() []byte {
	if c.Amplified {
		return bytes.Repeat([]byte{reqrespAmplified}, c.size()*reqrespAmplify)
	}
	return c.request()
}

// reqrespResult is what reqresp measured.
type reqrespResult struct {
	Requests    int64 // completed request/reply pairs
	Conns       int   // connections that completed without an error
	Errors      int   // connections that failed
	FirstErr    error
	MaxInFlight int // most requests any connection had outstanding
	Elapsed     time.Duration
}

func (r reqrespResult) perSecond() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// reqresp opens cfg.Conns connections to the echo server at addr, then has
// each keep cfg.Window requests in flight for cfg.Duration, and reads the
// outstanding ones back. A connection that fails stops, and the others go
// on. It fails if a connection cannot be opened, if ctx ends or if no
// request completes.
func reqresp(ctx context.Context, addr string, cfg reqrespConfig) (reqrespResult, error) {
	d := net.Dialer{Timeout: cfg.timeout()}
	workers := make([]reqrespWorker, cfg.conns())
	defer func() {
		for _, w := range workers {
			if w.c != nil {
				w.c.Close()
			}
		}
	}()
	req, reply := cfg.request(), cfg.reply()
	for i := range workers {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return reqrespResult{}, fmt.Errorf("reqresp: connection %d of %d: %w", i+1, len(workers), err)
		}
		workers[i] = reqrespWorker{c: c, req: req, want: reply, window: cfg.window()}
	}
	start := time.Now()
	end := start.Add(cfg.duration())
	// A connection may take until cfg.Timeout after the end for its
	// outstanding replies; a deadline in the past unblocks the workers
	// when ctx ends.
	conns := make([]net.Conn, len(workers)) // for the AfterFunc: the workers' fields are theirs
	for i, w := range workers {
		conns[i] = w.c
		w.c.SetDeadline(end.Add(cfg.timeout()))
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.SetDeadline(time.Unix(1, 0))
		}
	})
	defer stop()
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		wg.Go(func() { w.err = w.run(end) })
	}
	wg.Wait()

	r := reqrespResult{Elapsed: time.Since(start)}
	for _, w := range workers {
		r.Requests += w.done
		r.MaxInFlight = max(r.MaxInFlight, w.maxInFlight)
		if w.err != nil {
			r.Errors++
			if r.FirstErr == nil {
				r.FirstErr = w.err
			}
			continue
		}
		r.Conns++
	}
	if ctx.Err() != nil {
		return r, fmt.Errorf("reqresp: interrupted: %w", context.Cause(ctx))
	}
	if r.Requests == 0 {
		return r, fmt.Errorf("reqresp %s: no request completed (%d connections failed, first: %v)", addr, r.Errors, r.FirstErr)
	}
	return r, nil
}

// reqrespWorker is one reqresp connection; it owns its fields until run
// returns.
type reqrespWorker struct {
	c           net.Conn
	req         []byte
	want        []byte // a reply
	window      int
	done        int64 // replies read
	maxInFlight int
	err         error
}

// run fills the window, then for every reply read writes a request until
// end, then reads the replies still outstanding.
func (w *reqrespWorker) run(end time.Time) error {
	br := bufio.NewReaderSize(w.c, max(4096, 2*w.window*len(w.want)))
	out := bytes.Repeat(w.req, w.window) // the most one write sends
	reply := make([]byte, len(w.want))
	inFlight := 0
	send := func(n int) error {
		inFlight += n
		w.maxInFlight = max(w.maxInFlight, inFlight)
		_, err := w.c.Write(out[:n*len(w.req)])
		return err
	}
	if err := send(w.window); err != nil {
		return err
	}
	for inFlight > 0 {
		// Read one reply, waiting for it, and those already buffered.
		n := 0
		for n == 0 || (n < inFlight && br.Buffered() >= len(reply)) {
			if _, err := io.ReadFull(br, reply); err != nil {
				return err
			}
			if !bytes.Equal(reply, w.want) {
				return fmt.Errorf("reply from %s: got %q, want %q", w.c.RemoteAddr(), reply, w.want)
			}
			n++
		}
		inFlight -= n
		w.done += int64(n)
		if time.Now().Before(end) {
			if err := send(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// reqresp runs the reqresp loads through t, 64 B replies then 1 KiB ones,
// and charges the CPU its proxy's process tree used to the requests.
func (b *bencher) reqresp(ctx context.Context, round int, t *target) ([]figValue, string, error) {
	var vals []figValue
	var details []string
	for _, shape := range []struct {
		amplified      bool
		rate, cpu, mcu string
		description    string
	}{
		{false, figReqrespPerSec, figReqrespCPU, figReqrespMachineCPU, "64 B"},
		{true, figReqresp1KPerSec, figReqresp1KCPU, figReqresp1KMachineCPU, "1 KiB"},
	} {
		var before treeSample
		var err error
		if t.proc != nil {
			if before, err = sampleTree(t.proc.pid()); err != nil {
				return nil, "", err
			}
		}
		machineBefore, err := machineBusySeconds()
		if err != nil {
			return nil, "", err
		}
		r, err := reqresp(ctx, loopback(t.echoPort), reqrespConfig{Amplified: shape.amplified, Duration: time.Duration(b.o.reqrespSecs) * time.Second})
		if err != nil {
			return nil, "", err
		}
		machineAfter, err := machineBusySeconds()
		if err != nil {
			return nil, "", err
		}
		if r.Errors > 0 {
			b.note("round %d, %s: reqresp (%s replies): %d of %d connections failed (first: %v)", round, t.name, shape.description, r.Errors, r.Errors+r.Conns, r.FirstErr)
		}
		machine := (machineAfter - machineBefore) * 1e6 / float64(r.Requests)
		vals = append(vals, figValue{shape.rate, r.perSecond()}, figValue{shape.mcu, machine})
		detail := fmt.Sprintf("%s: %8.0f req/s machine %.3f CPU µs/req", shape.description, r.perSecond(), machine)
		if t.proc != nil {
			after, err := sampleTree(t.proc.pid())
			if err != nil {
				return nil, "", err
			}
			cpu := (after.cpuSeconds() - before.cpuSeconds()) * 1e6 / float64(r.Requests)
			vals = append(vals, figValue{shape.cpu, cpu})
			detail += fmt.Sprintf(" %.3f CPU µs/req", cpu)
		}
		details = append(details, detail+fmt.Sprintf(" %d errors", r.Errors))
	}
	return vals, strings.Join(details, "; "), nil
}

// writeReqrespTable prints reqresp's table, for the targets that have its
// figures; nothing if none has.
func writeReqrespTable(w io.Writer, s benchsummary.Summary) {
	var targets []string
	for _, t := range s.Targets {
		if _, ok := s.Lookup(t, figReqrespPerSec); ok {
			targets = append(targets, t)
		}
	}
	rows := tableRows(s, targets, reqrespFigures)
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### Request/response rate\n\n")
	writeRows(w, targets, rows)
	fmt.Fprintf(w, "\n%d connections opened once, each with %d requests of %d B in flight (a request written for each reply read), "+
		"replies of %d B or %d B from the echo server, for -reqresp-secs each. requests/s: request/reply pairs completed per second, %% of direct's median; "+
		"CPU µs/request: CPU time of the proxy's process tree during the run ÷ requests (direct has none); "+
		"machine CPU µs/request: the whole machine's busy CPU time (client, echo server, proxy, kernel threads) ÷ requests, +added over direct's.\n",
		reqrespConns, reqrespWindow, reqrespSize, reqrespSize, reqrespSize*reqrespAmplify)
}

// ownTableFigures are the figures with a table of their own.
func ownTableFigures() []figure {
	return append(append([]figure{}, edgeFigures...), reqrespFigures...)
}
