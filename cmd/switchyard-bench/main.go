// Command switchyard-bench measures TCP throughput through the router and
// directly, over loopback, with iperf3, and the router's CPU cost per GiB.
// It is what `make bench` runs.
//
//	switchyard-bench [-switchyard bin/switchyard] [-secs 5] [-runs 3] [-workers 0] [-pipe-size 0] [-out results.csv]
//
// It starts an iperf3 server and a switchyard child forwarding a free port to
// it, then for each round runs every case directly and through the router,
// interleaved so that drift of the machine affects both alike. The markdown
// table goes to stdout, progress to stderr. Every child is stopped on exit,
// on error and on SIGINT/SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

const iperfMissing = "switchyard-bench: iperf3 not found; install it with: apt-get install -y iperf3"

// options are the command-line settings.
type options struct {
	switchyard string
	secs       int
	runs       int
	workers    int
	pipeSize   int
	out        string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// A second Ctrl-C kills the bench outright; the children then go via Pdeathsig.
	go func() { <-ctx.Done(); stop() }()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		fmt.Fprintln(stderr, iperfMissing)
		return 1
	}
	if _, err := os.Stat(opts.switchyard); err != nil {
		fmt.Fprintf(stderr, "switchyard-bench: %v (build it with: go build -o bin/switchyard ./cmd/switchyard)\n", err)
		return 1
	}
	results, benchErr := bench(ctx, opts, stderr)
	code := 0
	if len(results) > 0 {
		writeTable(stdout, summarize(results), opts)
		if opts.out != "" {
			if err := writeCSVFile(opts.out, results); err != nil {
				fmt.Fprintf(stderr, "switchyard-bench: %v\n", err)
				code = 1
			}
		}
		code = max(code, reportFailures(stderr, results))
	}
	if benchErr != nil {
		fmt.Fprintf(stderr, "switchyard-bench: %v\n", benchErr)
		code = 1
	}
	return code
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("switchyard-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.switchyard, "switchyard", "bin/switchyard", "`path` of the switchyard binary to measure")
	fs.IntVar(&o.secs, "secs", 5, "iperf3 `seconds` per run")
	fs.IntVar(&o.runs, "runs", 3, "rounds: each case is run this many `times` directly and through the router")
	fs.IntVar(&o.workers, "workers", 0, "router event loops (runtime.workers); 0: one per CPU")
	fs.IntVar(&o.pipeSize, "pipe-size", 0, "router splice pipe size in `bytes` (runtime.pipe_size); 0: the router's default")
	fs.StringVar(&o.out, "out", "", "also write every run as CSV to this `file`")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if o.secs < 1 {
		errs = append(errs, errors.New("-secs: must be at least 1"))
	}
	if o.runs < 1 {
		errs = append(errs, errors.New("-runs: must be at least 1"))
	}
	if o.workers < 0 {
		errs = append(errs, errors.New("-workers: must not be negative"))
	}
	if o.pipeSize < 0 {
		errs = append(errs, errors.New("-pipe-size: must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "switchyard-bench: %v\n", err)
		return o, err
	}
	return o, nil
}

// reportFailures lists the failed runs on stderr and returns the exit code.
func reportFailures(stderr io.Writer, results []runResult) int {
	code := 0
	for _, r := range results {
		if r.err != nil {
			fmt.Fprintf(stderr, "switchyard-bench: round %d, %s, %s: %v\n", r.round, r.bcase.name, r.target, r.err)
			code = 1
		}
	}
	return code
}
