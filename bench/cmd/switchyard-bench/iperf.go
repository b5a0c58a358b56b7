package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A benchCase is one iperf3 client configuration.
type benchCase struct {
	tag  string // in figure names: gbps_<tag>
	name string // in the table
	args []string
}

var cases = []benchCase{
	{"p1_fwd", "P1 fwd", nil},
	{"p1_rev", "P1 rev", []string{"-R"}},
	{"p4_fwd", "P4 fwd", []string{"-P", "4"}},
	{"p4_rev", "P4 rev", []string{"-P", "4", "-R"}},
}

const (
	// iperf3 clients get this long beyond -t to connect and report.
	iperfSlack = 30 * time.Second
	// The iperf3 server serves one test at a time and re-creates its
	// listening socket after each, including after a readiness probe; a
	// client arriving meanwhile is told it is busy or is reset. Runs that
	// fail so before any interval was measured are retried.
	iperfSetupRetries = 5
	iperfSetupPause   = 300 * time.Millisecond
)

// iperfSum is iperf3's end.sum_received: what the receiving side counted.
type iperfSum struct {
	bitsPerSecond float64
	bytes         float64
}

// iperfReport is the part of iperf3's -J output the bench reads. Bytes is
// a float: iperf3's cJSON may print large integers in exponent form.
type iperfReport struct {
	End struct {
		SumReceived *struct {
			BitsPerSecond float64 `json:"bits_per_second"`
			Bytes         float64 `json:"bytes"`
		} `json:"sum_received"`
	} `json:"end"`
	Intervals []json.RawMessage `json:"intervals"`
	Error     string            `json:"error"`
}

// iperfSetupError is an error iperf3 reported before it measured anything.
type iperfSetupError struct{ msg string }

func (e *iperfSetupError) Error() string { return "iperf3: " + e.msg }

// runIperf runs an iperf3 client against 127.0.0.1:port for secs seconds,
// noting retries on progress.
func runIperf(ctx context.Context, port, secs int, extra []string, progress io.Writer) (iperfSum, error) {
	for attempt := 1; ; attempt++ {
		sum, err := runIperfOnce(ctx, port, secs, extra)
		var setup *iperfSetupError
		if !errors.As(err, &setup) || attempt > iperfSetupRetries {
			return sum, err
		}
		fmt.Fprintf(progress, "  retrying (%d/%d) after %v\n", attempt, iperfSetupRetries, err)
		select {
		case <-ctx.Done():
			return sum, err
		case <-time.After(iperfSetupPause):
		}
	}
}

func runIperfOnce(ctx context.Context, port, secs int, extra []string) (iperfSum, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second+iperfSlack)
	defer cancel()
	args := append([]string{"-c", "127.0.0.1", "-p", strconv.Itoa(port), "-t", strconv.Itoa(secs), "-J"}, extra...)
	cmd := exec.CommandContext(ctx, "iperf3", args...)
	cmd.SysProcAttr = childProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	sum, err := parseIperf(stdout.Bytes())
	if err != nil && runErr != nil {
		// iperf3 -J reports its own errors in the JSON; this is for the rest
		// (killed on timeout, garbage output).
		return sum, fmt.Errorf("iperf3 %s: %v: %v %s", strings.Join(args, " "), runErr, err, strings.TrimSpace(stderr.String()))
	}
	return sum, err
}

// parseIperf extracts end.sum_received from iperf3 -J output, or the error
// iperf3 reported.
func parseIperf(out []byte) (iperfSum, error) {
	var rep iperfReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return iperfSum{}, fmt.Errorf("iperf3 output is not JSON: %w", err)
	}
	if rep.Error != "" && len(rep.Intervals) == 0 {
		return iperfSum{}, &iperfSetupError{rep.Error}
	}
	if rep.Error != "" {
		return iperfSum{}, errors.New("iperf3: " + rep.Error)
	}
	s := rep.End.SumReceived
	if s == nil {
		return iperfSum{}, errors.New("iperf3 output has no end.sum_received")
	}
	return iperfSum{bitsPerSecond: s.BitsPerSecond, bytes: s.Bytes}, nil
}
