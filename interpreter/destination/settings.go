package destination

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Kind is kind "destination".
var Kind = interpreter.Kind{Name: "destination", Decode: decode}

// Defaults of the optional keys: namerd's.
const (
	defaultBackoffMin = 100 * time.Millisecond
	defaultBackoffMax = 10 * time.Second
	defaultTimeout    = 10 * time.Second
)

// Settings are the settings of kind "destination", defaulted and validated.
type Settings struct {
	// Addr is the Destination service, "host:port" (linkerd's is
	// linkerd-dst.linkerd.svc.cluster.local:8086). A host name is looked
	// up at each connect.
	Addr string `json:"addr"`
	// ContextToken is sent with every request; linkerd's controller reads
	// the client's namespace and node from it. Empty by default.
	ContextToken string `json:"context_token"`
	// BackoffMin and BackoffMax bound the jittered exponential delay
	// before a name's stream is opened again after an error or its end,
	// and before the connection is dialed again.
	BackoffMin time.Duration `json:"backoff_min"`
	BackoffMax time.Duration `json:"backoff_max"`
	// Timeout bounds connecting: TCP, TLS and the HTTP/2 handshake. A
	// stream that is open but quiet is not timed out.
	Timeout time.Duration `json:"timeout"`
	// CAFile, a PEM file of the certificates the server's must chain to,
	// turns on TLS; without it the connection is plaintext. CertFile and
	// KeyFile, both or neither, are the client's certificate and key.
	// ServerName is the name the server's certificate must carry (default:
	// the host of Addr).
	CAFile     string `json:"ca_file,omitempty"`
	CertFile   string `json:"cert_file,omitempty"`
	KeyFile    string `json:"key_file,omitempty"`
	ServerName string `json:"server_name,omitempty"`
}

// decode reads the keys of kind "destination". It reads no file: the TLS
// files are New's business, so that checking a configuration stays pure.
func decode(t interpreter.Table) interpreter.Settings {
	addr := t.String("addr")
	st := &Settings{
		Addr:         interpreter.Or(addr, ""),
		ContextToken: interpreter.Or(t.String("context_token"), ""),
		BackoffMin:   interpreter.Or(t.Duration("backoff_min"), defaultBackoffMin),
		BackoffMax:   interpreter.Or(t.Duration("backoff_max"), defaultBackoffMax),
		Timeout:      interpreter.Or(t.Duration("timeout"), defaultTimeout),
	}
	switch {
	case addr == nil && !slices.Contains(t.Keys(), "addr"): // else the type error is reported
		t.Problem("addr", `required for kind "destination" (the Destination service, e.g. "linkerd-dst.linkerd.svc.cluster.local:8086")`)
	case addr != nil:
		if err := checkAddr(*addr); err != nil {
			t.Problem("addr", "%v", err)
		}
	}
	interpreter.CheckBackoff(t, st.BackoffMin, st.BackoffMax)
	interpreter.CheckPositive(t, "timeout", st.Timeout)

	files := []struct {
		key string
		to  *string
	}{{"ca_file", &st.CAFile}, {"cert_file", &st.CertFile}, {"key_file", &st.KeyFile}, {"server_name", &st.ServerName}}
	set := make(map[string]bool)
	for _, f := range files {
		v := t.String(f.key)
		if v == nil {
			continue
		}
		set[f.key] = true
		if *v == "" {
			t.Problem(f.key, "must not be empty (leave %s out instead)", f.key)
			continue
		}
		*f.to = *v
	}
	switch {
	case set["cert_file"] && !set["key_file"]:
		t.Problem("key_file", "required with cert_file (the client certificate's private key)")
	case set["key_file"] && !set["cert_file"]:
		t.Problem("cert_file", "required with key_file (the client certificate)")
	}
	if !set["ca_file"] {
		for _, key := range []string{"cert_file", "key_file", "server_name"} {
			if set[key] {
				t.Problem(key, "needs ca_file: TLS to the Destination service is on only when ca_file is set")
			}
		}
	}
	return st
}

// checkAddr checks a "host:port" to dial.
func checkAddr(s string) error {
	if s == "" {
		return errors.New(`must not be empty (write "host:port")`)
	}
	if strings.Contains(s, "://") {
		return fmt.Errorf(`%s must be "host:port", without a scheme`, strconv.Quote(s))
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf(`%s is not "host:port" (IPv6 in brackets: "[::1]:8086")`, strconv.Quote(s))
	}
	if host == "" {
		return fmt.Errorf("%s has no host", strconv.Quote(s))
	}
	if strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("%s: host %s contains %q or a space", strconv.Quote(s), strconv.Quote(host), "/")
	}
	if _, err := parsePort(port); err != nil {
		return fmt.Errorf("%s: %w", strconv.Quote(s), err)
	}
	return nil
}

// parsePort parses a port to connect to: 1-65535, decimal.
func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, errors.New("missing port")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %s is not a number", strconv.Quote(s))
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %s is out of range (1-65535)", s)
	}
	return uint16(n), nil
}

// CheckName reports a name that is not /svc/<host>:<port>.
func (st *Settings) CheckName(name string) error {
	_, err := parseName(name)
	return err
}

// New builds the interpreter and its gRPC client, reading the TLS files;
// nothing is dialed before the first Resolve. It checks again what Decode
// checked, for Settings made in code.
func (st *Settings) New(env interpreter.Env) (interpreter.Interpreter, error) {
	if err := checkAddr(st.Addr); err != nil {
		return nil, fmt.Errorf("destination: addr: %w", err)
	}
	if st.Timeout <= 0 || st.BackoffMin <= 0 || st.BackoffMin > st.BackoffMax {
		return nil, fmt.Errorf("destination: need timeout > 0 and 0 < backoff_min <= backoff_max, got %s, %s and %s",
			st.Timeout, st.BackoffMin, st.BackoffMax)
	}
	tlsConf, err := st.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("destination: %w", err)
	}
	return newInterpreter(*st, tlsConf, env)
}

// tlsConfig reads the TLS files: nil, nil without a ca_file. Errors name
// the key and the file.
func (st *Settings) tlsConfig() (*tls.Config, error) {
	if st.CAFile == "" {
		if st.CertFile != "" || st.KeyFile != "" || st.ServerName != "" {
			return nil, errors.New("cert_file, key_file and server_name need ca_file")
		}
		return nil, nil
	}
	if (st.CertFile == "") != (st.KeyFile == "") {
		return nil, errors.New("cert_file and key_file go together: set both or neither")
	}
	pem, err := os.ReadFile(st.CAFile)
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", strconv.Quote(st.CAFile))
	}
	conf := &tls.Config{RootCAs: roots, ServerName: st.ServerName, MinVersion: tls.VersionTLS12}
	if st.CertFile != "" {
		certPEM, err := os.ReadFile(st.CertFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		keyPEM, err := os.ReadFile(st.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("key_file: %w", err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, fmt.Errorf("cert_file %s and key_file %s: %w", strconv.Quote(st.CertFile), strconv.Quote(st.KeyFile), err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}
