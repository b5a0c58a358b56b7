package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard-proxy/switchyard/router"
)

// options are the command-line settings.
type options struct {
	builds []build // the -switchyard builds, in flag order
	// offloads: build name → the offload key given its every server
	// (-offload NAME=KIND); builds not in it leave the key out.
	offloads     map[string]string
	targets      []string
	only         []string // measurements to run, in measurement order
	runs         int
	secs         int
	connrateSecs int
	connrateC    int
	reqrespSecs  int
	rttN         int
	rttSize      int
	idleN        int
	workers      int
	pipeSize     int
	outDir       string
	csvOut       string
	echo         string
	echoSet      bool // -echo was given, so it is not built when missing
	profileDir   string
}

// A build is one switchyard binary under test, named in the report.
type build struct {
	name, path string
}

// buildList is the repeatable -switchyard flag.
type buildList []build

func (l *buildList) String() string {
	var s []string
	for _, b := range *l {
		s = append(s, b.name+"="+b.path)
	}
	return strings.Join(s, ",")
}

// Set takes NAME=PATH, or a bare PATH named "switchyard".
func (l *buildList) Set(v string) error {
	b := build{name: targetSwitchyard, path: v}
	if name, path, ok := strings.Cut(v, "="); ok {
		b = build{name: name, path: path}
	}
	switch {
	case b.path == "":
		return errors.New("empty path")
	case !validName.MatchString(b.name):
		return fmt.Errorf("bad name %q: use letters, digits, '.', '_' and '-'", b.name)
	case slices.Contains([]string{targetDirect, targetHAProxy, targetNginx}, b.name):
		return fmt.Errorf("name %q is taken by a built-in target", b.name)
	}
	for _, o := range *l {
		if o.name == b.name {
			return fmt.Errorf("two builds named %q: name them, as -switchyard NAME=PATH", b.name)
		}
	}
	*l = append(*l, b)
	return nil
}

var validName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// validOffload is an -offload value's KIND, with offload_after after a
// colon if given (a TOML integer: no leading zero).
var validOffload = regexp.MustCompile(`^[A-Za-z0-9_.-]+(:(0|[1-9][0-9]*))?$`)

// maxOffloadAfter is the router's bound on offload_after.
const maxOffloadAfter = 10000

// offloadList is the repeatable -offload flag: NAME=KIND pairs.
type offloadList [][2]string

func (l *offloadList) String() string {
	var s []string
	for _, p := range *l {
		s = append(s, p[0]+"="+p[1])
	}
	return strings.Join(s, ",")
}

func (l *offloadList) Set(v string) error {
	name, kind, ok := strings.Cut(v, "=")
	if !ok || !validName.MatchString(name) || !validOffload.MatchString(kind) {
		return fmt.Errorf("%q: want NAME=KIND or NAME=KIND:AFTER, as sockmap=sockmap or sockmap=sockmap:0", v)
	}
	k, after, hasAfter := strings.Cut(kind, ":")
	if k != router.OffloadSockmap {
		return fmt.Errorf("%q: KIND must be %q, the one offload there is", v, router.OffloadSockmap)
	}
	if n, err := strconv.Atoi(after); hasAfter && (err != nil || n > maxOffloadAfter) {
		return fmt.Errorf("%q: AFTER must be 0 to %d", v, maxOffloadAfter)
	}
	for _, p := range *l {
		if p[0] == name {
			return fmt.Errorf("%q: build %q already has an -offload", v, name)
		}
	}
	*l = append(*l, [2]string{name, kind})
	return nil
}

// offloadsOf maps the builds named in offloads to their offload kind.
func offloadsOf(builds []build, offloads offloadList) (map[string]string, error) {
	m := map[string]string{}
	for _, p := range offloads {
		if !slices.ContainsFunc(builds, func(b build) bool { return b.name == p[0] }) {
			return nil, fmt.Errorf("-offload: no build named %q", p[0])
		}
		m[p[0]] = p[1]
	}
	return m, nil
}

const (
	defaultTargets = "direct,switchyard,haproxy,nginx"
	defaultOnly    = "throughput,connrate,connrate-edge,reqresp,rtt,idle"
)

