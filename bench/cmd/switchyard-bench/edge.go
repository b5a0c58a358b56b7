package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

// The connrate-edge measurement is the connection rate through the edge
// frontends that a TLS passthrough or a balancer's backend has, against
// the same load on the plain route in the same round:
//
//   - plain: write 32 B, read them back (the connrate load, on the echo
//     route);
//   - sni: write benchHello, a TLS ClientHello for bench.test, read it back:
//     the proxy peeks at the hello, routes by its server name and passes
//     it on untouched to the echo server (no TLS is spoken);
//   - proxy: write a PROXY v2 header and 32 B in one write, read the 32 B
//     back: the proxy consumes the header.
//
// Each variant runs -connrate-c workers for -connrate-secs, with the same
// load generator, every connection closed with SO_LINGER 0: the client
// sends RST and keeps no TIME_WAIT socket, of which the variants back to
// back would otherwise leave tens of thousands each, for a minute, on the
// ephemeral ports. Direct runs plain and sni; proxy would have the echo
// server send the header back. Each round runs the variants in an order
// rotated from the last one's (see steps), each against every target. The
// ratios sni ÷ plain and proxy ÷ plain are taken per round and target, so
// that drift between rounds cancels out.
const (
	edgePlain = "plain"
	edgeSNI   = "sni"
	edgeProxy = "proxy"
)

var edgeVariants = []string{edgePlain, edgeSNI, edgeProxy}

// benchServerName is the server name of benchHello, and the name the edge
// frontends route by.
const benchServerName = "bench.test"

// handshakeTimeout bounds, in both proxies, the wait for a ClientHello or
// a PROXY header (Switchyard's handshake_timeout, HAProxy's
// inspect-delay; HAProxy's accept-proxy waits up to timeout client).
const handshakeTimeout = 5 * time.Second

// proxyFrom is the peers the Switchyard edge server takes a PROXY header
// from (proxy_protocol_from): the load generator, on loopback.
const proxyFrom = "127.0.0.0/8"

// edgeSource is the client a PROXY header speaks for: a documentation
// address (TEST-NET-1), as if a balancer in front had accepted it.
var edgeSource = netip.MustParseAddrPort("192.0.2.10:40000")

// edgeEchoSize is the bytes that plain and proxy connections exchange.
const edgeEchoSize = 32

// edgeLoad is what each connection of variant v sends to the frontend on
// port, and expects back.
func edgeLoad(v string, port int) connrateConfig {
	cfg := connrateConfig{Size: edgeEchoSize, Reset: true}
	switch v {
	case edgeSNI:
		cfg.Message = benchHello
	case edgeProxy:
		dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(port))
		cfg.Preamble = proxyV2Header(edgeSource, dst)
	}
	return cfg
}

// proxyV2Header is a PROXY protocol v2 header (PROXY command, TCP over
// IPv4) saying that the connection came from src to dst, both IPv4. It is
// written here from the specification, not with the router's code, so that
// the two check each other.
func proxyV2Header(src, dst netip.AddrPort) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n") // the signature
	b = append(b, 0x21, 0x11)             // version 2, PROXY; AF_INET, STREAM
	b = binary.BigEndian.AppendUint16(b, 12)
	s, d := src.Addr().As4(), dst.Addr().As4()
	b = append(append(b, s[:]...), d[:]...)
	b = binary.BigEndian.AppendUint16(b, src.Port())
	return binary.BigEndian.AppendUint16(b, dst.Port())
}

// haproxyDuration writes d as HAProxy's time format does: 5s, 1500ms.
func haproxyDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

// connrateEdge runs variant v of connrate-edge against t.
func (b *bencher) connrateEdge(ctx context.Context, round int, t *target, v string) ([]figValue, string, error) {
	port := t.edgePort(v)
	cfg := edgeLoad(v, port)
	cfg.Concurrency = b.o.connrateC
	cfg.Duration = time.Duration(b.o.connrateSecs) * time.Second
	r, err := connrate(ctx, loopback(port), cfg)
	if err != nil {
		return nil, "", err
	}
	if r.Errors > 0 {
		b.note("round %d, %s: connrate-edge %s: %d of %d connections failed (first: %v)", round, t.name, v, r.Errors, r.Errors+r.Conns, r.FirstErr)
	}
	vals := []figValue{{edgeConnFigure(v), r.perSecond()}}
	return vals, fmt.Sprintf("%6.0f conn/s  p50 %.2f ms  p99 %.2f ms  %d errors", r.perSecond(), ms(r.P50), ms(r.P99), r.Errors), nil
}

