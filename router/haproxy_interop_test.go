package router

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/server"
)

// The PROXY protocol against a real HAProxy, both ways: HAProxy in front
// sending send-proxy / send-proxy-v2 to Switchyard, and Switchyard in
// front sending send_proxy to HAProxy's accept-proxy. In both, the
// backend at the end reads a PROXY header and reports the source it
// names: the client's own address must come through the chain.

// headerBackend reads a PROXY header from each connection, answers with
// the source it names, then echoes.
func headerBackend(t testing.TB, network, addr string) string {
	t.Helper()
	ln, err := net.Listen(network, addr)
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
				_ = c.SetDeadline(time.Now().Add(e2eWait))
				buf := make([]byte, 0, server.ProxyHeaderMax)
				for {
					n, err := c.Read(buf[len(buf):cap(buf)])
					buf = buf[:len(buf)+n]
					h, size, perr := server.ParseProxy(buf, server.ProxyAllowAny)
					if perr == nil {
						fmt.Fprintf(c, "src=%s\n", h.Src)
						if _, err := c.Write(buf[size:]); err != nil {
							return
						}
						_, _ = io.Copy(c, c)
						return
					}
					if !errors.Is(perr, server.ErrProxyIncomplete) || err != nil {
						fmt.Fprintf(c, "error=%v\n", perr)
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// startHAProxy runs haproxy in the foreground with cfg until the test
// ends, and waits until it accepts on listen.
func startHAProxy(t *testing.T, cfg, listen string) {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Fatal("haproxy is needed (make test installs it): ", err)
	}
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", path)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitFor(t, "haproxy listening on "+listen, e2eWait, func() bool {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// freeAddr is an address on host with a port free a moment ago.
func freeAddr(t *testing.T, host string) string {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

const haproxyGlobal = "global\n  maxconn 1000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n"

// askSource connects to addr, sends a line that looks like a PROXY header
// but is the client's own, and returns the client's address and the source
// the backend reported, checking that the line came back untouched.
func askSource(t *testing.T, addr string) (local netip.AddrPort, src string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, e2eWait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(e2eWait))
	if _, err := io.WriteString(c, "PROXY TCP4 not a header, the client's own bytes\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("through %s: %v", addr, err)
	}
	echo, err := r.ReadString('\n')
	if err != nil || echo != "PROXY TCP4 not a header, the client's own bytes\n" {
		t.Fatalf("echo %q, %v", echo, err)
	}
	return netip.MustParseAddrPort(c.LocalAddr().String()), strings.TrimSpace(line)
}

func TestHAProxySendsProxyToSwitchyard(t *testing.T) {
	for _, tt := range []struct{ name, send, host string }{
		{"v1 over IPv4", "send-proxy", "127.0.0.1"},
		{"v2 over IPv4", "send-proxy-v2", "127.0.0.1"},
		{"v1 over IPv6", "send-proxy", "::1"},
		{"v2 over IPv6", "send-proxy-v2", "::1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := headerBackend(t, "tcp", "127.0.0.1:0")
			cfg := testConfig(be)
			cfg.Routers[0].Servers[0].ProxyProtocol = "any"
			cfg.Routers[0].Servers[0].ProxyProtocolFrom = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			cfg.Routers[0].Servers[0].HandshakeTimeout = 5 * time.Second
			cfg.Routers[0].Client.SendProxy = "v1"
			p := startProxy(t, cfg)
			front := freeAddr(t, tt.host)
			startHAProxy(t, haproxyGlobal+fmt.Sprintf("frontend fe\n  bind %s\n  default_backend sy\nbackend sy\n  server s1 %s %s\n",
				front, p.addr, tt.send), front)
			local, src := askSource(t, front)
			if want := "src=" + local.String(); src != want {
				t.Fatalf("the backend saw %q, want %q: the client's address through HAProxy and Switchyard", src, want)
			}
		})
	}
}

func TestSwitchyardSendsProxyToHAProxy(t *testing.T) {
	for _, tt := range []struct{ name, send, host string }{
		{"v1 over IPv4", "v1", "127.0.0.1"},
		{"v2 over IPv4", "v2", "127.0.0.1"},
		{"v1 over IPv6", "v1", "::1"},
		{"v2 over IPv6", "v2", "::1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			be := headerBackend(t, "tcp", "127.0.0.1:0")
			back := freeAddr(t, "127.0.0.1")
			startHAProxy(t, haproxyGlobal+fmt.Sprintf("frontend fe\n  bind %s accept-proxy\n  default_backend be\nbackend be\n  server s1 %s send-proxy-v2\n",
				back, be), back)
			cfg := testConfig(back)
			cfg.Routers[0].Servers[0].Listen = netip.MustParseAddrPort(net.JoinHostPort(tt.host, "0"))
			cfg.Routers[0].Client.SendProxy = tt.send
			p := startProxy(t, cfg)
			local, src := askSource(t, p.addr)
			if want := "src=" + local.String(); src != want {
				t.Fatalf("the backend saw %q, want %q: the client's address through Switchyard and HAProxy", src, want)
			}
		})
	}
}
