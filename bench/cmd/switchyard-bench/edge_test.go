package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
	"github.com/switchyard-proxy/switchyard/router"
	"github.com/switchyard-proxy/switchyard/server"
)

var edgeRoutes = func() routes {
	r := testRoutes
	r.sniListen, r.proxyListen = "127.0.0.1:7476", "127.0.0.1:7477"
	return r
}()

func TestProxyV2Header(t *testing.T) {
	src, dst := netip.MustParseAddrPort("192.0.2.10:40000"), netip.MustParseAddrPort("127.0.0.1:7477")
	h := proxyV2Header(src, dst)
	got, n, err := server.ParseProxy(append(slices.Clip(h), "payload"...), server.ProxyAllowV2)
	if err != nil || n != len(h) || n != 28 {
		t.Fatalf("ParseProxy = %+v, %d, %v; want a 28-byte header", got, n, err)
	}
	if got.Version != server.ProxyV2 || got.Local || got.Src != src || got.Dst != dst {
		t.Errorf("header says %+v, want v2 from %v to %v", got, src, dst)
	}
	if want := server.AppendProxy(nil, server.ProxyV2, src, dst); !bytes.Equal(h, want) {
		t.Errorf("header % x, the router writes % x", h, want)
	}
}

func TestEdgeLoad(t *testing.T) {
	plain := edgeLoad(edgePlain, 7475)
	if !plain.Reset || plain.Preamble != nil || !bytes.Equal(plain.message(), bytes.Repeat([]byte{'c'}, 32)) {
		t.Errorf("plain load = %+v", plain)
	}
	sni := edgeLoad(edgeSNI, 7476)
	if !sni.Reset || sni.Preamble != nil || !bytes.Equal(sni.message(), benchHello) {
		t.Errorf("sni load = %+v", sni)
	}
	proxy := edgeLoad(edgeProxy, 7477)
	h, n, err := server.ParseProxy(proxy.Preamble, server.ProxyAllowV2)
	if !proxy.Reset || err != nil || n != len(proxy.Preamble) || h.Dst != netip.MustParseAddrPort("127.0.0.1:7477") || len(proxy.message()) != 32 {
		t.Errorf("proxy load = %+v: header %+v, %v", proxy, h, err)
	}
}

func TestHAProxyDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{5 * time.Second: "5s", 1500 * time.Millisecond: "1500ms"} {
		if got := haproxyDuration(d); got != want {
			t.Errorf("haproxyDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestConnratePreambleReset runs connrate with a preamble against a server
// that takes the preamble, echoes the rest, and then sees how the client
// closed: with Reset, by RST.
func TestConnratePreambleReset(t *testing.T) {
	preamble, msg := []byte("HEADER:"), []byte("hello, echo")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ends := make(chan error, 1<<16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				buf := make([]byte, len(preamble)+len(msg))
				if _, err := io.ReadFull(c, buf); err != nil || !bytes.Equal(buf[:len(preamble)], preamble) {
					ends <- errors.New("no preamble")
					return
				}
				c.Write(buf[len(preamble):])
				_, err := c.Read(buf)
				ends <- err
			}()
		}
	}()
	r, err := connrate(context.Background(), ln.Addr().String(), connrateConfig{
		Concurrency: 2, Duration: 200 * time.Millisecond, Preamble: preamble, Message: msg, Reset: true,
	})
	if err != nil || r.Errors != 0 {
		t.Fatalf("connrate = %+v, %v", r, err)
	}
	for i := range r.Conns {
		if err := <-ends; !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("connection %d of %d ended with %v on the server, want a reset", i+1, r.Conns, err)
		}
	}
}

func TestSendAndExpectLongMismatch(t *testing.T) {
	c, s := net.Pipe()
	defer c.Close()
	want := bytes.Repeat([]byte{'x'}, 100)
	go func() {
		io.ReadFull(s, make([]byte, 100))
		got := slices.Clone(want)
		got[70] = 'y'
		s.Write(got)
		s.Close()
	}()
	err := sendAndExpect(c, want, want, make([]byte, 100))
	if err == nil || !strings.Contains(err.Error(), "from byte 70 on") {
		t.Fatalf("sendAndExpect = %v, want the offset of the first wrong byte", err)
	}
}

