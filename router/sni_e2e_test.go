package router

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/server"
)

// tlsBackend is a TLS server on loopback with its own certificate for
// name: it answers each line with its name, so a client sees which
// backend completed its handshake.
type tlsBackend struct {
	addr string
	pool *x509.CertPool // trusts its certificate
}

func startTLSBackend(t testing.TB, name string) *tlsBackend {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := io.WriteString(c, name+"\n"); err != nil {
						return
					}
				}
			}()
		}
	}()
	return &tlsBackend{addr: ln.Addr().String(), pool: pool}
}

// sniConfig routes "/svc/{sni}" to the backends, by name.
func sniConfig(backends map[string]*tlsBackend) *Config {
	cfg := testConfig()
	names := map[string][]interpreter.Endpoint{}
	for name, b := range backends {
		names["/svc/"+name] = []interpreter.Endpoint{{Addr: netip.MustParseAddrPort(b.addr), Weight: 1}}
	}
	cfg.Routers[0].Interpreter.Settings = &interpreter.StaticSettings{Names: names}
	cfg.Routers[0].Servers[0].Dst = "/svc/{sni}"
	cfg.Routers[0].Servers[0].HandshakeTimeout = 5 * time.Second
	return cfg
}

// tlsAsk connects to addr through TLS for serverName, verifying the
// backend's own certificate, and returns the name of the backend that
// answered.
func tlsAsk(t testing.TB, addr, serverName string, pool *x509.CertPool, conn func(net.Conn) net.Conn) string {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, e2eWait)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(e2eWait))
	c := tls.Client(conn(raw), &tls.Config{ServerName: serverName, RootCAs: pool})
	if err := c.Handshake(); err != nil {
		t.Fatalf("TLS handshake for %s through the proxy: %v", serverName, err)
	}
	if _, err := io.WriteString(c, "?\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("answer for %s: %v", serverName, err)
	}
	return line[:len(line)-1]
}

// byteAtATime writes the first 300 bytes of the connection (the record
// header, and the ClientHello up to and often past its server name) a
// byte per segment, then the rest as it comes.
type byteAtATime struct {
	net.Conn
	sent *int
}

func (c byteAtATime) Write(b []byte) (int, error) {
	for i := range b {
		if *c.sent >= 300 {
			n, err := c.Conn.Write(b[i:])
			return i + n, err
		}
		if _, err := c.Conn.Write(b[i : i+1]); err != nil {
			return i, err
		}
		*c.sent++
		time.Sleep(50 * time.Microsecond) // each byte leaves alone (TCP_NODELAY is Go's default)
	}
	return len(b), nil
}

func same(c net.Conn) net.Conn { return c }

// TLS clients reach the backend their server name routes to, through the
// proxy, which never decrypts: each completes its handshake with that
// backend's own certificate, also when the ClientHello arrives a byte at a
// time.
func TestSNIRoutesByServerName(t *testing.T) {
	a, b := startTLSBackend(t, "a.test"), startTLSBackend(t, "b.test")
	p := startProxy(t, sniConfig(map[string]*tlsBackend{"a.test": a, "b.test": b}))
	for range 3 {
		if got := tlsAsk(t, p.addr, "a.test", a.pool, same); got != "a.test" {
			t.Fatalf("a.test reached %q", got)
		}
		if got := tlsAsk(t, p.addr, "B.Test", b.pool, same); got != "b.test" {
			t.Fatalf("B.Test reached %q", got)
		}
	}
	if got := tlsAsk(t, p.addr, "b.test", b.pool, func(c net.Conn) net.Conn { return byteAtATime{c, new(int)} }); got != "b.test" {
		t.Fatalf("a hello a byte at a time reached %q", got)
	}
	waitFor(t, "7 connections ended", e2eWait, func() bool { return p.srv.Stats().Active == 0 })
	if st := p.srv.Stats(); st.Ended[server.ReasonEOF]+st.Ended[server.ReasonReset] != 7 {
		t.Errorf("ended %v", st.Ended)
	}
}

// What cannot be routed by name is closed with its reason, or goes to
// sni_default when set.
func TestSNIWithoutAServerName(t *testing.T) {
	a, d := startTLSBackend(t, "a.test"), startTLSBackend(t, "default.test")
	cfg := sniConfig(map[string]*tlsBackend{"a.test": a, "default.test": d})
	cfg.Routers[0].Servers[0].HandshakeTimeout = 300 * time.Millisecond
	p := startProxy(t, cfg)

	// No server name: Go sends none for an IP address.
	c, err := tls.Dial("tcp", p.addr, &tls.Config{InsecureSkipVerify: true})
	if err == nil {
		c.Close()
		t.Fatal("a hello without SNI was routed")
	}
	waitEnded(t, p.srv, server.ReasonNoSNI, 1)

	plain := dial(t, p.addr)
	if _, err := io.WriteString(plain, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = expectClosed(t, plain, e2eWait)
	waitEnded(t, p.srv, server.ReasonBadHandshake, 1)

	silent := dial(t, p.addr)
	start := time.Now()
	_ = expectClosed(t, silent, e2eWait)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("a silent client was closed after %v, before handshake_timeout", d)
	}
	waitEnded(t, p.srv, server.ReasonHandshakeTimeout, 1)

	cfg = sniConfig(map[string]*tlsBackend{"a.test": a, "default.test": d})
	cfg.Routers[0].Servers[0].SNIDefault = "/svc/default.test"
	q := startProxy(t, cfg)
	raw, err := net.DialTimeout("tcp", q.addr, e2eWait)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tc := tls.Client(raw, &tls.Config{ServerName: "", RootCAs: d.pool, InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("no SNI with sni_default: %v", err)
	}
	if got := tc.ConnectionState().PeerCertificates[0].Subject.CommonName; got != "default.test" {
		t.Fatalf("no SNI with sni_default reached %q", got)
	}
}
