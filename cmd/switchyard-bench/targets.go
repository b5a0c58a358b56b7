package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// The built-in target names; switchyard builds take their own.
const (
	targetDirect     = "direct"
	targetSwitchyard = "switchyard"
	targetHAProxy    = "haproxy"
	targetNginx      = "nginx"
	startTimeout     = 15 * time.Second
)

// routes is what one proxy instance forwards: its two frontends to the two
// backends.
type routes struct {
	iperfListen, iperfUpstream string
	echoListen, echoUpstream   string
	maxConns                   int    // connections to hold at once: the idle test's and some
	nofile                     uint64 // the open-files limit the proxy runs under
}

// A proxy is a program the bench puts between the load and the backends.
type proxy interface {
	// launch writes the configuration for r into dir and says how to run
	// the proxy in the foreground.
	launch(dir string, r routes) (launch, error)
}

// launch is how to run one proxy instance.
type launch struct {
	argv []string
	// anyExitOnStop: the program's exit status after SIGTERM means nothing
	// (true for the third-party proxies).
	anyExitOnStop bool
}

// target is one way the load reaches the backends: directly, or through
// a proxy started afresh every round.
type target struct {
	name  string
	proxy proxy // nil for direct

	// Set for the current round.
	proc      *child // the running proxy; nil for direct
	iperfPort int
	echoPort  int
	down      error // why the target cannot be measured for the rest of the round
}

// start starts the target's proxy for a round, on fresh ports, its files
// under dir. Direct needs nothing started.
func (t *target) start(ctx context.Context, dir string, be *backends, maxConns int, nofile uint64) error {
	t.proc, t.down = nil, nil
	if t.proxy == nil {
		t.iperfPort, t.echoPort = be.iperfPort, be.echoPort
		return nil
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	r := routes{
		iperfListen: loopback(ports[0]), iperfUpstream: be.iperfAddr(),
		echoListen: loopback(ports[1]), echoUpstream: be.echoAddr(),
		maxConns: maxConns, nofile: nofile,
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	l, err := t.proxy.launch(dir, r)
	if err != nil {
		return fmt.Errorf("%s: %w", t.name, err)
	}
	t.proc, err = startChild(t.name, filepath.Join(dir, t.name+".log"), l.argv...)
	if err != nil {
		return err
	}
	t.proc.anyExitOnStop = l.anyExitOnStop
	t.iperfPort, t.echoPort = ports[0], ports[1]
	return waitListening(ctx, t.proc, ports, startTimeout)
}

// stop stops the target's proxy, if it runs.
func (t *target) stop() error {
	if t.proc == nil {
		return nil
	}
	p := t.proc
	t.proc = nil
	if err := p.stop(); err != nil {
		return fmt.Errorf("%w\n%s", err, p.logTail())
	}
	return nil
}

// died is an error if the target's proxy has exited on its own.
func (t *target) died() error {
	if t.proc == nil || !t.proc.exited() {
		return nil
	}
	return fmt.Errorf("%s exited: %v\n%s", t.name, t.proc.waitErr(), t.proc.logTail())
}

// switchyardProxy runs one switchyard build.
type switchyardProxy struct {
	path      string
	workers   int
	pipeSize  int
	extraArgs []string
}

func (p switchyardProxy) launch(dir string, r routes) (launch, error) {
	cfg := filepath.Join(dir, "switchyard.toml")
	text := routerConfig(r, p.workers, p.pipeSize)
	// Builds that have an admin endpoint listen on 127.0.0.1:9989 unless
	// told not to, and two builds measured side by side would fight over
	// it; older builds refuse the [admin] table. Ask the build which it is.
	if quiet := noAdmin + text; p.accepts(dir, quiet) {
		text = quiet
	}
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return launch{}, err
	}
	return launch{argv: append([]string{p.path, "-config", cfg}, p.extraArgs...)}, nil
}

// noAdmin turns off the admin endpoint, and the drain on SIGTERM.
const noAdmin = "[admin]\nlisten = \"\"\ndrain_timeout = \"0s\"\n"

// accepts reports whether the build validates config (switchyard -check).
func (p switchyardProxy) accepts(dir, config string) bool {
	probe := filepath.Join(dir, "probe.toml")
	if err := os.WriteFile(probe, []byte(config), 0o644); err != nil {
		return false
	}
	defer os.Remove(probe)
	return exec.Command(p.path, "-check", "-config", probe).Run() == nil
}

// rotate returns xs turned left by k places, so that over len(xs) rounds
// every element comes first once.
func rotate[T any](xs []T, k int) []T {
	if len(xs) == 0 {
		return nil
	}
	k %= len(xs)
	return append(append([]T(nil), xs[k:]...), xs[:k]...)
}

func loopback(port int) string {
	return "127.0.0.1:" + strconv.Itoa(port)
}
