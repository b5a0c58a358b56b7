package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
// backends and, when connrate-edge is measured, two more to the echo
// server: one routing by the server name of a TLS ClientHello, one taking
// a PROXY v2 header from loopback.
type routes struct {
	iperfListen, iperfUpstream string
	echoListen, echoUpstream   string
	// The edge frontends, both to echoUpstream; "": not measured.
	sniListen, proxyListen string
	maxConns               int    // connections to hold at once: the idle test's and some
	nofile                 uint64 // the open-files limit the proxy runs under
}

// edge reports whether r has the edge frontends.
func (r routes) edge() bool { return r.sniListen != "" }

// withoutEdge is r without the edge frontends.
func (r routes) withoutEdge() routes {
	r.sniListen, r.proxyListen = "", ""
	return r
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
	// edge: the configuration serves the edge frontends the routes asked
	// for; when they asked and it does not, noEdge says why.
	edge   bool
	noEdge string
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
	// The edge frontends; 0: not served. Direct's sni port is the echo
	// server's, which echoes a ClientHello like any bytes; direct has no
	// proxy port, as the echo server would send a PROXY header back.
	sniPort, proxyPort int
	noEdge             string // why the edge frontends were asked for and not served
	down               error  // why the target cannot be measured for the rest of the round
}

// start starts the target's proxy for a round, on fresh ports, its files
// under dir, with the edge frontends if edge. Direct needs nothing started.
func (t *target) start(ctx context.Context, dir string, be *backends, maxConns int, nofile uint64, edge bool) error {
	t.proc, t.down = nil, nil
	t.sniPort, t.proxyPort, t.noEdge = 0, 0, ""
	if t.proxy == nil {
		t.iperfPort, t.echoPort = be.iperfPort, be.echoPort
		if edge {
			t.sniPort = be.echoPort
		}
		return nil
	}
	n := 2
	if edge {
		n = 4
	}
	ports, err := freePorts(n)
	if err != nil {
		return err
	}
	r := routes{
		iperfListen: loopback(ports[0]), iperfUpstream: be.iperfAddr(),
		echoListen: loopback(ports[1]), echoUpstream: be.echoAddr(),
		maxConns: maxConns, nofile: nofile,
	}
	if edge {
		r.sniListen, r.proxyListen = loopback(ports[2]), loopback(ports[3])
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
	served := ports[:2]
	switch {
	case edge && l.edge:
		t.sniPort, t.proxyPort = ports[2], ports[3]
		served = ports
	case edge:
		t.noEdge = l.noEdge
	}
	return waitListening(ctx, t.proc, served, startTimeout)
}

// measures reports whether st applies to t: idle needs a proxy to charge
// the connections to, and connrate-edge a frontend for its variant. A
// target without the edge frontends (nginx, a build from before them) runs
// no variant, not even plain.
func (t *target) measures(st step) bool {
	switch st.measurement {
	case measureIdle:
		return t.proxy != nil
	case measureEdge:
		return t.edgePort(st.variant) != 0
	}
	return true
}

// edgePort is the port of t's frontend for the connrate-edge variant v;
// 0: t has none this round.
func (t *target) edgePort(v string) int {
	if t.sniPort == 0 {
		return 0
	}
	switch v {
	case edgeSNI:
		return t.sniPort
	case edgeProxy:
		return t.proxyPort
	}
	return t.echoPort
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
	offload   string // every server's offload key; "": left out
	extraArgs []string
}

func (p switchyardProxy) launch(dir string, r routes) (launch, error) {
	cfg := filepath.Join(dir, "switchyard.toml")
	text, edge, noEdge := p.config(dir, r)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return launch{}, err
	}
	return launch{argv: append([]string{p.path, "-config", cfg}, p.extraArgs...), edge: edge, noEdge: noEdge}, nil
}

// config is the configuration for r that the build accepts, and whether it
// has r's edge frontends. Builds that have an admin endpoint listen on
// 127.0.0.1:9989 unless told not to, and two builds measured side by side
// would fight over it; older builds refuse the [admin] table, and builds
// from before SNI routing and PROXY headers refuse the edge servers. Ask
// the build (switchyard -check) which it is, dropping the edge servers
// before the [admin] table. If it accepts nothing, the last try stands,
// and the start says what is wrong.
func (p switchyardProxy) config(dir string, r routes) (text string, edge bool, noEdge string) {
	tries := []routes{r}
	if r.edge() {
		tries = append(tries, r.withoutEdge())
	}
	var edgeErr error
	for _, rr := range tries {
		base := routerConfigOffload(rr, p.workers, p.pipeSize, p.offload)
		for _, text = range []string{noAdmin + base, base} {
			err := p.check(dir, text)
			if err == nil {
				if r.edge() && !rr.edge() {
					noEdge = fmt.Sprintf("the build does not take the SNI and PROXY servers (%v); connrate-edge not measured", edgeErr)
				}
				return text, rr.edge(), noEdge
			}
			if rr.edge() {
				edgeErr = err // the last: without [admin], which old builds refuse too
			}
		}
	}
	return text, false, ""
}

// noAdmin turns off the admin endpoint, and the drain on SIGTERM.
const noAdmin = "[admin]\nlisten = \"\"\ndrain_timeout = \"0s\"\n"

// check has the build validate config (switchyard -check); the error has
// the gist of what it said.
func (p switchyardProxy) check(dir, config string) error {
	probe := filepath.Join(dir, "probe.toml")
	if err := os.WriteFile(probe, []byte(config), 0o644); err != nil {
		return err
	}
	defer os.Remove(probe)
	out, err := exec.Command(p.path, "-check", "-config", probe).CombinedOutput()
	if err != nil {
		if msg := checkMessage(string(out)); msg != "" {
			return fmt.Errorf("%w: %s", err, msg)
		}
		return err
	}
	return nil
}

// checkMessage is the gist of what switchyard -check said: its first line,
// and when that only announces a list ("3 problems in configuration:"),
// the first item.
func checkMessage(out string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	msg := strings.TrimSpace(lines[0])
	if strings.HasSuffix(msg, ":") && len(lines) > 1 {
		msg += " " + strings.TrimSpace(lines[1])
	}
	return msg
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
