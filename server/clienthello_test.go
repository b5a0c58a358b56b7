package server

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// errHelloSent ends a client's handshake once it has sent its ClientHello.
var errHelloSent = errors.New("ClientHello recorded")

// helloRecorder is a connection that keeps what a TLS client writes until
// it first reads: its ClientHello records.
type helloRecorder struct{ sent []byte }

func (c *helloRecorder) Read([]byte) (int, error) { return 0, errHelloSent }
func (c *helloRecorder) Write(p []byte) (int, error) {
	c.sent = append(c.sent, p...)
	return len(p), nil
}
func (c *helloRecorder) Close() error                     { return nil }
func (c *helloRecorder) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *helloRecorder) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *helloRecorder) SetDeadline(time.Time) error      { return nil }
func (c *helloRecorder) SetReadDeadline(time.Time) error  { return nil }
func (c *helloRecorder) SetWriteDeadline(time.Time) error { return nil }

// recordedHello returns the bytes a crypto/tls client with cfg sends first.
func recordedHello(t testing.TB, cfg *tls.Config) []byte {
	t.Helper()
	c := &helloRecorder{}
	if err := tls.Client(c, cfg).Handshake(); !errors.Is(err, errHelloSent) {
		t.Fatalf("client handshake: %v, want it to stop after the ClientHello", err)
	}
	if len(c.sent) == 0 {
		t.Fatal("the client sent nothing")
	}
	return c.sent
}

// replayConn plays b to a TLS server and swallows its answers.
type replayConn struct{ r *bytes.Reader }

func (c replayConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c replayConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c replayConn) Close() error                     { return nil }
func (c replayConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c replayConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c replayConn) SetDeadline(time.Time) error      { return nil }
func (c replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c replayConn) SetWriteDeadline(time.Time) error { return nil }

// goServerName returns the server name crypto/tls's server reads in b,
// and whether it read a ClientHello at all: a second opinion.
func goServerName(b []byte) (name string, ok bool) {
	cfg := &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		name, ok = h.ServerName, true
		return nil, errHelloSent
	}}
	_ = tls.Server(replayConn{bytes.NewReader(b)}, cfg).Handshake()
	return name, ok
}

