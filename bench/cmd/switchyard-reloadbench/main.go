// Command switchyard-reloadbench measures what a configuration reload costs
// the clients of a TCP proxy, for Switchyard beside HAProxy and nginx
// (stream module), all on loopback.
//
//	switchyard-reloadbench -switchyard bin/switchyard -reloads 20 -clients 4 \
//	    -settle 50ms -only switchyard,haproxy,nginx -out reload.md
//
// Two backends run in this process, A and B; each writes a one-line tag
// ("A\n" or "B\n") on every connection, then echoes. Each proxy in turn is
// started in the foreground as a child, listening on a fixed loopback port
// and forwarding to A. Clients loop: connect, read the tag, close with
// SO_LINGER 0. A baseline phase without reloads is followed by a reload
// phase as long: rewrite the configuration to point at the other backend,
// send the proxy its reload signal, wait -settle, -reloads times. Then a
// last connection checks that the last configuration is in force.
//
// The markdown table goes to stdout and to -out; progress to stderr.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

var peerNames = []string{"switchyard", "haproxy", "nginx"}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchyard-reloadbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	syBin := fs.String("switchyard", "bin/switchyard", "path of the switchyard `binary`")
	haBin := fs.String("haproxy", "haproxy", "haproxy `binary` (looked up in PATH)")
	ngBin := fs.String("nginx", "nginx", "nginx `binary` (looked up in PATH)")
	reloads := fs.Int("reloads", 20, "reloads per proxy")
	clients := fs.Int("clients", 4, "concurrent client loops")
	settle := fs.Duration("settle", 50*time.Millisecond, "wait after each reload signal")
	timeout := fs.Duration("timeout", 2*time.Second, "per connection: connect and read the tag within this")
	only := fs.String("only", strings.Join(peerNames, ","), "comma-separated `proxies` to run, in this order")
	out := fs.String("out", "", "also write the markdown report to this `file`")
	keep := fs.Bool("keep", false, "keep each proxy's temp dir (configuration and logs)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "switchyard-reloadbench: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	names, err := parseOnly(*only)
	if err != nil {
		fmt.Fprintf(stderr, "switchyard-reloadbench: -only: %v\n", err)
		return 2
	}
	switch {
	case *reloads < 1:
		err = errors.New("-reloads must be at least 1")
	case *clients < 1 || *clients > 256:
		err = errors.New("-clients must be between 1 and 256")
	case *settle <= 0:
		err = errors.New("-settle must be greater than 0")
	case *timeout <= 0:
		err = errors.New("-timeout must be greater than 0")
	}
	if err != nil {
		fmt.Fprintf(stderr, "switchyard-reloadbench: %v\n", err)
		return 2
	}
	opts := defaultOptions()
	opts.reloads, opts.clients, opts.settle, opts.connTimeout, opts.keep = *reloads, *clients, *settle, *timeout, *keep
	opts.logf = func(format string, a ...any) {
		fmt.Fprintf(stderr, "[%s] %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, a...))
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	be, err := startBackends()
	if err != nil {
		fmt.Fprintf(stderr, "switchyard-reloadbench: backends: %v\n", err)
		return 1
	}
	defer be.close()
	opts.logf("backends: A on %s, B on %s", be.addr[0], be.addr[1])

	var results []peerResult
	for _, n := range names {
		var p *peer
		switch n {
		case "switchyard":
			p = switchyardPeer(*syBin)
		case "haproxy":
			p = haproxyPeer(*haBin)
		case "nginx":
			p = nginxPeer(*ngBin)
		}
		results = append(results, benchPeer(ctx, p, be, opts))
		if ctx.Err() != nil {
			fmt.Fprintln(stderr, "switchyard-reloadbench: interrupted")
			return 130
		}
	}
	report := formatReport(results, opts, time.Now())
	fmt.Fprint(stdout, report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			fmt.Fprintf(stderr, "switchyard-reloadbench: %v\n", err)
			return 1
		}
	}
	return 0
}

func parseOnly(s string) ([]string, error) {
	var names []string
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(peerNames, n) {
			return nil, fmt.Errorf("unknown proxy %q (known: %s)", n, strings.Join(peerNames, ", "))
		}
		if slices.Contains(names, n) {
			return nil, fmt.Errorf("%q listed twice", n)
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, errors.New("no proxy named")
	}
	return names, nil
}

// options of one run.
type options struct {
	reloads     int
	clients     int
	settle      time.Duration
	connTimeout time.Duration
	// warmup runs the clients before the baseline phase starts counting.
	warmup time.Duration
	// effectWait: when the final connection does not reach the last
	// configured backend, how long to keep trying (to tell "late" from
	// "never").
	effectWait time.Duration
	// startTimeout bounds the wait for a proxy to accept; stopTimeout the
	// wait for it to exit after its stop signal.
	startTimeout, stopTimeout time.Duration
	// quiet: how long the proxy is left alone before it is stopped.
	quiet time.Duration
	// tmpRoot holds the per-proxy temp dirs ("" = os.TempDir()); keep
	// leaves them in place.
	tmpRoot string
	keep    bool
	logf    func(format string, a ...any)
}

func defaultOptions() options {
	return options{
		reloads:      20,
		clients:      4,
		settle:       50 * time.Millisecond,
		connTimeout:  2 * time.Second,
		warmup:       200 * time.Millisecond,
		effectWait:   5 * time.Second,
		startTimeout: 15 * time.Second,
		stopTimeout:  15 * time.Second,
		quiet:        time.Second,
		logf:         func(string, ...any) {},
	}
}

// ---------------------------------------------------------------- backends
