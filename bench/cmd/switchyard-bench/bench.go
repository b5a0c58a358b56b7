package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// Pauses after each measurement, so that one's TIME_WAIT sockets and
	// teardown do not land in the next. connrate leaves the most.
	settlePause         = 500 * time.Millisecond
	settleAfterConnrate = 1500 * time.Millisecond
	// idleSettle lets a proxy finish the bookkeeping of the last idle
	// connections before its memory is read.
	idleSettle = 300 * time.Millisecond
	// idleDrainTimeout bounds the wait for a proxy and the echo server to
	// close their sides of the idle connections.
	idleDrainTimeout = 30 * time.Second
	warmupSecs       = 1
)

// A sample is one figure of one target in one round.
type sample struct {
	round  int
	target string
	figure string
	value  float64
}

// A failure is a measurement that produced nothing.
type failure struct {
	round  int
	target string
	what   string
	err    error
}

// results are what a run measured, in the order it measured it.
type results struct {
	samples  []sample
	failures []failure
	notes    []string
}

// step is one measurement of a round, run against every target in turn.
type step struct {
	measurement string
	tcase       benchCase // for throughput
	variant     string    // for connrate-edge: one of edgeVariants
}

func (s step) String() string {
	switch s.measurement {
	case measureThroughput:
		return s.tcase.name
	case measureEdge:
		return "edge-" + s.variant
	}
	return s.measurement
}

// figValue is one figure's value from one measurement.
type figValue struct {
	figure string
	value  float64
}

// bencher runs the rounds. It owns its fields; nothing runs concurrently
// with it but the load generators it calls.
type bencher struct {
	o        options
	progress io.Writer
	dir      string
	be       *backends
	targets  []*target
	idleN    int
	rtt1CPU  int // the CPU of the 1-CPU RTT; -1: not measured (see the notes)
	nofile   uint64
	res      results
	noted    map[string]bool // what noteOnce noted
}

// steps are the steps of round, in order. The connrate-edge variants come
// in an order rotated every round, like the targets: they are compared
// with each other, and a machine that drifts during a round would
// otherwise favour the one always last.
func (b *bencher) steps(round int) []step {
	var out []step
	for _, m := range b.o.only {
		switch m {
		case measureThroughput:
			for _, c := range cases {
				out = append(out, step{measurement: m, tcase: c})
			}
		case measureEdge:
			for _, v := range rotate(edgeVariants, round-1) {
				out = append(out, step{measurement: m, variant: v})
			}
		default:
			out = append(out, step{measurement: m})
		}
	}
	return out
}

// noteOnce notes s, unless noteOnce noted it before.
func (b *bencher) noteOnce(s string) {
	if b.noted[s] {
		return
	}
	if b.noted == nil {
		b.noted = map[string]bool{}
	}
	b.noted[s] = true
	b.note("%s", s)
}

func (b *bencher) note(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	b.res.notes = append(b.res.notes, s)
	fmt.Fprintln(b.progress, "note: "+s)
}

// run runs every round: each step against every target, the targets in an
// order rotated every round so that none is always first. The error is
// about the run as a whole (interrupted, a backend died); failed
// measurements are in b.res.
func (b *bencher) run(ctx context.Context) error {
	if b.o.only[0] == measureThroughput {
		fmt.Fprintf(b.progress, "warm-up: %d s iperf3 direct (not recorded)\n", warmupSecs)
		if _, err := runIperf(ctx, b.be.iperfPort, warmupSecs, nil, b.progress); err != nil {
			fmt.Fprintf(b.progress, "warm-up failed: %v\n", err)
		}
	}
	for round := 1; round <= b.o.runs; round++ {
		if err := b.round(ctx, round); err != nil {
			return err
		}
	}
	return nil
}

func (b *bencher) round(ctx context.Context, round int) (err error) {
	order := rotate(b.targets, round-1)
	defer func() {
		for _, t := range order {
			if serr := t.stop(); serr != nil && t.down == nil {
				b.fail(round, t, "stop", serr)
			}
		}
	}()
	edge := slices.Contains(b.o.only, measureEdge)
	for _, t := range order {
		dir := filepath.Join(b.dir, "round-"+strconv.Itoa(round), t.name)
		if err := t.start(ctx, dir, b.be, b.idleN+100, b.nofile, edge); err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", context.Cause(ctx))
			}
			b.fail(round, t, "start", err)
			t.down = err
		}
		if t.noEdge != "" {
			b.noteOnce(t.name + ": " + t.noEdge)
		}
	}
	for _, st := range b.steps(round) {
		for _, t := range order {
			if t.down != nil || !t.measures(st) {
				continue
			}
			b.measure(ctx, round, st, t)
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted: %w", context.Cause(ctx))
			}
			note, err := b.be.check(ctx)
			if note != "" {
				b.note("round %d: %s", round, note)
			}
			if err != nil {
				return err
			}
			pause := settlePause
			if st.measurement == measureConnrate || st.measurement == measureEdge {
				pause = settleAfterConnrate
			}
			sleepCtx(ctx, pause)
		}
	}
	return nil
}

