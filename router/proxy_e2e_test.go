package router

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/server"
)

// End-to-end tests of the PROXY protocol: a client (standing for a load
// balancer in front) writes a header made with server.AppendProxy, then
// its own bytes; the router, with send_proxy, writes a header of its own
// to a backend that reports what that header said and echoes the rest.
// The backend must see the source (and destination) the client's header
// gave, and the bytes after it untouched.

// startHeaderReporter starts a backend on addr that reads the PROXY
// header the router sends (either version), answers one line,
// "<version> src=<src> dst=<dst>" ("<version> local" for a header without
// addresses, "error=<err>" for none or a malformed one), then echoes every
// byte after the header until EOF, and half-closes.
func startHeaderReporter(t testing.TB, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b := serveBackend(t, ln, func(c *net.TCPConn) {
		_ = c.SetDeadline(time.Now().Add(e2eWait))
		buf := make([]byte, 0, server.ProxyHeaderMax)
		for {
			n, err := c.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			h, size, perr := server.ParseProxy(buf, server.ProxyAllowAny)
			switch {
			case perr == nil:
				line := fmt.Sprintf("%s src=%s dst=%s\n", h.Version, h.Src, h.Dst)
				if h.Local {
					line = h.Version.String() + " local\n"
				}
				if _, err := io.WriteString(c, line); err != nil {
					return
				}
				if _, err := c.Write(buf[size:]); err != nil {
					return
				}
				_, _ = io.Copy(c, c)
				_ = c.CloseWrite()
				return
			case errors.Is(perr, server.ErrProxyIncomplete) && err == nil && len(buf) < cap(buf):
				continue
			default:
				fmt.Fprintf(c, "error=%v (read: %v, %d bytes)\n", perr, err, len(buf))
				return
			}
		}
	})
	return b.addr
}

// headerExchange connects to addr, writes prefix (a PROXY header, or
// whatever the test sends instead) and payload, half-closes, and returns
// the backend's report line, every byte after it, and the client's own
// address. With pieces, prefix goes a byte per write; otherwise prefix and
// payload go in one write, so that the router finds the client's bytes
// right behind the header.
func headerExchange(t testing.TB, addr string, prefix, payload []byte, pieces bool) (report string, back []byte, local netip.AddrPort) {
	t.Helper()
	c := dial(t, addr)
	_ = c.SetDeadline(time.Now().Add(e2eWait))
	local = netip.MustParseAddrPort(c.LocalAddr().String())
	if pieces {
		for i := range prefix {
			if _, err := c.Write(prefix[i : i+1]); err != nil {
				t.Fatalf("byte %d of the header: %v", i, err)
			}
		}
		if _, err := c.Write(payload); err != nil {
			t.Fatal(err)
		}
	} else if _, err := c.Write(append(append([]byte(nil), prefix...), payload...)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("no report from the backend through %s: %q, %v", addr, line, err)
	}
	back, err = io.ReadAll(r)
	if err != nil {
		t.Fatalf("echo through %s: %v (%d bytes)", addr, err, len(back))
	}
	return strings.TrimSuffix(line, "\n"), back, local
}

// decoyPayload is a client's bytes that begin as a PROXY header of
// version v would (and go on with one of the other version and more), so
// that a router consuming more than the one header, or parsing the
// client's bytes as one, shows in the echo or in the source reported.
func decoyPayload(t testing.TB, v server.ProxyVersion) []byte {
	decoySrc, decoyDst := netip.MustParseAddrPort("192.0.2.66:666"), netip.MustParseAddrPort("192.0.2.77:777")
	other := server.ProxyV1
	if v == server.ProxyV1 {
		other = server.ProxyV2
	}
	p := server.AppendProxy(nil, v, decoySrc, decoyDst)
	p = server.AppendProxy(p, other, decoySrc, decoyDst)
	p = append(p, "PROXY UNKNOWN\r\n"...)
	return append(p, randomBytes(t, 32<<10)...)
}

