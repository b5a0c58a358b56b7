package destination

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

// testCert is a self-signed certificate, its own CA, written to PEM files.
type testCert struct {
	cert     tls.Certificate
	pool     *x509.CertPool
	certFile string
	keyFile  string
}

// newTestCert makes a self-signed certificate for 127.0.0.1 and dnsName,
// valid for servers and clients, and writes it and its key under dir.
func newTestCert(t *testing.T, dir, name, dnsName string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{dnsName},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	tc := testCert{certFile: filepath.Join(dir, name+".pem"), keyFile: filepath.Join(dir, name+"-key.pem"), pool: x509.NewCertPool()}
	if err := os.WriteFile(tc.certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tc.keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if tc.cert, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	tc.pool.AppendCertsFromPEM(certPEM)
	return tc
}

func serverTLS(server testCert, clientCA *x509.CertPool) credentials.TransportCredentials {
	conf := &tls.Config{Certificates: []tls.Certificate{server.cert}, MinVersion: tls.VersionTLS12}
	if clientCA != nil {
		conf.ClientCAs = clientCA
		conf.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(conf)
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	server := newTestCert(t, dir, "server", "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local")
	other := newTestCert(t, dir, "other", "other.test")
	client := newTestCert(t, dir, "client", "client.test")

	tests := []struct {
		name     string
		clientCA bool // the server asks for a client certificate
		edit     func(st *Settings)
		ok       bool
		want     []string // substrings of the Failed answer when not ok
	}{
		{"server verified", false, func(st *Settings) { st.CAFile = server.certFile }, true, nil},
		{"server name", false, func(st *Settings) {
			st.CAFile = server.certFile
			st.ServerName = "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local"
		}, true, nil},
		{"client certificate", true, func(st *Settings) {
			st.CAFile, st.CertFile, st.KeyFile = server.certFile, client.certFile, client.keyFile
		}, true, nil},
		{"wrong CA", false, func(st *Settings) { st.CAFile = other.certFile }, false,
			[]string{"certificate signed by unknown authority", "Unavailable"}},
		{"wrong server name", false, func(st *Settings) {
			st.CAFile, st.ServerName = server.certFile, "linkerd-dst.linkerd.svc.cluster.local"
		}, false, []string{"certificate is valid for", "Unavailable"}},
		{"no client certificate", true, func(st *Settings) { st.CAFile = server.certFile }, false,
			[]string{"Unavailable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clientCA *x509.CertPool
			if tt.clientCA {
				clientCA = client.pool
			}
			f := startFakeDst(t, serverTLS(server, clientCA))
			st := testSettings(f.addr)
			tt.edit(&st)
			in := newTestInterp(t, st)
			sink := kindtest.NewRecorder(t, sinkCap)
			kindtest.ResolveUntil(context.Background(), in, webName, sink)
			if !tt.ok {
				sink.ExpectFailed(t, tt.want...)
				if in.stats.Errors.Load() < 1 {
					t.Fatalf("errors %d, want at least 1", in.stats.Errors.Load())
				}
				return
			}
			fs := f.nextFor(t, webPath)
			fs.send(t, add("10.0.0.1:8080"))
			sink.ExpectBound(t, a)
			if in.stats.Errors.Load() != 0 {
				t.Fatalf("errors %d, want 0", in.stats.Errors.Load())
			}
		})
	}
}

// TestPlaintextToTLSServer: without ca_file the client speaks plaintext,
// which a TLS server refuses.
func TestPlaintextToTLSServer(t *testing.T) {
	server := newTestCert(t, t.TempDir(), "server", "server.test")
	f := startFakeDst(t, serverTLS(server, nil))
	in := newTestInterp(t, testSettings(f.addr))
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(context.Background(), in, webName, sink)
	sink.ExpectFailed(t, "Unavailable")
}