func TestRouterConfigEdge(t *testing.T) {
	text := routerConfig(edgeRoutes, 2, 0)
	for _, want := range []string{
		`"/svc/bench.test" = ["127.0.0.1:7007"]`,
		"listen = \"127.0.0.1:7476\"\n  dst = \"/svc/{sni}\"\n  handshake_timeout = \"5s\"\n",
		"listen = \"127.0.0.1:7477\"\n  dst = \"/svc/echo\"\n  proxy_protocol = \"v2\"\n  proxy_protocol_from = [\"127.0.0.0/8\"]\n  handshake_timeout = \"5s\"\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("config lacks %q:\n%s", want, text)
		}
	}
	if plain := routerConfig(testRoutes, 2, 0); strings.Contains(plain, "sni") || strings.Contains(plain, "proxy_protocol") {
		t.Errorf("config without edge routes has edge servers:\n%s", plain)
	}
	cfg, err := router.Parse([]byte(noAdmin + text))
	if err != nil {
		t.Fatalf("the router rejects the configuration: %v\n%s", err, text)
	}
	servers := cfg.Routers[0].Servers
	if len(servers) != 4 {
		t.Fatalf("%d servers, want 4", len(servers))
	}
	sni, proxy := servers[2], servers[3]
	if !sni.SNI() || sni.HandshakeTimeout != handshakeTimeout || sni.ProxyProtocol != "" || sni.MaxConnections != 9900 {
		t.Errorf("sni server = %+v", sni)
	}
	if proxy.SNI() || proxy.Dst != "/svc/echo" || proxy.ProxyProtocol != "v2" || proxy.HandshakeTimeout != handshakeTimeout ||
		!slices.Equal(proxy.ProxyProtocolFrom, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}) {
		t.Errorf("proxy server = %+v", proxy)
	}
}

func TestHAProxyConfigEdge(t *testing.T) {
	cfg := haproxyConfig(edgeRoutes)
	for _, want := range []string{
		"frontend sni\n    bind 127.0.0.1:7476\n    tcp-request inspect-delay 5s\n" +
			"    tcp-request content accept if { req_ssl_hello_type 1 }\n" +
			"    use_backend bench.test if { req_ssl_sni -i bench.test }\n",
		"backend bench.test\n    server bench.test 127.0.0.1:7007\n",
		"frontend proxy\n    bind 127.0.0.1:7477 accept-proxy\n    default_backend echo\n",
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("haproxy config lacks %q:\n%s", want, cfg)
		}
	}
	if plain := haproxyConfig(testRoutes); strings.Contains(plain, "sni") || strings.Contains(plain, "accept-proxy") {
		t.Errorf("config without edge routes has edge frontends:\n%s", plain)
	}
	checkWithTool(t, "haproxy", func(dir string) []string {
		path := filepath.Join(dir, "haproxy.cfg")
		os.WriteFile(path, []byte(cfg), 0o644)
		return []string{"haproxy", "-c", "-q", "-f", path}
	})
}