// startAccessProxy is startProxy with the access log on, in JSON, into a
// file of the test's; it returns the file's path.
func startAccessProxy(t testing.TB, cfg *Config) (*testProxy, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "access.log")
	cfg.Log = LogConfig{Access: true, AccessPath: path}
	p, err := StartWith(cfg, discardLogger(), Options{AccessHandler: func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }})
	if err != nil {
		t.Fatalf("StartWith: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	srv := p.Routers()[0].Servers()[0]
	return &testProxy{Proxy: p, addr: srv.Addr().String(), srv: srv}, path
}

// accessLines waits until the access log at path has n whole lines and
// returns them decoded.
func accessLines(t testing.TB, path string, n int) []map[string]any {
	t.Helper()
	var data []byte
	waitFor(t, fmt.Sprintf("%d access lines", n), e2eWait, func() bool {
		var err error
		data, err = os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return bytes.Count(data, []byte("\n")) >= n
	})
	var lines []map[string]any
	for _, l := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(l, &m); err != nil {
			t.Fatalf("access line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// proxyConfig forwards listen to backend, accepting headers of version
// accept from the prefixes from, and sending send_proxy.
func proxyConfig(backend, listen, accept, send string, from ...string) *Config {
	cfg := testConfig(backend)
	sc := &cfg.Routers[0].Servers[0]
	sc.Listen = netip.MustParseAddrPort(listen)
	sc.ProxyProtocol = accept
	for _, f := range from {
		sc.ProxyProtocolFrom = append(sc.ProxyProtocolFrom, netip.MustParsePrefix(f))
	}
	sc.HandshakeTimeout = 5 * time.Second
	cfg.Routers[0].Client.SendProxy = send
	return cfg
}

func versionOf(s string) server.ProxyVersion {
	if s == "v1" {
		return server.ProxyV1
	}
	return server.ProxyV2
}

var (
	hdrSrc4 = netip.MustParseAddrPort("203.0.113.7:4242")
	hdrDst4 = netip.MustParseAddrPort("198.51.100.1:443")
	hdrSrc6 = netip.MustParseAddrPort("[2001:db8::7]:4242")
	hdrDst6 = netip.MustParseAddrPort("[2001:db8::1]:443")
)

// A header the server accepts gives the connection its source: the
// backend, through send_proxy, sees the header's source and destination,
// not the loopback peer; the bytes after the header, which begin like
// headers themselves, pass untouched; and the access line names the
// header's source.
func TestProxyProtocolAcceptedSourceReachesTheBackend(t *testing.T) {
	for _, tt := range []struct {
		name     string
		listen   string
		accept   string // proxy_protocol
		hdr      server.ProxyVersion
		src, dst netip.AddrPort
		send     string // send_proxy
		pieces   bool
	}{
		{"v1", "127.0.0.1:0", "v1", server.ProxyV1, hdrSrc4, hdrDst4, "v1", false},
		{"v2", "127.0.0.1:0", "v2", server.ProxyV2, hdrSrc4, hdrDst4, "v2", false},
		{"any takes v1 IPv6", "127.0.0.1:0", "any", server.ProxyV1, hdrSrc6, hdrDst6, "v2", false},
		{"any takes v2 IPv6", "127.0.0.1:0", "any", server.ProxyV2, hdrSrc6, hdrDst6, "v1", false},
		{"any takes v2 IPv4, sends v1", "127.0.0.1:0", "any", server.ProxyV2, hdrSrc4, hdrDst4, "v1", false},
		{"v1 mixed pair", "127.0.0.1:0", "v1", server.ProxyV1, hdrSrc6, hdrDst4, "v1", false},
		{"v2 mixed pair", "127.0.0.1:0", "v2", server.ProxyV2, hdrSrc4, hdrDst6, "v2", false},
		{"v1 a byte at a time", "127.0.0.1:0", "v1", server.ProxyV1, hdrSrc4, hdrDst4, "v2", true},
		{"v2 a byte at a time", "127.0.0.1:0", "v2", server.ProxyV2, hdrSrc6, hdrDst6, "v1", true},
		{"v2 from ::1", "[::1]:0", "v2", server.ProxyV2, hdrSrc6, hdrDst6, "v1", false},
		{"any takes v1 IPv4 from ::1", "[::1]:0", "any", server.ProxyV1, hdrSrc4, hdrDst4, "v2", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := startHeaderReporter(t, "127.0.0.1:0")
			p, path := startAccessProxy(t, proxyConfig(be, tt.listen, tt.accept, tt.send, "127.0.0.0/8", "::1/128"))
			payload := decoyPayload(t, tt.hdr)
			report, back, _ := headerExchange(t, p.addr, server.AppendProxy(nil, tt.hdr, tt.src, tt.dst), payload, tt.pieces)
			if want := fmt.Sprintf("%s src=%s dst=%s", tt.send, tt.src, tt.dst); report != want {
				t.Fatalf("the backend saw %q, want %q", report, want)
			}
			if !bytes.Equal(back, payload) {
				t.Fatalf("echo of %d bytes came back as %d bytes (equal: %v; first bytes %q)",
					len(payload), len(back), bytes.Equal(back, payload), back[:min(len(back), 64)])
			}
			waitEnded(t, p.srv, server.ReasonEOF, 1)
			l := accessLines(t, path, 1)[0]
			want := map[string]any{"source": tt.src.String(), "dst": testDst, "endpoint": be, "reason": "eof",
				"bytes_up": float64(len(payload))}
			for k, v := range want {
				if l[k] != v {
					t.Errorf("access line: %s = %v, want %v (line %v)", k, l[k], v, l)
				}
			}
		})
	}
}

// A header without addresses (v2 LOCAL, v1 UNKNOWN, v2 PROXY of the
// UNSPEC family) keeps the connection's own: send_proxy carries the real
// peer, 127.0.0.1:<port>, and the address it connected to.
func TestProxyProtocolLocalKeepsThePeer(t *testing.T) {
	unspec := append([]byte("\r\n\r\n\x00\r\nQUIT\n"), 0x21, 0x00, 0, 0) // PROXY, UNSPEC, no addresses
	for _, tt := range []struct {
		name string
		hdr  []byte
		send string
	}{
		{"v2 LOCAL", server.AppendProxy(nil, server.ProxyV2, netip.AddrPort{}, netip.AddrPort{}), "v1"},
		{"v1 UNKNOWN", server.AppendProxy(nil, server.ProxyV1, netip.AddrPort{}, netip.AddrPort{}), "v2"},
		{"v1 UNKNOWN with addresses", []byte("PROXY UNKNOWN 2001:db8::7 2001:db8::1 4242 443\r\n"), "v1"},
		{"v2 PROXY UNSPEC", unspec, "v2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := startHeaderReporter(t, "127.0.0.1:0")
			p, path := startAccessProxy(t, proxyConfig(be, "127.0.0.1:0", "any", tt.send, "127.0.0.0/8"))
			payload := decoyPayload(t, server.ProxyV2)
			report, back, local := headerExchange(t, p.addr, tt.hdr, payload, false)
			if want := fmt.Sprintf("%s src=%s dst=%s", tt.send, local, p.addr); report != want {
				t.Fatalf("the backend saw %q, want %q (the real peer)", report, want)
			}
			if !bytes.Equal(back, payload) {
				t.Fatalf("echo of %d bytes came back as %d bytes", len(payload), len(back))
			}
			waitEnded(t, p.srv, server.ReasonEOF, 1)
			if l := accessLines(t, path, 1)[0]; l["source"] != local.String() {
				t.Errorf("access line: source = %v, want %s", l["source"], local)
			}
		})
	}
}

// send_proxy on a server that accepts no header: the backend sees the
// real client and the address it connected to, the proxy's.
func TestProxyProtocolSendWithoutAccept(t *testing.T) {
	for _, tt := range []struct{ name, listen, send string }{
		{"v1", "127.0.0.1:0", "v1"},
		{"v2", "127.0.0.1:0", "v2"},
		{"v1 over ::1", "[::1]:0", "v1"},
		{"v2 over ::1", "[::1]:0", "v2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := startHeaderReporter(t, "127.0.0.1:0")
			p := startProxy(t, proxyConfig(be, tt.listen, "", tt.send))
			// The client's bytes are a header: with no proxy_protocol
			// they are its own, and pass.
			payload := decoyPayload(t, versionOf(tt.send))
			report, back, local := headerExchange(t, p.addr, nil, payload, false)
			if want := fmt.Sprintf("%s src=%s dst=%s", tt.send, local, p.addr); report != want {
				t.Fatalf("the backend saw %q, want %q", report, want)
			}
			if !bytes.Equal(back, payload) {
				t.Fatalf("echo of %d bytes came back as %d bytes", len(payload), len(back))
			}
			waitEnded(t, p.srv, server.ReasonEOF, 1)
		})
	}
}

// A peer outside proxy_protocol_from is closed at once, well before
// handshake_timeout, even with a valid header, and nothing is dialed.
func TestProxyProtocolUntrustedPeerRefused(t *testing.T) {
	for _, tt := range []struct{ name, listen, accept string }{
		{"v1", "127.0.0.1:0", "v1"},
		{"v2", "127.0.0.1:0", "v2"},
		{"any", "127.0.0.1:0", "any"},
		{"::1 not in 127.0.0.0/8", "[::1]:0", "any"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := startHeaderReporter(t, "127.0.0.1:0")
			from := []string{"10.0.0.0/8"}
			if tt.listen == "[::1]:0" {
				from = append(from, "127.0.0.0/8")
			}
			p := startProxy(t, proxyConfig(be, tt.listen, tt.accept, "v1", from...))
			for i, hdr := range [][]byte{
				server.AppendProxy(nil, server.ProxyV1, hdrSrc4, hdrDst4),
				server.AppendProxy(nil, server.ProxyV2, hdrSrc4, hdrDst4),
				nil, // says nothing
			} {
				start := time.Now()
				c := dial(t, p.addr)
				if len(hdr) > 0 {
					_, _ = c.Write(hdr) // may fail: the proxy may have closed it already
				}
				err := expectClosed(t, c, e2eWait)
				if d := time.Since(start); d > 2*time.Second {
					t.Errorf("connection %d: an untrusted peer was closed after %v (handshake_timeout is 5s): not at once", i, d)
				}
				st := waitEnded(t, p.srv, server.ReasonProxyRefused, uint64(i+1))
				if st.Ended[server.ReasonProxyRefused] != uint64(i+1) {
					t.Fatalf("connection %d: ended %v", i, st.Ended)
				}
				t.Logf("connection %d closed: %v", i, err)
			}
			if st := p.srv.Stats(); st.ConnectAttempts != 0 || st.Ended[server.ReasonHandshakeTimeout] != 0 {
				t.Errorf("refused peers: %d connect attempts, ended %v", st.ConnectAttempts, st.Ended)
			}
		})
	}
}