// edgeConnFigure is the figure of variant v's connection rate.
func edgeConnFigure(v string) string { return "conn_per_s_edge_" + v }

// edgeRatioFigure is the figure of variant v's connection rate ÷ plain's.
func edgeRatioFigure(v string) string { return "conn_edge_" + v + "_per_plain" }

// edgeFigures are connrate-edge's figures, in the order of its table.
var edgeFigures = []figure{
	{edgeConnFigure(edgePlain), "conn/s plain", "conn/s", benchsummary.BetterHigher, 0, shareOfDirect},
	{edgeConnFigure(edgeSNI), "conn/s sni", "conn/s", benchsummary.BetterHigher, 0, shareOfDirect},
	{edgeConnFigure(edgeProxy), "conn/s proxy", "conn/s", benchsummary.BetterHigher, 0, shareOfDirect},
	{edgeRatioFigure(edgeSNI), "sni ÷ plain", "ratio", benchsummary.BetterHigher, 3, unrelated},
	{edgeRatioFigure(edgeProxy), "proxy ÷ plain", "ratio", benchsummary.BetterHigher, 3, unrelated},
}

// edgeBudget is the goal: Switchyard's sni and proxy connection
// rates within 5 % of its plain one.
const edgeBudget = 0.95

// edgeRatios derives, from the connrate-edge samples, one sample of sni ÷
// plain and one of proxy ÷ plain per round and target that measured both.
func edgeRatios(samples []sample) []sample {
	type key struct {
		round  int
		target string
	}
	var order []key
	rates := map[key]map[string]float64{}
	for _, s := range samples {
		v, ok := strings.CutPrefix(s.figure, edgeConnFigure(""))
		if !ok {
			continue
		}
		k := key{s.round, s.target}
		if rates[k] == nil {
			rates[k] = map[string]float64{}
			order = append(order, k)
		}
		rates[k][v] = s.value
	}
	var out []sample
	for _, k := range order {
		plain, ok := rates[k][edgePlain]
		if !ok || plain <= 0 {
			continue
		}
		for _, v := range []string{edgeSNI, edgeProxy} {
			if x, ok := rates[k][v]; ok {
				out = append(out, sample{k.round, k.target, edgeRatioFigure(v), x / plain})
			}
		}
	}
	return out
}

// writeEdgeTable prints connrate-edge's table, for the targets that have
// its figures, with the goal's verdict for each switchyard build. It
// prints nothing if none has.
func writeEdgeTable(w io.Writer, s benchsummary.Summary) {
	var targets []string
	for _, t := range s.Targets {
		if slices.ContainsFunc(edgeFigures, func(f figure) bool { _, ok := s.Lookup(t, f.name); return ok }) {
			targets = append(targets, t)
		}
	}
	rows := tableRows(s, targets, edgeFigures)
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### Connection rate: plain, SNI-routed, PROXY header\n\n")
	writeRows(w, targets, rows)
	fmt.Fprintf(w, "\nEach connection: connect, write, read the echo, close with RST (SO_LINGER 0); %d workers for %d s per variant. "+
		"plain: %d B; sni: a %d B TLS ClientHello for %s (crypto/tls, ALPN h2, http/1.1), routed by its server name; "+
		"proxy: a %d B PROXY v2 header and %d B in one write, the %d B echoed. "+
		"%% of direct's median where direct applies (not to proxy: the echo server would send the header back). "+
		"÷ plain: median over the rounds of each round's ratio to the same round's plain.\n",
		s.Settings.ConnrateConcurrency, s.Settings.ConnrateSecs, edgeEchoSize, len(benchHello), benchServerName,
		len(proxyV2Header(edgeSource, edgeSource)), edgeEchoSize, edgeEchoSize)
	var goal []string
	for _, t := range targets {
		if t == targetDirect || t == targetHAProxy || t == targetNginx {
			continue
		}
		var parts []string
		for _, v := range []string{edgeSNI, edgeProxy} {
			f, ok := s.Lookup(t, edgeRatioFigure(v))
			if !ok {
				parts = append(parts, v+" not measured")
				continue
			}
			verdict := "within"
			if f.Median < edgeBudget {
				verdict = "OVER"
			}
			parts = append(parts, fmt.Sprintf("%s ÷ plain %.3f (%s)", v, f.Median, verdict))
		}
		goal = append(goal, fmt.Sprintf("%s: %s", t, strings.Join(parts, ", ")))
	}
	if len(goal) > 0 {
		fmt.Fprintf(w, "\nGoal, sni and proxy within %.0f %% of plain (÷ plain ≥ %.2f): %s.\n", 100*(1-edgeBudget), edgeBudget, strings.Join(goal, "; "))
	}
}
