package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// backends are the servers every target forwards to, started once for the
// whole run: an iperf3 server for throughput and switchyard-echo for the
// connection rate, latency and idle tests.
type backends struct {
	dir        string
	iperf      *child
	echo       *child
	iperfPort  int
	echoPort   int
	echoBinary string
}

func (b *backends) iperfAddr() string { return loopback(b.iperfPort) }
func (b *backends) echoAddr() string  { return loopback(b.echoPort) }

// startBackends starts both servers on free loopback ports, logging into
// dir. On error the servers already started are in the result, for close.
func startBackends(ctx context.Context, o options, dir string, progress io.Writer) (*backends, error) {
	b := &backends{dir: dir}
	ports, err := freePorts(2)
	if err != nil {
		return b, err
	}
	b.iperfPort, b.echoPort = ports[0], ports[1]
	if b.echoBinary, err = echoBinary(ctx, o, dir, progress); err != nil {
		return b, err
	}
	fmt.Fprintf(progress, "backends: iperf3 server on %s, %s on %s\n", b.iperfAddr(), b.echoBinary, b.echoAddr())
	if err := b.startIperf(ctx); err != nil {
		return b, err
	}
	b.echo, err = startChild("switchyard-echo", filepath.Join(dir, "echo.log"), b.echoBinary, "-listen", b.echoAddr())
	if err != nil {
		return b, err
	}
	return b, waitListening(ctx, b.echo, []int{b.echoPort}, startTimeout)
}

// startIperf starts the iperf3 server, or starts it again on the same port
// after it died.
func (b *backends) startIperf(ctx context.Context) error {
	var err error
	b.iperf, err = startChild("iperf3 server", filepath.Join(b.dir, "iperf3.log"),
		"iperf3", "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(b.iperfPort))
	if err != nil {
		return err
	}
	b.iperf.anyExitOnStop = true // iperf3 -s exits with status 1 on SIGTERM
	return waitListening(ctx, b.iperf, []int{b.iperfPort}, startTimeout)
}

// check restarts a dead iperf3 server and fails if the echo server died,
// which no test survives. It returns a note when it restarted something.
func (b *backends) check(ctx context.Context) (string, error) {
	if b.echo.exited() {
		return "", fmt.Errorf("the echo server exited: %v\n%s", b.echo.waitErr(), b.echo.logTail())
	}
	if !b.iperf.exited() {
		return "", nil
	}
	note := fmt.Sprintf("iperf3 server restarted after it exited: %v", b.iperf.waitErr())
	return note, b.startIperf(ctx)
}

func (b *backends) close() error {
	var errs []error
	for _, c := range []*child{b.echo, b.iperf} {
		if c == nil {
			continue
		}
		if err := c.stop(); err != nil {
			errs = append(errs, fmt.Errorf("%w\n%s", err, c.logTail()))
		}
	}
	return errors.Join(errs...)
}

// echoBinary is -echo if it exists. When -echo was left at its default and
// the file is missing, switchyard-echo is built into dir from the module
// in the working directory.
func echoBinary(ctx context.Context, o options, dir string, progress io.Writer) (string, error) {
	_, err := os.Stat(o.echo)
	if err == nil || o.echoSet || !errors.Is(err, fs.ErrNotExist) {
		return o.echo, err
	}
	out := filepath.Join(dir, "switchyard-echo")
	fmt.Fprintf(progress, "%s not found; building ./cmd/switchyard-echo\n", o.echo)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/switchyard-echo")
	cmd.Stdout, cmd.Stderr = progress, progress
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("cannot build switchyard-echo (%v); build it with: go build -o %s ./cmd/switchyard-echo, or pass -echo PATH", err, o.echo)
	}
	return out, nil
}

// echoFdsPerConn measures the descriptors the echo server spends on one
// held connection. Go's io.Copy between two TCP connections splices
// through a pipe it keeps for the connection's life, so that may be 3.
// Run it on a fresh server: later, pooled pipes of closed connections are
// reused and hide the cost.
func (b *backends) echoFdsPerConn() (int, error) {
	before, err := countFds(b.echo.pid())
	if err != nil {
		return 0, err
	}
	c, err := net.DialTimeout("tcp", b.echoAddr(), startTimeout)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(startTimeout))
	// Once the byte is back, the server has accepted and set up its copy.
	if err := echoOnce(c, []byte{'p'}, make([]byte, 1)); err != nil {
		return 0, err
	}
	after, err := countFds(b.echo.pid())
	return after - before, err
}