// A malformed header, one of a version the server does not accept, or
// none (the client's own bytes) closes the connection with bad_handshake;
// a header cut short, then silence, is closed at handshake_timeout with
// handshake_timeout, not before.
func TestProxyProtocolBadHeaders(t *testing.T) {
	const timeout = 300 * time.Millisecond
	v2 := server.AppendProxy(nil, server.ProxyV2, hdrSrc4, hdrDst4)
	badCommand := append([]byte(nil), v2...)
	badCommand[12] = 0x2f
	for _, tt := range []struct {
		accept    string
		bad       map[string][]byte
		truncated []byte
	}{
		{
			accept: "v1",
			bad: map[string][]byte{
				"bad source":     []byte("PROXY TCP4 bad\r\n"),
				"plain data":     []byte("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"),
				"a v2 header":    v2,
				"TCP4 with IPv6": []byte("PROXY TCP4 2001:db8::7 2001:db8::1 1 2\r\n"),
			},
			truncated: []byte("PROXY TCP4 1.2.3.4"),
		},
		{
			accept: "v2",
			bad: map[string][]byte{
				"bad command": badCommand,
				"plain data":  []byte("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"),
				"a v1 header": server.AppendProxy(nil, server.ProxyV1, hdrSrc4, hdrDst4),
			},
			truncated: v2[:20],
		},
	} {
		t.Run(tt.accept, func(t *testing.T) {
			be := startHeaderReporter(t, "127.0.0.1:0")
			cfg := proxyConfig(be, "127.0.0.1:0", tt.accept, "v1", "127.0.0.0/8")
			cfg.Routers[0].Servers[0].HandshakeTimeout = timeout
			p := startProxy(t, cfg)
			n := uint64(0)
			for what, b := range tt.bad {
				c := dial(t, p.addr)
				if _, err := c.Write(b); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				_ = expectClosed(t, c, e2eWait)
				n++
				if st := waitEnded(t, p.srv, server.ReasonBadHandshake, n); st.Ended[server.ReasonHandshakeTimeout] != 0 {
					t.Fatalf("%s: ended %v, want bad_handshake", what, st.Ended)
				}
			}

			start := time.Now()
			c := dial(t, p.addr)
			if _, err := c.Write(tt.truncated); err != nil {
				t.Fatal(err)
			}
			_ = expectClosed(t, c, e2eWait)
			d := time.Since(start)
			if d < timeout-50*time.Millisecond {
				t.Errorf("a truncated header was closed after %v, before handshake_timeout (%v)", d, timeout)
			}
			if d > timeout+2*time.Second {
				t.Errorf("a truncated header was closed after %v, long past handshake_timeout (%v)", d, timeout)
			}
			st := waitEnded(t, p.srv, server.ReasonHandshakeTimeout, 1)
			if st.Ended[server.ReasonBadHandshake] != n || st.Ended[server.ReasonHandshakeTimeout] != 1 || st.ConnectAttempts != 0 {
				t.Errorf("ended %v, %d connect attempts; want %d bad_handshake, 1 handshake_timeout, none",
					st.Ended, st.ConnectAttempts, n)
			}
			t.Logf("truncated header closed after %v", d)
		})
	}
}