// fakeBuild is a shell script standing in for a switchyard build whose
// -check refuses every configuration that has one of refuse.
func fakeBuild(t *testing.T, refuse ...string) string {
	t.Helper()
	script := "#!/bin/sh\n# -check -config FILE\n"
	for _, r := range refuse {
		script += "if grep -qF '" + r + "' \"$3\"; then echo 'switchyard: 1 problem in configuration:'; echo '\tx.toml:9: " + r + ": unknown key'; exit 1; fi\n"
	}
	path := filepath.Join(t.TempDir(), "switchyard")
	if err := os.WriteFile(path, []byte(script+"exit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSwitchyardLaunchEdge(t *testing.T) {
	tests := []struct {
		name     string
		refuse   []string
		edge     bool
		admin    bool
		noEdge   string
		wantEdge bool
	}{
		{name: "current build", edge: true, admin: true, wantEdge: true},
		{name: "edge not asked for", admin: true},
		{name: "build from before the edge servers", refuse: []string{"handshake_timeout"}, edge: true, admin: true,
			noEdge: "the build does not take the SNI and PROXY servers (exit status 1: switchyard: 1 problem in configuration: x.toml:9: handshake_timeout: unknown key); connrate-edge not measured"},
		{name: "build from before the admin endpoint", refuse: []string{"handshake_timeout", "[admin]"}, edge: true,
			noEdge: "handshake_timeout: unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRoutes
			if tt.edge {
				r = edgeRoutes
			}
			dir := t.TempDir()
			l, err := switchyardProxy{path: fakeBuild(t, tt.refuse...)}.launch(dir, r)
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "switchyard.toml"))
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			if l.edge != tt.wantEdge || strings.Contains(text, "{sni}") != tt.wantEdge {
				t.Errorf("edge %v, config with {sni} %v; want %v", l.edge, strings.Contains(text, "{sni}"), tt.wantEdge)
			}
			if strings.HasPrefix(text, noAdmin) != tt.admin {
				t.Errorf("config begins with the [admin] table: %v, want %v", !tt.admin, tt.admin)
			}
			if !strings.Contains(l.noEdge, tt.noEdge) || (tt.noEdge == "") != (l.noEdge == "") {
				t.Errorf("noEdge = %q, want %q", l.noEdge, tt.noEdge)
			}
		})
	}
}

func TestTargetMeasures(t *testing.T) {
	edge := func(v string) step { return step{measurement: measureEdge, variant: v} }
	direct := &target{name: targetDirect, echoPort: 7007, sniPort: 7007}
	proxied := &target{name: targetHAProxy, proxy: haproxyProxy{}, echoPort: 7475, sniPort: 7476, proxyPort: 7477}
	nginx := &target{name: targetNginx, proxy: nginxProxy{}, echoPort: 7475}
	tests := []struct {
		t    *target
		st   step
		want bool
		port int
	}{
		{direct, edge(edgePlain), true, 7007},
		{direct, edge(edgeSNI), true, 7007},
		{direct, edge(edgeProxy), false, 0},
		{direct, step{measurement: measureIdle}, false, 0},
		{proxied, edge(edgePlain), true, 7475},
		{proxied, edge(edgeSNI), true, 7476},
		{proxied, edge(edgeProxy), true, 7477},
		{nginx, edge(edgePlain), false, 0},
		{nginx, step{measurement: measureConnrate}, true, 0},
	}
	for _, tt := range tests {
		if got := tt.t.measures(tt.st); got != tt.want {
			t.Errorf("%s measures %s = %v, want %v", tt.t.name, tt.st, got, tt.want)
		}
		if tt.st.measurement == measureEdge && tt.t.edgePort(tt.st.variant) != tt.port {
			t.Errorf("%s: port of %s = %d, want %d", tt.t.name, tt.st, tt.t.edgePort(tt.st.variant), tt.port)
		}
	}
}