// measure runs one step against one target and records what it got.
func (b *bencher) measure(ctx context.Context, round int, st step, t *target) {
	var vals []figValue
	var detail string
	var err error
	switch st.measurement {
	case measureThroughput:
		vals, detail, err = b.throughput(ctx, t, st.tcase)
	case measureConnrate:
		vals, detail, err = b.connrate(ctx, round, t)
	case measureEdge:
		vals, detail, err = b.connrateEdge(ctx, round, t, st.variant)
	case measureReqresp:
		vals, detail, err = b.reqresp(ctx, round, t)
	case measureRTT:
		vals, detail, err = b.rtt(ctx, round, t)
	case measureIdle:
		vals, detail, err = b.idle(ctx, round, t)
	}
	if derr := t.died(); derr != nil {
		t.down = derr
		err = errors.Join(err, derr)
	}
	prefix := fmt.Sprintf("round %d/%d  %-10s  %-12s ", round, b.o.runs, st, t.name)
	if err != nil {
		if ctx.Err() == nil {
			b.fail(round, t, st.String(), err)
		}
		fmt.Fprintf(b.progress, "%s FAILED: %s\n", prefix, firstLine(err.Error()))
		return
	}
	for _, v := range vals {
		b.res.samples = append(b.res.samples, sample{round: round, target: t.name, figure: v.figure, value: v.value})
	}
	fmt.Fprintf(b.progress, "%s %s\n", prefix, detail)
}

func (b *bencher) fail(round int, t *target, what string, err error) {
	b.res.failures = append(b.res.failures, failure{round: round, target: t.name, what: what, err: err})
}

// throughput runs one iperf3 case through t, reading the proxy's CPU time
// around it.
func (b *bencher) throughput(ctx context.Context, t *target, c benchCase) ([]figValue, string, error) {
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
	sum, err := runIperf(ctx, t.iperfPort, b.o.secs, c.args, b.progress)
	if err != nil {
		return nil, "", err
	}
	machineAfter, err := machineBusySeconds()
	if err != nil {
		return nil, "", err
	}
	if sum.bytes <= 0 {
		return nil, "", errors.New("iperf3 received no bytes")
	}
	gbps := sum.bitsPerSecond / 1e9
	machine := (machineAfter - machineBefore) / (sum.bytes / (1 << 30))
	vals := []figValue{{"gbps_" + c.tag, gbps}, {"machine_cpu_s_per_gib_" + c.tag, machine}}
	detail := fmt.Sprintf("%6.2f Gb/s  machine %.3f CPU s/GiB", gbps, machine)
	if t.proc != nil {
		after, err := sampleTree(t.proc.pid())
		if err != nil {
			return nil, "", err
		}
		perGiB := (after.cpuSeconds() - before.cpuSeconds()) / (sum.bytes / (1 << 30))
		vals = append(vals, figValue{"cpu_s_per_gib_" + c.tag, perGiB})
		detail += fmt.Sprintf("  %.3f CPU s/GiB", perGiB)
	}
	return vals, detail, nil
}

func (b *bencher) connrate(ctx context.Context, round int, t *target) ([]figValue, string, error) {
	r, err := connrate(ctx, loopback(t.echoPort), connrateConfig{
		Concurrency: b.o.connrateC,
		Duration:    time.Duration(b.o.connrateSecs) * time.Second,
	})
	if err != nil {
		return nil, "", err
	}
	if r.Errors > 0 {
		b.note("round %d, %s: connrate: %d of %d connections failed (first: %v)", round, t.name, r.Errors, r.Errors+r.Conns, r.FirstErr)
	}
	vals := []figValue{{figConnPerSec, r.perSecond()}, {figConnP99, ms(r.P99)}}
	return vals, fmt.Sprintf("%6.0f conn/s  p50 %.2f ms  p99 %.2f ms  %d errors", r.perSecond(), ms(r.P50), ms(r.P99), r.Errors), nil
}