func selfSigned(t testing.TB, host string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// resumingHello returns the ClientHello of a client of version that holds
// a session ticket from a real server on loopback, and the one it sent
// before it had the ticket.
func resumingHello(t testing.TB, version uint16) (fresh, resuming []byte) {
	t.Helper()
	const host = "resume.example"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	srv := &tls.Config{Certificates: []tls.Certificate{selfSigned(t, host)}, MinVersion: version, MaxVersion: version}
	served := make(chan struct{})
	go func() {
		defer close(served)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		s := tls.Server(c, srv)
		if s.Handshake() == nil {
			_, _ = s.Write([]byte("x"))
			_, _ = io.Copy(io.Discard, c) // until the client closes
		}
	}()
	cfg := &tls.Config{
		ServerName: host, InsecureSkipVerify: true,
		ClientSessionCache: tls.NewLRUClientSessionCache(1),
		MinVersion:         version, MaxVersion: version,
	}
	fresh = recordedHello(t, cfg)
	c, err := tls.Dial("tcp", ln.Addr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Reading the server's byte reads the TLS 1.3 tickets sent before it.
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	<-served
	resuming = recordedHello(t, cfg)
	if len(resuming) <= len(fresh) {
		t.Fatalf("the client's second ClientHello (%d bytes) is no longer than its first (%d): no ticket in it", len(resuming), len(fresh))
	}
	return fresh, resuming
}

// Wire encoding of hand-made ClientHellos.

func u16(v int) []byte                   { return []byte{byte(v >> 8), byte(v)} }
func concat(parts ...[]byte) []byte      { return bytes.Join(parts, nil) }
func vec8(parts ...[]byte) []byte        { b := concat(parts...); return append([]byte{byte(len(b))}, b...) }
func vec16(parts ...[]byte) []byte       { b := concat(parts...); return append(u16(len(b)), b...) }
func ext(typ int, data ...[]byte) []byte { return concat(u16(typ), vec16(data...)) }
func hostEntry(name string) []byte       { return concat([]byte{nameTypeHostName}, vec16([]byte(name))) }
func sni(entries ...[]byte) []byte       { return ext(extServerName, vec16(entries...)) }

// record frames payload as one record of type typ and version vers.
func record(typ byte, vers int, payload []byte) []byte {
	return concat([]byte{typ}, u16(vers), u16(len(payload)), payload)
}

// inRecords frames msg, a handshake message, as handshake records of at
// most size bytes each, of version 3.1 as clients send.
func inRecords(msg []byte, size int) []byte {
	var b []byte
	for len(msg) > 0 {
		n := min(size, len(msg))
		b = append(b, record(recordTypeHandshake, 0x0301, msg[:n])...)
		msg = msg[n:]
	}
	return b
}

// reframe takes the handshake message out of the records of hello and
// frames it again in records of at most size bytes.
func reframe(t testing.TB, hello []byte, size int) []byte {
	t.Helper()
	var msg []byte
	for b := hello; len(b) > 0; {
		if len(b) < recordHeaderLen || b[0] != recordTypeHandshake {
			t.Fatalf("not handshake records: % x", b[:min(len(b), recordHeaderLen)])
		}
		n := int(b[3])<<8 | int(b[4])
		msg = append(msg, b[recordHeaderLen:recordHeaderLen+n]...)
		b = b[recordHeaderLen+n:]
	}
	return inRecords(msg, size)
}

// helloFields are the fields of a hand-made ClientHello as on the wire,
// vectors with their lengths; extensions nil: no extensions block at all.
type helloFields struct {
	version, random, sessionID, suites, compression, extensions []byte
}

func defaultHello() helloFields {
	return helloFields{
		version:     u16(0x0303),
		random:      bytes.Repeat([]byte{0xaa}, 32),
		sessionID:   vec8(bytes.Repeat([]byte{0xbb}, 32)),
		suites:      vec16(u16(0x1301), u16(0x1302)),
		compression: vec8([]byte{0}),
		extensions:  vec16(sni(hostEntry("example.com")), ext(0x002b, vec8(u16(0x0304)))),
	}
}

// message is the ClientHello handshake message, with its header.
func (h helloFields) message() []byte {
	body := concat(h.version, h.random, h.sessionID, h.suites, h.compression, h.extensions)
	return concat([]byte{typeClientHello, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body)
}

// helloWith is the default hello changed by edit, in one record.
func helloWith(edit func(*helloFields)) []byte {
	h := defaultHello()
	edit(&h)
	return inRecords(h.message(), maxRecordPayload)
}

// helloNamed is a hello with a server_name of the one host_name name.
func helloNamed(name string) []byte {
	return helloWith(func(h *helloFields) { h.extensions = vec16(sni(hostEntry(name))) })
}

// paddedMessage is a ClientHello message naming example.com of exactly
// size bytes, padded with a padding extension (RFC 7685).
func paddedMessage(t testing.TB, size int) []byte {
	t.Helper()
	h := defaultHello()
	h.extensions = vec16(sni(hostEntry("example.com")), ext(21))
	pad := size - len(h.message())
	if pad < 0 {
		t.Fatalf("a message of %d bytes is too small to pad", size)
	}
	h.extensions = vec16(sni(hostEntry("example.com")), ext(21, make([]byte, pad)))
	return h.message()
}

// isHostName is the rule ServerName states for names, written apart.
func isHostName(s string) bool {
	if s == "" || len(s) > 253 || s != strings.ToLower(s) {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		if strings.Trim(l, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return strings.Trim(labels[len(labels)-1], "0123456789") != ""
}

// describe is a result of ServerName, for messages.
func describe(name string, err error) string {
	if err != nil {
		return "error " + err.Error()
	}
	return "name " + name
}

// checkServerName checks what ServerName promises of any input b and
// returns ServerName(b): one of the four errors or a valid name; a prefix
// gives ErrIncomplete or the same; the first final prefix is where the
// result stops changing; more bytes change nothing once final; and
// MaxClientHello bytes are always enough. every: check every prefix of a
// short b, not a sample (the fuzzer's minimizer runs this thousands of
// times an input).
func checkServerName(t testing.TB, b []byte, every bool) (string, error) {
	t.Helper()
	name, err := ServerName(b)
	result := describe(name, err)
	switch {
	case err == nil:
		if !isHostName(name) {
			t.Fatalf("ServerName(% x) = %q, not a valid lowercase host name", b, name)
		}
	case err == ErrIncomplete:
		if len(b) >= MaxClientHello {
			t.Fatalf("ServerName of %d bytes (MaxClientHello: %d) = ErrIncomplete", len(b), MaxClientHello)
		}
	case err == ErrNotTLS, err == ErrNoSNI:
	case errors.Is(err, ErrMalformed):
		if err == ErrMalformed {
			t.Fatalf("ServerName(% x) = bare ErrMalformed: it must say what is wrong", b)
		}
	default:
		t.Fatalf("ServerName(% x) = unexpected error %v", b, err)
	}
	if err != nil && name != "" {
		t.Fatalf("ServerName(% x) = %q with error %v", b, name, err)
	}
	if len(b) < MaxClientHello {
		padded := concat(b, make([]byte, MaxClientHello-len(b)))
		if pn, perr := ServerName(padded); perr == ErrIncomplete || err != ErrIncomplete && describe(pn, perr) != result {
			t.Fatalf("ServerName(% x): %s, but padded with zeros to MaxClientHello bytes: %s", b, result, describe(pn, perr))
		}
	}

	final := func(k int) bool { _, err := ServerName(b[:k]); return err != ErrIncomplete }
	var prefixes []int
	if every && len(b) <= 4096 {
		for k := range len(b) {
			prefixes = append(prefixes, k)
		}
	} else {
		for k := range min(len(b), 12) {
			prefixes = append(prefixes, k, len(b)-1-k)
		}
		for k := 0; k < len(b); k += max(len(b)/16, 1) {
			prefixes = append(prefixes, k)
		}
	}
	if err != ErrIncomplete {
		// The first final prefix: a search that trusts finality to be
		// monotone, checked at the boundary it finds.
		lo, hi := 0, len(b)
		for lo < hi {
			if mid := (lo + hi) / 2; final(mid) {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		prefixes = append(prefixes, max(lo-1, 0), lo)
		if lo > 0 && final(lo-1) {
			t.Fatalf("ServerName(% x): prefixes of %d and %d bytes are final, %d not", b, lo-1, len(b), lo)
		}
	}
	for _, k := range prefixes {
		if k > len(b) {
			continue
		}
		pn, perr := ServerName(b[:k])
		if perr != ErrIncomplete && describe(pn, perr) != result {
			t.Fatalf("ServerName(% x): %s, but of its first %d bytes: %s", b, result, k, describe(pn, perr))
		}
	}
	if err != ErrIncomplete {
		for _, more := range [][]byte{{0}, record(20, 0x0303, []byte{1}), bytes.Repeat([]byte{0xff}, 300)} {
			mn, merr := ServerName(concat(b, more))
			if describe(mn, merr) != result {
				t.Fatalf("ServerName(% x): %s, but followed by % x: %s", b, result, more, describe(mn, merr))
			}
		}
	}
	return name, err
}

// expectAllIncomplete checks that every prefix of hello shorter than end
// is ErrIncomplete.
func expectAllIncomplete(t testing.TB, hello []byte, end int) {
	t.Helper()
	for k := range end {
		if _, err := ServerName(hello[:k]); err != ErrIncomplete {
			t.Fatalf("first %d of %d bytes: %v, want ErrIncomplete", k, end, err)
		}
	}
}

func longName() string {
	// 63+1+63+1+63+1+61 = 253 bytes
	return strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 61)
}

// alpn is n protocol names of 255 bytes each.
func alpn(n int) []string {
	protos := make([]string, n)
	for i := range protos {
		protos[i] = strings.Repeat(string(rune('a'+i%26)), 255)
	}
	return protos
}

// realHello is what a crypto/tls client sends, and the result it should
// give.
type realHello struct {
	name    string
	hello   []byte
	want    string
	wantErr error
}

func realHellos(t testing.TB) []realHello {
	t.Helper()
	var allSuites []uint16
	for _, s := range tls.CipherSuites() {
		allSuites = append(allSuites, s.ID)
	}
	for _, s := range tls.InsecureCipherSuites() {
		allSuites = append(allSuites, s.ID)
	}
	cases := []struct {
		name    string
		cfg     *tls.Config
		want    string
		wantErr error
	}{
		{"TLS 1.3", &tls.Config{ServerName: "example.com", MinVersion: tls.VersionTLS13}, "example.com", nil},
		{"TLS 1.2 only", &tls.Config{ServerName: "www.example.org", MaxVersion: tls.VersionTLS12}, "www.example.org", nil},
		{"TLS 1.0 to 1.2", &tls.Config{ServerName: "old.example", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS12}, "old.example", nil},
		{"ALPN", &tls.Config{ServerName: "h2.example", NextProtos: []string{"h2", "http/1.1"}}, "h2.example", nil},
		{"every cipher suite", &tls.Config{ServerName: "suites.example", MaxVersion: tls.VersionTLS12, CipherSuites: allSuites}, "suites.example", nil},
		{"uppercase", &tls.Config{ServerName: "WWW.Example.COM"}, "www.example.com", nil},
		{"trailing dot", &tls.Config{ServerName: "example.com."}, "example.com", nil},
		{"underscore", &tls.Config{ServerName: "my_host.corp"}, "my_host.corp", nil},
		{"IDN A-label", &tls.Config{ServerName: "xn--bcher-kva.example"}, "xn--bcher-kva.example", nil},
		{"single label", &tls.Config{ServerName: "localhost"}, "localhost", nil},
		{"253-byte name", &tls.Config{ServerName: longName()}, longName(), nil},
		{"15 KiB of ALPN", &tls.Config{ServerName: "big.example", NextProtos: alpn(50)}, "big.example", nil},
		{"no SNI: IPv4 address", &tls.Config{ServerName: "192.0.2.1"}, "", ErrNoSNI},
		{"no SNI: IPv6 address", &tls.Config{ServerName: "2001:db8::1"}, "", ErrNoSNI},
		{"no SNI: no ServerName", &tls.Config{}, "", ErrNoSNI},
		{"two records of 16 KiB and more", &tls.Config{ServerName: "huge.example", NextProtos: alpn(70)}, "", ErrMalformed},
	}
	out := make([]realHello, len(cases))
	for i, c := range cases {
		c.cfg.InsecureSkipVerify = true
		out[i] = realHello{c.name, recordedHello(t, c.cfg), c.want, c.wantErr}
	}
	return out
}

func TestServerNameOfRealClientHellos(t *testing.T) {
	for _, c := range realHellos(t) {
		t.Run(c.name, func(t *testing.T) {
			name, err := checkServerName(t, c.hello, true)
			if name != c.want || !errors.Is(err, c.wantErr) {
				t.Fatalf("ServerName of %d bytes = %q, %v; want %q, %v", len(c.hello), name, err, c.want, c.wantErr)
			}
			if c.wantErr == nil || c.wantErr == ErrNoSNI {
				expectAllIncomplete(t, c.hello, len(c.hello))
				if goName, ok := goServerName(c.hello); !ok || strings.ToLower(goName) != name {
					t.Errorf("crypto/tls's server reads %q (ok %v), ServerName %q", goName, ok, name)
				}
			}
		})
	}
}

// The Go client splits a ClientHello over 16 KiB across records; the
// first is a full 16 KiB record, so it cannot end within MaxClientHello,
// which ServerName knows from the handshake header on.
func TestServerNameOfAClientHelloOver16KiB(t *testing.T) {
	hello := recordedHello(t, &tls.Config{ServerName: "huge.example", NextProtos: alpn(70), InsecureSkipVerify: true})
	if n := int(hello[3])<<8 | int(hello[4]); n != maxRecordPayload {
		t.Fatalf("first record of %d bytes, want a full one of %d", n, maxRecordPayload)
	}
	expectAllIncomplete(t, hello, recordHeaderLen+handshakeHeaderLen)
	for _, k := range []int{recordHeaderLen + handshakeHeaderLen, MaxClientHello, len(hello)} {
		if _, err := ServerName(hello[:k]); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "16384") {
			t.Errorf("first %d bytes: %v, want ErrMalformed for its size", k, err)
		}
	}
}

func TestServerNameOfResumingClientHellos(t *testing.T) {
	for _, v := range []struct {
		name    string
		version uint16
	}{{"TLS 1.2 session ticket", tls.VersionTLS12}, {"TLS 1.3 pre_shared_key", tls.VersionTLS13}} {
		t.Run(v.name, func(t *testing.T) {
			_, hello := resumingHello(t, v.version)
			if name, err := checkServerName(t, hello, true); name != "resume.example" || err != nil {
				t.Fatalf("ServerName = %q, %v; want resume.example", name, err)
			}
			expectAllIncomplete(t, hello, len(hello))
		})
	}
}

// A ClientHello may come in several records, split anywhere, even inside
// its handshake header; the records end where it ends or after.
func TestServerNameReassemblesClientHelloRecords(t *testing.T) {
	tls13 := recordedHello(t, &tls.Config{ServerName: "Split.Example", InsecureSkipVerify: true})
	msgLen := len(tls13) - recordHeaderLen
	for _, size := range []int{1, 2, 3, 5, 100, 1000, msgLen - 1} {
		hello := reframe(t, tls13, size)
		name, err := checkServerName(t, hello, true)
		if name != "split.example" || err != nil {
			t.Fatalf("in records of %d bytes (%d in all): %q, %v; want split.example", size, len(hello), name, err)
		}
		expectAllIncomplete(t, hello, len(hello))
	}

	// By hand: two records, the first ending inside the handshake header,
	// with a different record version, and the second longer than the rest
	// of the hello.
	msg := defaultHello().message()
	hello := concat(record(22, 0x0300, msg[:2]), record(22, 0x0303, concat(msg[2:], []byte("trailing"))))
	if name, err := checkServerName(t, hello, true); name != "example.com" || err != nil {
		t.Fatalf("two records by hand: %q, %v", name, err)
	}
	expectAllIncomplete(t, hello, len(hello)-len("trailing"))
}

// MaxClientHello counts record headers: a hello fits if its records end
// within it, whether one record or more carry it.
func TestServerNameBound(t *testing.T) {
	for _, c := range []struct {
		name      string
		msgLen    int
		records   int
		wantFit   bool
		wantBytes int
	}{
		{"one record, exactly 16 KiB", MaxClientHello - recordHeaderLen, 1, true, MaxClientHello},
		{"one record, a byte over", MaxClientHello - recordHeaderLen + 1, 1, false, 0},
		{"two records, exactly 16 KiB", MaxClientHello - 2*recordHeaderLen, 2, true, MaxClientHello},
		{"two records, a byte over", MaxClientHello - 2*recordHeaderLen + 1, 2, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			msg := paddedMessage(t, c.msgLen)
			hello := inRecords(msg, (len(msg)+c.records-1)/c.records)
			name, err := checkServerName(t, hello, true)
			if c.wantFit {
				if len(hello) != c.wantBytes || name != "example.com" || err != nil {
					t.Fatalf("%d bytes: %q, %v; want example.com", len(hello), name, err)
				}
				expectAllIncomplete(t, hello, len(hello))
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "16384") {
				t.Fatalf("%d bytes: %q, %v; want ErrMalformed for its size", len(hello), name, err)
			}
		})
	}
}

func TestServerNameNotTLS(t *testing.T) {
	for _, c := range []struct {
		name string
		b    string
		want error
	}{
		{"HTTP", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", ErrNotTLS},
		{"one byte of HTTP", "G", ErrNotTLS},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", ErrNotTLS},
		{"SSL 2.0 ClientHello", "\x80\x2e\x01\x03\x01\x00\x15", ErrNotTLS},
		{"application data record", "\x17\x03\x03\x00\x10", ErrNotTLS},
		{"alert record", "\x15\x03\x01\x00\x02\x02\x28", ErrNotTLS},
		{"handshake record of version 2.x", "\x16\x02", ErrNotTLS},
		{"handshake record of version 3.5", "\x16\x03\x05", ErrNotTLS},
		{"handshake record of version 4.1", "\x16\x04\x01\x00\x05", ErrNotTLS},
		{"nothing yet", "", ErrIncomplete},
		{"the record type", "\x16", ErrIncomplete},
		{"the record type and major version", "\x16\x03", ErrIncomplete},
		{"record version 3.0", "\x16\x03\x00\x00", ErrIncomplete},
		{"record version 3.4", "\x16\x03\x04\x00", ErrIncomplete},
		{"a record header", "\x16\x03\x01\x02\x00", ErrIncomplete},
		{"the handshake type", "\x16\x03\x01\x02\x00\x01", ErrIncomplete},
	} {
		t.Run(c.name, func(t *testing.T) {
			if name, err := checkServerName(t, []byte(c.b), true); err != c.want {
				t.Fatalf("ServerName(%q) = %q, %v; want %v", c.b, name, err, c.want)
			}
		})
	}
}

func TestServerNameNames(t *testing.T) {
	for _, c := range []struct {
		host string
		want string // "": malformed, with why in the error
		why  string
	}{
		{host: "example.com", want: "example.com"},
		{host: "EXAMPLE.Com", want: "example.com"},
		{host: "example.com.", want: "example.com"},
		{host: "Example.COM.", want: "example.com"},
		{host: "a", want: "a"},
		{host: "my_host.corp", want: "my_host.corp"},
		{host: "_acme-challenge.example", want: "_acme-challenge.example"},
		{host: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{host: "123.example", want: "123.example"},
		{host: "a.b-c.d", want: "a.b-c.d"},
		{host: "a.0x1", want: "a.0x1"},
		{host: strings.Repeat("x", 63) + ".com", want: strings.Repeat("x", 63) + ".com"},
		{host: longName(), want: longName()},
		{host: longName() + ".", want: longName()},
		{host: "", why: "empty"},
		{host: ".", why: "empty"},
		{host: "example.com..", why: "empty label"},
		{host: "a..b", why: "empty label"},
		{host: ".example.com", why: "empty label"},
		{host: "-a.example", why: "starts with a hyphen"},
		{host: "a-.example", why: "ends with a hyphen"},
		{host: "example.a-", why: "ends with a hyphen"},
		{host: strings.Repeat("x", 64) + ".com", why: "longer than 63"},
		{host: longName() + "d", why: "longer than 253"},
		{host: "exa mple.com", why: "a byte other than"},
		{host: "example.com:443", why: "a byte other than"},
		{host: "café.example", why: "a byte other than"},
		{host: "a\x00b.example", why: "a byte other than"},
		{host: "a/b", why: "a byte other than"},
		{host: "*.example.com", why: "a byte other than"},
		{host: "1.2.3.4", why: "IP address"},
		{host: "1.2.3.4.", why: "IP address"},
		{host: "127.1", why: "IP address"},
		{host: "10", why: "IP address"},
		{host: "example.123", why: "IP address"},
		{host: "::1", why: "a byte other than"},
		{host: "[2001:db8::1]", why: "a byte other than"},
	} {
		t.Run(c.host, func(t *testing.T) {
			name, err := checkServerName(t, helloNamed(c.host), true)
			if c.want != "" {
				if name != c.want || err != nil {
					t.Fatalf("ServerName with host_name %q = %q, %v; want %q", c.host, name, err, c.want)
				}
				return
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.why) {
				t.Fatalf("ServerName with host_name %q = %q, %v; want ErrMalformed saying %q", c.host, name, err, c.why)
			}
		})
	}
}

func TestServerNameMalformedClientHellos(t *testing.T) {
	entry := func(typ byte, name string) []byte { return concat([]byte{typ}, vec16([]byte(name))) }
	msg := defaultHello().message()
	for _, c := range []struct {
		name  string
		hello []byte
		want  error
		why   string
	}{
		{"legacy_version 2.0", helloWith(func(h *helloFields) { h.version = u16(0x0200) }), ErrMalformed, "legacy_version"},
		{"short random", helloWith(func(h *helloFields) {
			h.random, h.sessionID, h.suites, h.compression, h.extensions = make([]byte, 31), nil, nil, nil, nil
		}), ErrMalformed, "random"},
		{"33-byte session_id", helloWith(func(h *helloFields) { h.sessionID = vec8(make([]byte, 33)) }), ErrMalformed, "legacy_session_id is longer than 32"},
		{"session_id past the end", helloWith(func(h *helloFields) {
			h.sessionID, h.suites, h.compression, h.extensions = []byte{20, 1}, nil, nil, nil
		}), ErrMalformed, "legacy_session_id"},
		{"no cipher_suites", helloWith(func(h *helloFields) { h.suites = vec16() }), ErrMalformed, "cipher_suites"},
		{"odd cipher_suites", helloWith(func(h *helloFields) { h.suites = vec16([]byte{0x13, 0x01, 0x13}) }), ErrMalformed, "cipher_suites"},
		{"cipher_suites past the end", helloWith(func(h *helloFields) {
			h.suites, h.compression, h.extensions = u16(1000), nil, nil
		}), ErrMalformed, "cipher_suites"},
		{"no compression methods", helloWith(func(h *helloFields) { h.compression = vec8() }), ErrMalformed, "legacy_compression_methods is empty"},
		{"no compression methods field", helloWith(func(h *helloFields) { h.compression, h.extensions = nil, nil }), ErrMalformed, "legacy_compression_methods"},
		{"one byte of extensions length", helloWith(func(h *helloFields) { h.extensions = []byte{0} }), ErrMalformed, "extensions overrun"},
		{"extensions past the end", helloWith(func(h *helloFields) { h.extensions = concat(u16(100), sni(hostEntry("a.example"))) }), ErrMalformed, "extensions overrun"},
		{"bytes after the extensions", helloWith(func(h *helloFields) { h.extensions = concat(vec16(sni(hostEntry("a.example"))), []byte{0}) }), ErrMalformed, "bytes follow"},
		{"an extension past the extensions", helloWith(func(h *helloFields) { h.extensions = vec16(u16(0x002b), u16(10), []byte{1, 2}) }), ErrMalformed, "an extension overruns"},
		{"half an extension header", helloWith(func(h *helloFields) { h.extensions = vec16(sni(hostEntry("a.example")), []byte{0}) }), ErrMalformed, "an extension overruns"},
		{"two server_name extensions", helloWith(func(h *helloFields) {
			h.extensions = vec16(sni(hostEntry("a.example")), ext(0x002b, vec8(u16(0x0304))), sni(hostEntry("a.example")))
		}), ErrMalformed, "two server_name extensions"},
		{"two server_name extensions, the first without host_name", helloWith(func(h *helloFields) {
			h.extensions = vec16(sni(entry(1, "x")), sni(hostEntry("a.example")))
		}), ErrMalformed, "two server_name extensions"},
		{"two host_names", helloWith(func(h *helloFields) { h.extensions = vec16(sni(hostEntry("a.example"), hostEntry("b.example"))) }), ErrMalformed, "two host_names"},
		{"empty server_name extension", helloWith(func(h *helloFields) { h.extensions = vec16(ext(extServerName)) }), ErrMalformed, "does not fill"},
		{"server_name list shorter than its extension", helloWith(func(h *helloFields) {
			h.extensions = vec16(ext(extServerName, vec16(hostEntry("a.example")), []byte{0}))
		}), ErrMalformed, "does not fill"},
		{"server_name list longer than its extension", helloWith(func(h *helloFields) {
			h.extensions = vec16(ext(extServerName, u16(100), hostEntry("a.example")))
		}), ErrMalformed, "does not fill"},
		{"empty server_name list", helloWith(func(h *helloFields) { h.extensions = vec16(ext(extServerName, vec16())) }), ErrMalformed, "list is empty"},
		{"server_name entry past its list", helloWith(func(h *helloFields) {
			h.extensions = vec16(ext(extServerName, vec16([]byte{0, 0, 20}, []byte("a.example"))))
		}), ErrMalformed, "entry overruns"},
		{"server_name entry without its length", helloWith(func(h *helloFields) {
			h.extensions = vec16(ext(extServerName, vec16(hostEntry("a.example"), []byte{1})))
		}), ErrMalformed, "entry overruns"},
		{"not a ClientHello", inRecords(concat([]byte{2}, msg[1:]), maxRecordPayload), ErrMalformed, "not a ClientHello"},
		{"message type 0", inRecords(concat([]byte{0}, msg[1:]), maxRecordPayload), ErrMalformed, "not a ClientHello"},
		{"empty ClientHello", inRecords([]byte{1, 0, 0, 0}, maxRecordPayload), ErrMalformed, "legacy_version"},
		{"empty first record", concat(record(22, 0x0301, nil), inRecords(msg, maxRecordPayload)), ErrMalformed, "empty handshake record"},
		{"empty second record", concat(record(22, 0x0301, msg[:10]), record(22, 0x0301, nil)), ErrMalformed, "empty handshake record"},
		{"record longer than 16384", concat([]byte{22, 3, 1}, u16(maxRecordPayload+1), msg), ErrMalformed, "longer than 16384"},
		{"change_cipher_spec inside the hello", concat(record(22, 0x0301, msg[:10]), record(20, 0x0303, []byte{1}), record(22, 0x0301, msg[10:])), ErrMalformed, "non-handshake record"},
		{"alert inside the hello", concat(record(22, 0x0301, msg[:2]), record(21, 0x0303, []byte{2, 40})), ErrMalformed, "non-handshake record"},
		{"second record of version 2.0", concat(record(22, 0x0301, msg[:10]), record(22, 0x0200, msg[10:])), ErrMalformed, "version"},
		{"second record of version 3.5", concat(record(22, 0x0301, msg[:10]), record(22, 0x0305, msg[10:])), ErrMalformed, "version"},
		{"handshake length of 16 MiB", concat([]byte{22, 3, 1, 0, 4, 1, 0xff, 0xff, 0xff}), ErrMalformed, "16384"},
		{"3000 bytes in records of 1", inRecords(paddedMessage(t, 3000), 1), ErrMalformed, "16384"},
		{"no extensions", helloWith(func(h *helloFields) { h.extensions = nil }), ErrNoSNI, ""},
		{"empty extensions", helloWith(func(h *helloFields) { h.extensions = vec16() }), ErrNoSNI, ""},
		{"extensions without server_name", helloWith(func(h *helloFields) { h.extensions = vec16(ext(0x002b, vec8(u16(0x0304))), ext(0xfe0d)) }), ErrNoSNI, ""},
		{"server_name of other name types only", helloWith(func(h *helloFields) {
			h.extensions = vec16(sni(entry(1, "x"), entry(255, "")))
		}), ErrNoSNI, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			name, err := checkServerName(t, c.hello, true)
			if !errors.Is(err, c.want) || !strings.Contains(fmtErr(err), c.why) {
				t.Fatalf("ServerName = %q, %v; want %v saying %q", name, err, c.want, c.why)
			}
		})
	}

	// Entries of other name types are skipped.
	hello := helloWith(func(h *helloFields) {
		h.extensions = vec16(sni(entry(7, ""), hostEntry("b.example"), entry(1, "x")))
	})
	if name, err := checkServerName(t, hello, true); name != "b.example" || err != nil {
		t.Errorf("server_name with other name types around its host_name: %q, %v; want b.example", name, err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// ServerName allocates the name it returns, and nothing else, however
// many records the hello takes.
func TestServerNameAllocations(t *testing.T) {
	hello := recordedHello(t, &tls.Config{ServerName: "Alloc.Example", InsecureSkipVerify: true})
	noSNI := recordedHello(t, &tls.Config{InsecureSkipVerify: true})
	for _, c := range []struct {
		name string
		b    []byte
		want float64
	}{
		{"one record", hello, 1},
		{"seven records", reframe(t, hello, len(hello)/6), 1},
		{"half", hello[:len(hello)/2], 0},
		{"half of seven records", reframe(t, hello, len(hello)/6)[:len(hello)/2], 0},
		{"no SNI", noSNI, 0},
		{"not TLS", []byte("GET / HTTP/1.1\r\n"), 0},
		{"malformed", helloNamed("a..b"), 0},
		{"malformed in seven records", reframe(t, helloNamed("a..b"), 10), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, func() { _, _ = ServerName(c.b) }); n != c.want {
				t.Errorf("%v allocations, want %v", n, c.want)
			}
		})
	}
}

func BenchmarkServerName(b *testing.B) {
	tls13 := recordedHello(b, &tls.Config{ServerName: "www.example.com", NextProtos: []string{"h2", "http/1.1"}, InsecureSkipVerify: true})
	tls12 := recordedHello(b, &tls.Config{ServerName: "www.example.com", MaxVersion: tls.VersionTLS12, InsecureSkipVerify: true})
	for _, c := range []struct {
		name  string
		hello []byte
	}{
		{"TLS 1.3", tls13},
		{"TLS 1.2", tls12},
		{"TLS 1.3 in 4 records", reframe(b, tls13, len(tls13)/4+1)},
		{"half of TLS 1.3", tls13[:len(tls13)/2]},
		{"HTTP", []byte("GET / HTTP/1.1\r\nHost: www.example.com\r\n\r\n")},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.hello)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = ServerName(c.hello)
			}
		})
	}
}

func FuzzServerName(f *testing.F) {
	// Real hellos, but small ones: X25519 key shares, not X25519MLKEM768's
	// 1.2 KB. Go's minimizer tries O(n²) cuts of an input it finds
	// interesting, which for hellos of 1.5 KB takes the best part of a
	// minute each.
	x25519 := []tls.CurveID{tls.X25519}
	for _, cfg := range []*tls.Config{
		{ServerName: "example.com", CurvePreferences: x25519},
		{ServerName: "WWW.Example.COM", NextProtos: []string{"h2", "http/1.1"}, CurvePreferences: x25519},
		{ServerName: "www.example.org", MaxVersion: tls.VersionTLS12},
		{ServerName: "192.0.2.1", CurvePreferences: x25519},
	} {
		cfg.InsecureSkipVerify = true
		hello := recordedHello(f, cfg)
		f.Add(hello)
		f.Add(hello[:len(hello)/2])
		f.Add(reframe(f, hello, 100))
	}
	_, resuming := resumingHello(f, tls.VersionTLS12)
	f.Add(resuming)
	msg := defaultHello().message()
	f.Add(inRecords(msg, 3))
	f.Add(inRecords(msg, maxRecordPayload))
	f.Add(helloNamed("Example.COM."))
	f.Add(helloNamed("1.2.3.4"))
	f.Add(helloNamed("a..b"))
	f.Add(concat(record(22, 0x0301, msg[:10]), record(20, 0x0303, []byte{1}), record(22, 0x0301, msg[10:])))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"))
	f.Add([]byte{22, 3, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := checkServerName(t, b, false)
		// A second opinion: where crypto/tls's server reads a ClientHello,
		// ServerName must find one too, with the same name if it accepts
		// it. (It may reject what crypto/tls takes: IP literals, odd record
		// versions, hellos over 16 KiB.)
		goName, ok := goServerName(b)
		switch {
		case !ok:
		case err == ErrIncomplete:
			t.Fatalf("ServerName(% x) = ErrIncomplete, but crypto/tls reads a whole ClientHello in it", b)
		case err == nil && name != strings.ToLower(goName):
			t.Fatalf("ServerName(% x) = %q, crypto/tls reads %q", b, name, goName)
		case err == ErrNoSNI && goName != "":
			t.Fatalf("ServerName(% x) = ErrNoSNI, crypto/tls reads %q", b, goName)
		}
	})
}
