package router

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// End-to-end tests of balancer = "hash": connections are keyed by their
// source address (or server name), and a key goes to the same backend
// every time while loads leave the bound alone. The bound counts the
// connections open, so between two connections that must land by their
// key alone a test waits for the first to end (settle).

// hashConfig is testConfig with the hash balancer keyed by source_ip.
func hashConfig(backends ...string) *Config {
	cfg := testConfig(backends...)
	cfg.Routers[0].Client.Balancer = "hash"
	cfg.Routers[0].Client.HashKey = "source_ip"
	cfg.Routers[0].Client.HashBalanceFactor = 1.25
	return cfg
}

// settle waits until no connection is open on the proxy's server, so
// that the next is placed by its key alone, every endpoint's load zero.
func settle(t testing.TB, p *testProxy) {
	t.Helper()
	waitFor(t, "no connection open", e2eWait, func() bool { return p.srv.Stats().Active == 0 })
}

// askFrom is ask from the local address src.
func askFrom(addr string, src netip.Addr) (string, error) {
	d := net.Dialer{Timeout: e2eWait, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.(*net.TCPConn).SetLinger(0)
	_ = c.SetDeadline(time.Now().Add(e2eWait))
	if _, err := c.Write([]byte("?\n")); err != nil {
		return "", errNoAnswer
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("from %s: %w (%v)", src, errNoAnswer, err)
	}
	return line[:len(line)-1], nil
}

// askSettled is askFrom, then settle.
func askSettled(t testing.TB, p *testProxy, src netip.Addr) string {
	t.Helper()
	got, err := askFrom(p.addr, src)
	if err != nil {
		t.Fatalf("from %s: %v", src, err)
	}
	settle(t, p)
	return got
}

// sources are n loopback addresses from 127.0.0.<first> on.
func sources(first, n int) []netip.Addr {
	var out []netip.Addr
	for i := range n {
		out = append(out, netip.AddrFrom4([4]byte{127, 0, 0, byte(first + i)}))
	}
	return out
}

// mapSources asks once from each source and returns the backend each
// reached.
func mapSources(t testing.TB, p *testProxy, srcs []netip.Addr) map[netip.Addr]string {
	t.Helper()
	m := map[netip.Addr]string{}
	for _, s := range srcs {
		m[s] = askSettled(t, p, s)
	}
	return m
}

func countBackends(m map[netip.Addr]string) map[string]int {
	c := map[string]int{}
	for _, b := range m {
		c[b]++
	}
	return c
}

// waitEndpoints waits until the proxy's one name has exactly the
// endpoints addrs available, and no other.
func waitEndpoints(t testing.TB, p *testProxy, addrs ...string) {
	t.Helper()
	want := slices.Clone(addrs)
	slices.Sort(want)
	waitFor(t, fmt.Sprintf("endpoints %v", want), e2eWait, func() bool {
		var got []string
		for _, e := range nameState(t, p).Endpoints {
			if e.State == "available" {
				got = append(got, e.Addr.String())
			}
		}
		slices.Sort(got)
		return slices.Equal(got, want)
	})
}

// 1,000 connections in a row from 127.0.0.1 reach one backend.
func TestHashOneSourceOneBackend(t *testing.T) {
	a, b, c := startNamedBackend(t, "A"), startNamedBackend(t, "B"), startNamedBackend(t, "C")
	p := startProxy(t, hashConfig(a.addr, b.addr, c.addr))
	src := netip.MustParseAddr("127.0.0.1")
	start := time.Now()
	first := askSettled(t, p, src)
	for i := 1; i < 1000; i++ {
		if got := askSettled(t, p, src); got != first {
			t.Fatalf("connection %d from %s reached %s, the first %s", i+1, src, got, first)
		}
	}
	t.Logf("1000 connections from %s all reached %s in %v", src, first, time.Since(start))
}

// Sources spread over the backends, and each sticks to its own.
func TestHashSourcesSpreadAndStick(t *testing.T) {
	a, b, c := startNamedBackend(t, "A"), startNamedBackend(t, "B"), startNamedBackend(t, "C")
	p := startProxy(t, hashConfig(a.addr, b.addr, c.addr))
	srcs := sources(10, 60) // 127.0.0.10 .. 127.0.0.69
	home := mapSources(t, p, srcs)
	for round := 2; round <= 5; round++ {
		for _, s := range srcs {
			if got := askSettled(t, p, s); got != home[s] {
				t.Fatalf("connection %d from %s reached %s, the first %s", round, s, got, home[s])
			}
		}
	}
	counts := countBackends(home)
	t.Logf("60 sources over the backends: %v", counts)
	if len(counts) < 2 {
		t.Fatalf("60 sources all went to one backend: %v", counts)
	}
}

// A backend removed by a reload gives up its sources, and only those; put
// back, it has them again. The backend removed is the one with the median
// count of sources, so that its share is at most half of them whatever
// the ring (the three counts add up to 60): only a source moved off a
// backend that stayed can push the fraction moved past 1.5 x 1/3.
func TestHashRemapOnRemoval(t *testing.T) {
	addr := map[string]string{}
	for _, n := range []string{"A", "B", "C"} {
		addr[n] = startNamedBackend(t, n).addr
	}
	cfg := hashConfig(addr["A"], addr["B"], addr["C"])
	p := startProxy(t, cfg)
	srcs := sources(10, 60)
	before := mapSources(t, p, srcs)
	counts := countBackends(before)
	byCount := []string{"A", "B", "C"}
	slices.SortFunc(byCount, func(x, y string) int { return counts[x] - counts[y] })
	gone := byCount[1]
	var stay []string
	for _, n := range []string{"A", "B", "C"} {
		if n != gone {
			stay = append(stay, addr[n])
		}
	}

	reload(t, p, withEndpoints(cfg, stay...))
	waitEndpoints(t, p, stay...)
	after := mapSources(t, p, srcs)
	moved := 0
	for _, s := range srcs {
		switch {
		case after[s] == gone:
			t.Errorf("%s still reached %s, removed", s, gone)
		case before[s] == gone:
			moved++
		case after[s] != before[s]:
			t.Errorf("%s moved from %s to %s, though %s stayed", s, before[s], after[s], before[s])
		}
	}
	frac := float64(moved) / float64(len(srcs))
	t.Logf("before %v; %s removed: %d of %d sources moved (%.3f), now %v", counts, gone, moved, len(srcs), frac, countBackends(after))
	if frac > 1.5/3 {
		t.Errorf("%.3f of the sources moved when one backend of three left, want at most %.3f", frac, 1.5/3)
	}

	reload(t, p, withEndpoints(cfg, addr["A"], addr["B"], addr["C"])) // it comes back
	waitEndpoints(t, p, addr["A"], addr["B"], addr["C"])
	back := mapSources(t, p, srcs)
	returned := 0
	for _, s := range srcs {
		if back[s] == before[s] {
			returned++
		}
	}
	rfrac := float64(returned) / float64(len(srcs))
	t.Logf("%s back: %d of %d sources on their first backend (%.3f), now %v", gone, returned, len(srcs), rfrac, countBackends(back))
	if rfrac < 0.95 {
		t.Errorf("only %.3f of the sources went back to their first backend, want at least 0.95", rfrac)
	}
}

// One source holding 40 connections over 4 backends: the bound
// (hash_balance_factor 1.25) spreads them, none above
// ceil(1.25 * 40 / 4) = 13.
func TestHashBoundedLoad(t *testing.T) {
	var addrs []string
	for _, n := range []string{"A", "B", "C", "D"} {
		addrs = append(addrs, startNamedBackend(t, n).addr)
	}
	p := startProxy(t, hashConfig(addrs...))
	homeName := askSettled(t, p, netip.MustParseAddr("127.0.0.1"))

	const n, backends, factor = 40, 4, 1.25
	counts := map[string]int{}
	var order []string
	for range n {
		_, name := hold(t, p.addr) // from 127.0.0.1, left open
		counts[name]++
		order = append(order, name)
	}
	bound := int(math.Ceil(factor * n / backends))
	loads := map[string]int64{}
	var total int64
	for _, e := range nameState(t, p).Endpoints {
		loads[e.Addr.String()] = e.Load
		total += e.Load
	}
	t.Logf("40 held connections: %v (order %v); endpoint loads %v; the source's home %s", counts, order, loads, homeName)
	if order[0] != homeName {
		t.Errorf("the first connection, with nothing open, reached %s, not the source's home %s", order[0], homeName)
	}
	if total != n {
		t.Errorf("endpoint loads add up to %d, want %d", total, n)
	}
	for name, k := range counts {
		if k > bound+1 {
			t.Errorf("%s carries %d of %d connections, above ceil(%.2f * %d / %d) + 1 = %d", name, k, n, factor, n, backends, bound+1)
		} else if k > bound {
			t.Errorf("%s carries %d of %d connections, above the bound the balancer documents, ceil(%.2f * %d / %d) = %d",
				name, k, n, factor, n, backends, bound)
		}
	}
	for addr, l := range loads {
		if l > int64(bound) {
			t.Errorf("endpoint %s has load %d, above %d", addr, l, bound)
		}
	}
	if len(counts) != backends {
		t.Errorf("40 connections bounded at %d each used %d backends, want all %d", bound, len(counts), backends)
	}
}

// startCertBackends starts n TLS servers on loopback sharing one
// certificate for names; each answers every line with its id, "s1" to
// "sn". pool trusts the certificate.
func startCertBackends(t testing.TB, n int, names ...string) (addrs []string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
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
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	conf := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	for i := range n {
		id := fmt.Sprintf("s%d", i+1)
		ln, err := tls.Listen("tcp", "127.0.0.1:0", conf)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		t.Cleanup(func() {
			ln.Close()
			wg.Wait()
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer c.Close()
					_ = c.SetDeadline(time.Now().Add(e2eWait))
					r := bufio.NewReader(c)
					for {
						if _, err := r.ReadString('\n'); err != nil {
							return
						}
						if _, err := io.WriteString(c, id+"\n"); err != nil {
							return
						}
					}
				}()
			}
		}()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, pool
}

// tlsAskFrom is tlsAsk from the local address src.
func tlsAskFrom(t testing.TB, addr string, src netip.Addr, serverName string, pool *x509.CertPool) string {
	t.Helper()
	d := net.Dialer{Timeout: e2eWait, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.(*net.TCPConn).SetLinger(0)
	_ = raw.SetDeadline(time.Now().Add(e2eWait))
	c := tls.Client(raw, &tls.Config{ServerName: serverName, RootCAs: pool})
	if err := c.Handshake(); err != nil {
		t.Fatalf("TLS handshake for %s from %s through the proxy: %v", serverName, src, err)
	}
	if _, err := io.WriteString(c, "?\n"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("answer for %s from %s: %v", serverName, src, err)
	}
	return line[:len(line)-1]
}

// hash_key = "sni": the server name, not the source, picks the backend.
// Every name has the same three TLS backends (one certificate for every
// name). 20 connections for x.test and 20 for y.test, each from a source
// of its own, reach one backend per name, also with the name in another
// case; and a dozen names, hashed apart, do not all land on one backend.
func TestHashBySNI(t *testing.T) {
	names := []string{"x.test", "y.test"}
	for i := range 10 {
		names = append(names, fmt.Sprintf("n%d.test", i))
	}
	addrs, pool := startCertBackends(t, 3, names...)
	var eps []interpreter.Endpoint
	for _, a := range addrs {
		eps = append(eps, interpreter.Endpoint{Addr: netip.MustParseAddrPort(a), Weight: 1})
	}
	cfg := hashConfig()
	cfg.Routers[0].Client.HashKey = "sni"
	st := &interpreter.StaticSettings{Names: map[string][]interpreter.Endpoint{}}
	for _, n := range names {
		st.Names["/svc/"+n] = eps
	}
	cfg.Routers[0].Interpreter.Settings = st
	cfg.Routers[0].Servers[0].Dst = "/svc/{sni}"
	cfg.Routers[0].Servers[0].HandshakeTimeout = 5 * time.Second
	p := startProxy(t, cfg)

	home := map[string]string{}
	for _, n := range names {
		k := 2
		if n == "x.test" || n == "y.test" {
			k = 20
		}
		srcs := sources(10, k)
		for i, s := range srcs {
			server := n
			if i == len(srcs)-1 {
				server = strings.ToUpper(n) // the name is matched in any case
			}
			got := tlsAskFrom(t, p.addr, s, server, pool)
			settle(t, p)
			if i == 0 {
				home[n] = got
			} else if got != home[n] {
				t.Fatalf("%s from %s reached %s; from %s it reached %s", server, s, got, srcs[0], home[n])
			}
		}
	}
	used := map[string]int{}
	for _, b := range home {
		used[b]++
	}
	t.Logf("x.test -> %s, y.test -> %s; %d names over the backends: %v", home["x.test"], home["y.test"], len(names), used)
	if len(used) < 2 {
		t.Errorf("%d server names all went to one backend: %v", len(names), home)
	}
}