// parseFlags reads args; getenv supplies BENCH_RUNS. Every problem is
// reported at once.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("switchyard-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var builds buildList
	var offloads offloadList
	var targets, only string
	fs.Var(&offloads, "offload", "give every server of a build offload = KIND, and offload_after = AFTER if given, as `NAME=KIND[:AFTER]` (sockmap: the kernel moves the bytes; AFTER: batches spliced first); repeatable")
	fs.Var(&builds, "switchyard", "switchyard build to measure, as `NAME=PATH` or a bare PATH (named switchyard); repeatable (default switchyard=bin/switchyard)")
	fs.StringVar(&targets, "targets", defaultTargets, "comma-separated `targets`: direct, switchyard (every build), a build's NAME, haproxy, nginx")
	fs.StringVar(&only, "only", defaultOnly, "comma-separated `measurements` to run: throughput, connrate, connrate-edge (plain, SNI-routed and PROXY-header connections), reqresp (pipelined requests on 50 connections), rtt, idle")
	fs.IntVar(&o.runs, "runs", 0, "rounds: every measurement is repeated this many `times` (default $BENCH_RUNS, else 3)")
	fs.IntVar(&o.secs, "secs", 5, "iperf3 `seconds` per throughput run")
	fs.IntVar(&o.connrateSecs, "connrate-secs", 5, "connection-rate test length in `seconds` (each connrate-edge variant's too)")
	fs.IntVar(&o.connrateC, "connrate-c", 50, "connection-rate `workers`, each connecting, exchanging 32 B and closing in a loop (connrate-edge: its variant's bytes)")
	fs.IntVar(&o.reqrespSecs, "reqresp-secs", 5, "request/response test length in `seconds`")
	fs.IntVar(&o.rttN, "rtt-n", 20000, "round trips in the latency test")
	fs.IntVar(&o.rttSize, "rtt-size", 64, "`bytes` per round trip in the latency test")
	fs.IntVar(&o.idleN, "idle-n", 10000, "idle `connections` to hold open (capped by the open-files limit)")
	fs.IntVar(&o.workers, "workers", 0, "router event loops (runtime.workers); 0: one per CPU")
	fs.IntVar(&o.pipeSize, "pipe-size", 0, "router splice pipe size in `bytes` (runtime.pipe_size); 0: the router's default")
	fs.StringVar(&o.outDir, "out-dir", "bench/results", "`folder` for the JSON summary")
	fs.StringVar(&o.csvOut, "out", "", "also write every measurement as CSV to this `file`")
	fs.StringVar(&o.echo, "echo", "bin/switchyard-echo", "`path` of switchyard-echo; when missing and not given, it is built from ./cmd/switchyard-echo")
	fs.StringVar(&o.profileDir, "profile-dir", "", "profile mode: run one switchyard build under load with -cpuprofile/-memprofile into this `folder`")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	fs.Visit(func(f *flag.Flag) { o.echoSet = o.echoSet || f.Name == "echo" })

	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if len(builds) == 0 {
		builds = buildList{{name: targetSwitchyard, path: "bin/switchyard"}}
	}
	o.builds = builds
	var err error
	if o.offloads, err = offloadsOf(o.builds, offloads); err != nil {
		errs = append(errs, err)
	}
	if o.runs == 0 {
		o.runs = 3
		if v := getenv("BENCH_RUNS"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("BENCH_RUNS=%q: want a positive integer", v))
			}
			o.runs = n
		}
	}
	if o.targets, err = selectTargets(targets, o.builds); err != nil {
		errs = append(errs, fmt.Errorf("-targets: %w", err))
	}
	if o.only, err = selectMeasurements(only); err != nil {
		errs = append(errs, fmt.Errorf("-only: %w", err))
	}
	for _, c := range []struct {
		name string
		v    int
		min  int
	}{
		{"runs", o.runs, 1}, {"secs", o.secs, 1}, {"connrate-secs", o.connrateSecs, 1}, {"connrate-c", o.connrateC, 1}, {"reqresp-secs", o.reqrespSecs, 1},
		{"rtt-n", o.rttN, 1}, {"rtt-size", o.rttSize, 1}, {"idle-n", o.idleN, 1}, {"workers", o.workers, 0}, {"pipe-size", o.pipeSize, 0},
	} {
		if c.v < c.min {
			errs = append(errs, fmt.Errorf("-%s: must be at least %d", c.name, c.min))
		}
	}
	if o.profileDir != "" && len(o.builds) != 1 {
		errs = append(errs, errors.New("-profile-dir: profiles one build; give exactly one -switchyard"))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "switchyard-bench: %v\n", err)
		return o, err
	}
	return o, nil
}

// selectTargets resolves a -targets list into target names in report
// order: direct, the builds in flag order, haproxy, nginx. "switchyard"
// stands for every build, whatever their names.
func selectTargets(list string, builds []build) ([]string, error) {
	want := map[string]bool{}
	for _, name := range splitList(list) {
		switch {
		case name == targetSwitchyard:
			for _, b := range builds {
				want[b.name] = true
			}
		case name == targetDirect || name == targetHAProxy || name == targetNginx ||
			slices.ContainsFunc(builds, func(b build) bool { return b.name == name }):
			want[name] = true
		default:
			return nil, fmt.Errorf("unknown target %q", name)
		}
	}
	var out []string
	for _, name := range allTargetNames(builds) {
		if want[name] {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no targets")
	}
	return out, nil
}

func allTargetNames(builds []build) []string {
	names := []string{targetDirect}
	for _, b := range builds {
		names = append(names, b.name)
	}
	return append(names, targetHAProxy, targetNginx)
}

func selectMeasurements(list string) ([]string, error) {
	want := map[string]bool{}
	for _, m := range splitList(list) {
		if !slices.Contains(measurements, m) {
			return nil, fmt.Errorf("unknown measurement %q (known: %s)", m, strings.Join(measurements, ", "))
		}
		want[m] = true
	}
	var out []string
	for _, m := range measurements {
		if want[m] {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no measurements")
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// offloadNote is how a build's offload reads in the run's notes.
func offloadNote(kind string) string {
	if kind == "" {
		return ""
	}
	return " offload=" + kind
}