// prefixConn writes hdr in the same write as the first bytes written
// through it: the PROXY header and the ClientHello in one segment.
type prefixConn struct {
	net.Conn
	hdr []byte
}

func (c *prefixConn) Write(b []byte) (int, error) {
	if c.hdr == nil {
		return c.Conn.Write(b)
	}
	n, err := c.Conn.Write(append(append([]byte(nil), c.hdr...), b...))
	n -= len(c.hdr)
	c.hdr = nil
	return max(n, 0), err
}

// A server may take a PROXY header and route by the ClientHello behind
// it: the TLS client, after the header, completes its handshake with the
// backend of its server name, whether the header and the hello come
// apart, together, or the hello a byte at a time; the access line has the
// header's source.
func TestProxyProtocolThenSNI(t *testing.T) {
	a, b := startTLSBackend(t, "a.test"), startTLSBackend(t, "b.test")
	cfg := sniConfig(map[string]*tlsBackend{"a.test": a, "b.test": b})
	cfg.Routers[0].Servers[0].ProxyProtocol = "v2"
	cfg.Routers[0].Servers[0].ProxyProtocolFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	p, path := startAccessProxy(t, cfg)
	hdr := server.AppendProxy(nil, server.ProxyV2, hdrSrc4, hdrDst4)

	apart := func(c net.Conn) net.Conn {
		if _, err := c.Write(hdr); err != nil {
			t.Fatal(err)
		}
		return c
	}
	together := func(c net.Conn) net.Conn { return &prefixConn{Conn: c, hdr: hdr} }
	slowHello := func(c net.Conn) net.Conn { return byteAtATime{apart(c), new(int)} }
	for name, conn := range map[string]func(net.Conn) net.Conn{"apart": apart, "together": together, "hello a byte at a time": slowHello} {
		if got := tlsAsk(t, p.addr, "b.test", b.pool, conn); got != "b.test" {
			t.Fatalf("%s: b.test after a PROXY header reached %q", name, got)
		}
	}
	if got := tlsAsk(t, p.addr, "a.test", a.pool, apart); got != "a.test" {
		t.Fatalf("a.test after a PROXY header reached %q", got)
	}
	waitFor(t, "4 connections ended", e2eWait, func() bool { return p.srv.Stats().Active == 0 })
	st := p.srv.Stats()
	if st.Ended[server.ReasonEOF]+st.Ended[server.ReasonReset] != 4 {
		t.Errorf("ended %v", st.Ended)
	}
	for _, l := range accessLines(t, path, 4) {
		if l["source"] != hdrSrc4.String() || (l["dst"] != "/svc/b.test" && l["dst"] != "/svc/a.test") {
			t.Errorf("access line %v: want source %s and dst /svc/a.test or /svc/b.test", l, hdrSrc4)
		}
	}
}