// rtt measures the round trips through t as the machine schedules them,
// then with everything on one CPU. A failure of the second is recorded
// apart, so that it does not cost the first its figures.
func (b *bencher) rtt(ctx context.Context, round int, t *target) ([]figValue, string, error) {
	cfg := rttConfig{N: b.o.rttN, Size: b.o.rttSize}
	r, err := rtt(ctx, loopback(t.echoPort), cfg)
	if err != nil {
		return nil, "", err
	}
	vals := []figValue{{figRTTP50, us(r.P50)}, {figRTTP99, us(r.P99)}, {figRTTP999, us(r.P999)}}
	detail := fmt.Sprintf("RTT p50 %.1f µs  p99 %.1f µs  p99.9 %.1f µs", us(r.P50), us(r.P99), us(r.P999))
	if b.rtt1CPU < 0 {
		return vals, detail, nil
	}
	r, err = b.rttOneCPU(ctx, t, cfg)
	switch {
	case errors.Is(err, errCannotPin):
		b.note("round %d, %s: RTT 1-CPU skipped: %v", round, t.name, err)
	case err != nil:
		if ctx.Err() == nil {
			b.fail(round, t, "rtt 1-CPU", err)
		}
	default:
		vals = append(vals, figValue{figRTT1P50, us(r.P50)}, figValue{figRTT1P99, us(r.P99)}, figValue{figRTT1P999, us(r.P999)})
		detail += fmt.Sprintf("; 1-CPU p50 %.1f µs  p99 %.1f µs  p99.9 %.1f µs", us(r.P50), us(r.P99), us(r.P999))
	}
	return vals, detail, nil
}

// rttOneCPU runs rtt with every thread of t's proxy and of the echo server,
// and the load's own thread, pinned to b.rtt1CPU, then puts them all back.
// Unpinned, RTT on a small machine says more about which CPU the scheduler
// wakes each process on than about the proxy; pinned, it measures the cost
// of handling a message.
func (b *bencher) rttOneCPU(ctx context.Context, t *target, cfg rttConfig) (rttResult, error) {
	roots := []int{b.be.echo.pid()}
	if t.proc != nil {
		roots = append(roots, t.proc.pid())
	}
	p, err := pinTrees(b.rtt1CPU, roots...)
	if err != nil {
		return rttResult{}, err
	}
	var r rttResult
	err = onCPU(b.rtt1CPU, func() (err error) {
		r, err = rtt(ctx, loopback(t.echoPort), cfg)
		return err
	})
	if rerr := p.restore(); rerr != nil {
		err = errors.Join(err, fmt.Errorf("restoring CPU affinity: %w", rerr))
	}
	return r, err
}

// idle holds b.idleN connections through t's proxy and charges the growth
// of the proxy's descriptors and resident memory to them.
func (b *bencher) idle(ctx context.Context, round int, t *target) ([]figValue, string, error) {
	pid := t.proc.pid()
	echoSockets, err := countSockets(b.be.echo.pid())
	if err != nil {
		return nil, "", err
	}
	before, err := sampleTree(pid)
	if err != nil {
		return nil, "", err
	}
	set, err := openIdle(ctx, loopback(t.echoPort), idleConfig{N: b.idleN})
	if err != nil {
		return nil, "", err
	}
	defer func() {
		set.Close()
		b.drain(ctx, round, t, before.fds, echoSockets)
	}()
	n := set.established()
	if set.errors > 0 {
		b.note("round %d, %s: idle: %d of %d connections failed (first: %v); figures are per established connection",
			round, t.name, set.errors, b.idleN, set.firstErr)
	}
	if n == 0 {
		return nil, "", fmt.Errorf("no idle connection established (first error: %v)", set.firstErr)
	}
	sleepCtx(ctx, idleSettle)
	after, err := sampleTree(pid)
	if err != nil {
		return nil, "", err
	}
	fds := float64(after.fds-before.fds) / float64(n)
	rss := float64(after.rssBytes-before.rssBytes) / float64(n)
	vals := []figValue{{figIdleFds, fds}, {figIdleRSS, rss}}
	return vals, fmt.Sprintf("%d idle conns  %.2f fds/conn  %.0f B RSS/conn", n, fds, rss), nil
}

// drain waits until t's proxy and the echo server have closed their sides
// of the idle connections, so that the next target's idle test finds the
// echo server's descriptors free.
func (b *bencher) drain(ctx context.Context, round int, t *target, proxyFds, echoSockets int) {
	const slack = 16
	deadline := time.Now().Add(idleDrainTimeout)
	for ctx.Err() == nil {
		s, serr := sampleTree(t.proc.pid())
		e, eerr := countSockets(b.be.echo.pid())
		proxyDone := t.proc.exited() || (serr == nil && s.fds <= proxyFds+slack)
		if proxyDone && eerr == nil && e <= echoSockets+slack {
			return
		}
		if time.Now().After(deadline) {
			b.note("round %d, %s: idle: %v after closing, the proxy still has %d fds (had %d) and the echo server %d sockets (had %d)",
				round, t.name, idleDrainTimeout, s.fds, proxyFds, e, echoSockets)
			return
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// failureNotes lists the failures, one line each, for the summary.
func failureNotes(fs []failure) []string {
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("round %d, %s, %s failed: %s", f.round, f.target, f.what, strings.TrimSpace(firstLine(f.err.Error()))))
	}
	return out
}