func TestStepsEdge(t *testing.T) {
	o, err := parseFlags([]string{"-only", "connrate-edge"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for round, want := range map[int][]string{
		1: {"edge-plain", "edge-sni", "edge-proxy"},
		2: {"edge-sni", "edge-proxy", "edge-plain"},
		3: {"edge-proxy", "edge-plain", "edge-sni"},
		4: {"edge-plain", "edge-sni", "edge-proxy"},
	} {
		var names []string
		for _, st := range (&bencher{o: o}).steps(round) {
			names = append(names, st.String())
		}
		if !slices.Equal(names, want) {
			t.Errorf("round %d: steps = %v, want %v", round, names, want)
		}
	}
}

func TestDirectStartEdge(t *testing.T) {
	d := &target{name: targetDirect}
	be := &backends{iperfPort: 5201, echoPort: 7007}
	if err := d.start(context.Background(), t.TempDir(), be, 100, 1024, true); err != nil {
		t.Fatal(err)
	}
	if d.sniPort != 7007 || d.proxyPort != 0 {
		t.Errorf("direct's edge ports: sni %d, proxy %d; want the echo server's and none", d.sniPort, d.proxyPort)
	}
	if err := d.start(context.Background(), t.TempDir(), be, 100, 1024, false); err != nil || d.sniPort != 0 {
		t.Errorf("without edge: sni port %d, %v", d.sniPort, err)
	}
}

var edgeSamples = []sample{
	{1, "direct", "conn_per_s_edge_plain", 10000}, {1, "direct", "conn_per_s_edge_sni", 9000},
	{1, "switchyard", "conn_per_s_edge_plain", 8000}, {1, "switchyard", "conn_per_s_edge_sni", 7800}, {1, "switchyard", "conn_per_s_edge_proxy", 8000},
	{1, "haproxy", "conn_per_s_edge_plain", 6000}, {1, "haproxy", "conn_per_s_edge_proxy", 5400},
	{2, "switchyard", "conn_per_s_edge_plain", 7000}, {2, "switchyard", "conn_per_s_edge_sni", 6300}, {2, "switchyard", "conn_per_s_edge_proxy", 7070},
	{2, "haproxy", "conn_per_s_edge_sni", 5000}, // plain failed this round
	{1, "switchyard", "conn_per_s", 8100},
}

func TestEdgeRatios(t *testing.T) {
	got := edgeRatios(edgeSamples)
	want := []sample{
		{1, "direct", "conn_edge_sni_per_plain", 0.9},
		{1, "switchyard", "conn_edge_sni_per_plain", 0.975}, {1, "switchyard", "conn_edge_proxy_per_plain", 1},
		{1, "haproxy", "conn_edge_proxy_per_plain", 0.9},
		{2, "switchyard", "conn_edge_sni_per_plain", 0.9}, {2, "switchyard", "conn_edge_proxy_per_plain", 1.01},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("edgeRatios =\n%v\nwant\n%v", got, want)
	}
}

func TestWriteTableEdge(t *testing.T) {
	targets := []string{"direct", "switchyard", "haproxy", "nginx"}
	s := benchsummary.Summary{
		Targets:  targets,
		Settings: benchsummary.Settings{Runs: 2, ConnrateSecs: 5, ConnrateConcurrency: 50},
		Figures:  summarize(targets, append(slices.Clone(edgeSamples), edgeRatios(edgeSamples)...)),
	}
	var b bytes.Buffer
	writeTable(&b, s)
	out := b.String()
	for _, want := range []string{
		"| figure | direct | switchyard | haproxy |\n|---|--:|--:|--:|\n",
		"| conn/s plain ↑ | 10000 | 7500 (7000–8000) · 75% | 6000 · 60% |\n",
		"| conn/s sni ↑ | 9000 | 7050 (6300–7800) · 78% | 5000 · 56% |\n",
		"| conn/s proxy ↑ | – | 7535 (7070–8000) | 5400 |\n",
		"| sni ÷ plain ↑ | 0.900 | 0.938 (0.900–0.975) | – |\n",
		"| proxy ÷ plain ↑ | – | 1.005 (1.000–1.010) | 0.900 |\n",
		"50 workers for 5 s per variant",
		"a 1520 B TLS ClientHello for bench.test",
		"a 28 B PROXY v2 header",
		"Goal, sni and proxy within 5 % of plain (÷ plain ≥ 0.95): switchyard: sni ÷ plain 0.938 (OVER), proxy ÷ plain 1.005 (within).",
		// the main table, for the one main figure measured
		"| conn/s ↑ | – | 8100 | – | – |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}

	// Only connrate-edge measured: no empty main table.
	s.Figures = summarize(targets, edgeSamples[:3])
	b.Reset()
	writeTable(&b, s)
	if strings.Contains(b.String(), "| figure | direct | switchyard | haproxy | nginx |") || strings.Contains(b.String(), "Cells:") {
		t.Errorf("main table printed without a figure of its own:\n%s", b.String())
	}
}

// TestEdgeFiguresContract checks what switchyard-benchplot asks of a
// figure (its name: lower-case letters, digits and _, 64 at most), and
// that the edge figures are apart from the main catalogue, whose every
// figure the contract test writes.
func TestEdgeFiguresContract(t *testing.T) {
	for _, f := range edgeFigures {
		if len(f.name) > 64 || strings.Trim(f.name, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("figure name %q would not pass switchyard-benchplot", f.name)
		}
		if _, ok := figureNamed(f.name); !ok {
			t.Errorf("figureNamed(%q) finds nothing", f.name)
		}
		if slices.ContainsFunc(figures, func(g figure) bool { return g.name == f.name }) {
			t.Errorf("%s is in the main catalogue too", f.name)
		}
	}
}

// edgeRun runs every connrate-edge variant briefly against a proxy
// serving r's edge frontends in front of e.
func edgeRun(t *testing.T, r routes) {
	t.Helper()
	for _, v := range edgeVariants {
		port := map[string]string{edgePlain: r.echoListen, edgeSNI: r.sniListen, edgeProxy: r.proxyListen}[v]
		ap := netip.MustParseAddrPort(port)
		cfg := edgeLoad(v, int(ap.Port()))
		cfg.Concurrency, cfg.Duration = 4, 250*time.Millisecond
		res, err := connrate(context.Background(), port, cfg)
		if err != nil || res.Errors != 0 {
			t.Errorf("%s: %d conns, %d errors (first: %v), %v", v, res.Conns, res.Errors, res.FirstErr, err)
		}
	}
	// Routing is by the server name: another one gets no echo.
	other, err := captureClientHello("other.test")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.sniListen)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if err := sendAndExpect(c, other, other, make([]byte, len(other))); err == nil {
		t.Errorf("a ClientHello for other.test came back: the SNI frontend does not route by name")
	}
}

// edgeTestRoutes are routes on free loopback ports to the echo server e.
func edgeTestRoutes(t *testing.T, e *testEcho) routes {
	t.Helper()
	ports, err := freePorts(4)
	if err != nil {
		t.Fatal(err)
	}
	return routes{
		iperfListen: loopback(ports[0]), iperfUpstream: e.addr,
		echoListen: loopback(ports[1]), echoUpstream: e.addr,
		sniListen: loopback(ports[2]), proxyListen: loopback(ports[3]),
		maxConns: 200, nofile: 1024,
	}
}

// TestEdgeRunRouter runs the edge variants through the router, in this
// process, on the configuration the bench writes for a switchyard build.
func TestEdgeRunRouter(t *testing.T) {
	e := startTestEcho(t)
	r := edgeTestRoutes(t, e)
	cfg, err := router.Parse([]byte(noAdmin + routerConfig(r, 1, 0)))
	if err != nil {
		t.Fatal(err)
	}
	p, err := router.Start(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	edgeRun(t, r)
	if err := p.Stop(); err != nil {
		t.Error(err)
	}
	e.waitIdle(t)
}

// TestEdgeRunHAProxy runs the edge variants through HAProxy, when it is
// installed, as the bench starts it.
func TestEdgeRunHAProxy(t *testing.T) {
	sys := hostSystem()
	hp, err := sys.haproxy()
	if err != nil {
		t.Skip(err)
	}
	e := startTestEcho(t)
	r := edgeTestRoutes(t, e)
	dir := t.TempDir()
	l, err := hp.launch(dir, r)
	if err != nil || !l.edge {
		t.Fatalf("launch = %+v, %v", l, err)
	}
	proc, err := startChild("haproxy", filepath.Join(dir, "haproxy.log"), l.argv...)
	if err != nil {
		t.Fatal(err)
	}
	proc.anyExitOnStop = true
	defer func() {
		if err := proc.stop(); err != nil {
			t.Error(err)
		}
	}()
	var ports []int
	for _, a := range []string{r.iperfListen, r.echoListen, r.sniListen, r.proxyListen} {
		ports = append(ports, int(netip.MustParseAddrPort(a).Port()))
	}
	if err := waitListening(context.Background(), proc, ports, startTimeout); err != nil {
		t.Fatal(err)
	}
	edgeRun(t, r)
}