// A header with nothing behind it yet: the connection is routed on the
// header alone (no ClientHello is awaited on a server without {sni}), so
// a protocol whose server speaks first works, and a client that closes
// right after its header still has its stream carried to the backend.
func TestProxyProtocolHeaderAlone(t *testing.T) {
	for _, v := range []server.ProxyVersion{server.ProxyV1, server.ProxyV2} {
		t.Run(v.String(), func(t *testing.T) {
			be := startHeaderReporter(t, "127.0.0.1:0")
			p := startProxy(t, proxyConfig(be, "127.0.0.1:0", v.String(), "v2", "127.0.0.0/8"))
			want := fmt.Sprintf("v2 src=%s dst=%s", hdrSrc4, hdrDst4)

			// The server speaks first: the client waits for it.
			c := dial(t, p.addr)
			_ = c.SetDeadline(time.Now().Add(e2eWait))
			if _, err := c.Write(server.AppendProxy(nil, v, hdrSrc4, hdrDst4)); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(c)
			if line, err := r.ReadString('\n'); err != nil || strings.TrimSuffix(line, "\n") != want {
				t.Fatalf("the backend spoke first %q, %v; want %q", line, err, want)
			}
			payload := decoyPayload(t, v)
			if _, err := c.Write(payload); err != nil {
				t.Fatal(err)
			}
			_ = c.CloseWrite()
			if back, err := io.ReadAll(r); err != nil || !bytes.Equal(back, payload) {
				t.Fatalf("echo after the backend spoke first: %d bytes of %d, %v", len(back), len(payload), err)
			}

			// The header, then the client's FIN.
			report, back, _ := headerExchange(t, p.addr, server.AppendProxy(nil, v, hdrSrc4, hdrDst4), nil, false)
			if report != want || len(back) != 0 {
				t.Fatalf("a header then EOF: the backend saw %q and echoed %q; want %q and nothing", report, back, want)
			}
			waitEnded(t, p.srv, server.ReasonEOF, 2)
		})
	}
}
