package destination

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

// decodeMap decodes m, checking that decode took every key it was given.
func decodeMap(t *testing.T, m map[string]any) (*Settings, []string) {
	t.Helper()
	tab := kindtest.NewTable(m)
	st := decode(tab)
	if unknown := tab.Unknown(); len(unknown) > 0 {
		t.Errorf("decode did not read keys %q", unknown)
	}
	if st == nil {
		t.Fatalf("decode returned nil Settings; problems: %q", tab.Problems)
	}
	return st.(*Settings), tab.Problems
}

const testAddr = "linkerd-dst.linkerd.svc.cluster.local:8086"

func TestDecodeDefaults(t *testing.T) {
	st, problems := decodeMap(t, map[string]any{"addr": testAddr})
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	want := Settings{
		Addr:       testAddr,
		BackoffMin: 100 * time.Millisecond,
		BackoffMax: 10 * time.Second,
		Timeout:    10 * time.Second,
	}
	if *st != want {
		t.Fatalf("got %+v\nwant %+v", *st, want)
	}
}

func TestDecodeAllKeys(t *testing.T) {
	st, problems := decodeMap(t, map[string]any{
		"addr":          "[::1]:8086",
		"context_token": `{"ns":"emojivoto","nodeName":"n1"}`,
		"backoff_min":   "1s",
		"backoff_max":   "1m",
		"timeout":       "2s",
		"ca_file":       "/etc/switchyard/ca.pem",
		"cert_file":     "/etc/switchyard/client.pem",
		"key_file":      "/etc/switchyard/client-key.pem",
		"server_name":   "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
	})
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	want := Settings{
		Addr:         "[::1]:8086",
		ContextToken: `{"ns":"emojivoto","nodeName":"n1"}`,
		BackoffMin:   time.Second,
		BackoffMax:   time.Minute,
		Timeout:      2 * time.Second,
		CAFile:       "/etc/switchyard/ca.pem",
		CertFile:     "/etc/switchyard/client.pem",
		KeyFile:      "/etc/switchyard/client-key.pem",
		ServerName:   "linkerd-destination.linkerd.serviceaccount.identity.linkerd.cluster.local",
	}
	if *st != want {
		t.Fatalf("got %+v\nwant %+v", *st, want)
	}
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name string
		m    map[string]any
		want []string // each a substring of one problem, in order
	}{
		{"addr missing", map[string]any{}, []string{`addr: required for kind "destination"`}},
		{"addr not a string", map[string]any{"addr": int64(8086)}, []string{"addr: expected a string"}},
		{"addr empty", map[string]any{"addr": ""}, []string{`addr: must not be empty`}},
		{"addr no port", map[string]any{"addr": "linkerd-dst"}, []string{`addr: "linkerd-dst" is not "host:port"`}},
		{"addr scheme", map[string]any{"addr": "http://linkerd-dst:8086"}, []string{`addr: "http://linkerd-dst:8086" must be "host:port", without a scheme`}},
		{"addr no host", map[string]any{"addr": ":8086"}, []string{`addr: ":8086" has no host`}},
		{"addr port zero", map[string]any{"addr": "h:0"}, []string{`addr: "h:0": port 0 is out of range (1-65535)`}},
		{"addr port range", map[string]any{"addr": "h:65536"}, []string{"port 65536 is out of range"}},
		{"addr port word", map[string]any{"addr": "h:grpc"}, []string{`port "grpc" is not a number`}},
		{"addr ipv6 no brackets", map[string]any{"addr": "::1:8086"}, []string{`is not "host:port" (IPv6 in brackets`}},
		{"addr path", map[string]any{"addr": "h/x:8086"}, []string{`contains "/"`}},
		{"context_token not a string", map[string]any{"addr": testAddr, "context_token": int64(1)}, []string{"context_token: expected a string"}},
		{"backoff_min zero", map[string]any{"addr": testAddr, "backoff_min": "0s"}, []string{"backoff_min: must be greater than 0"}},
		{"backoff_max below min", map[string]any{"addr": testAddr, "backoff_min": "2s", "backoff_max": "1s"}, []string{"backoff_max: must be at least backoff_min (2s), got 1s"}},
		{"backoff_max below default min", map[string]any{"addr": testAddr, "backoff_max": "50ms"}, []string{"backoff_max: must be at least backoff_min (100ms)"}},
		{"timeout zero", map[string]any{"addr": testAddr, "timeout": "0s"}, []string{"timeout: must be greater than 0"}},
		{"timeout not a duration", map[string]any{"addr": testAddr, "timeout": "10"}, []string{`timeout: bad duration "10"`}},
		{"cert without key", map[string]any{"addr": testAddr, "ca_file": "ca.pem", "cert_file": "c.pem"}, []string{"key_file: required with cert_file"}},
		{"key without cert", map[string]any{"addr": testAddr, "ca_file": "ca.pem", "key_file": "k.pem"}, []string{"cert_file: required with key_file"}},
		{"cert and key without ca", map[string]any{"addr": testAddr, "cert_file": "c.pem", "key_file": "k.pem"}, []string{
			"cert_file: needs ca_file", "key_file: needs ca_file",
		}},
		{"server_name without ca", map[string]any{"addr": testAddr, "server_name": "x"}, []string{"server_name: needs ca_file"}},
		{"ca_file empty", map[string]any{"addr": testAddr, "ca_file": ""}, []string{"ca_file: must not be empty (leave ca_file out instead)"}},
		{"ca_file not a string", map[string]any{"addr": testAddr, "ca_file": true}, []string{"ca_file: expected a string"}},
		{"every problem at once", map[string]any{"timeout": "0s", "cert_file": "c.pem"}, []string{
			"addr: required", "timeout: must be greater", "key_file: required with cert_file", "cert_file: needs ca_file",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, problems := decodeMap(t, tt.m)
			if len(problems) != len(tt.want) {
				t.Fatalf("problems %q, want %d matching %q", problems, len(tt.want), tt.want)
			}
			for i, want := range tt.want {
				if !strings.Contains(problems[i], want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, problems[i], want)
				}
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string // "" means valid
	}{
		{"/svc/web.emojivoto.svc.cluster.local:8080", ""},
		{"/svc/web:80", ""},
		{"/svc/Web-1_a.b:65535", ""},
		{"/svc/10.0.0.1:80", ""},
		{"/svc/[2001:db8::1]:80", ""},
		{"/svc/web", `"/svc/web": "web" has no port`},
		{"/svc/", `missing <host>:<port> after /svc/`},
		{"/svc/:80", `missing host before ":"`},
		{"/svc/web:0", "port 0 is out of range (1-65535)"},
		{"/svc/web:65536", "port 65536 is out of range"},
		{"/svc/web:http", `port "http" is not a number`},
		{"/svc/web:", "missing port"},
		{"/svc/web..ns:80", `host "web..ns" has an empty label (number 2)`},
		{"/svc/.web:80", `has an empty label (number 1)`},
		{"/svc/web/x:80", `host "web/x" contains '/'`},
		{"/svc/wéb:80", `contains 'é'`},
		{"/svc/2001:db8::1:80", "an IPv6 address takes brackets"},
		{"/svc/[10.0.0.1]:80", `"[10.0.0.1]" is not an IPv6 address in brackets`},
		{"/svc/[fe80::1%eth0]:80", "is not an IPv6 address in brackets"},
		{"/svc/[::1:80", "is not an IPv6 address in brackets"},
		{"/svc/" + strings.Repeat("a.", 127) + "a:80", "more than a DNS name's 253"},
		{"/dns/web/80", `"/dns/web/80" is not a destination name: write /svc/<host>:<port>`},
		{"svc/web:80", "is not a destination name"},
		{"", "is not a destination name"},
	}
	st := &Settings{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.CheckName(tt.name)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckName(%q) = %v, want nil", tt.name, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("CheckName(%q) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

func TestParseNamePath(t *testing.T) {
	for name, want := range map[string]string{
		"/svc/web.emojivoto.svc.cluster.local:8080": "web.emojivoto.svc.cluster.local:8080",
		"/svc/[2001:db8::1]:80":                     "[2001:db8::1]:80",
	} {
		if got, err := parseName(name); err != nil || got != want {
			t.Errorf("parseName(%q) = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestNewRejectsInvalidSettings(t *testing.T) {
	dir := t.TempDir()
	cert := newTestCert(t, dir, "client", "client.test")
	other := newTestCert(t, dir, "other", "other.test")
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	good := Settings{Addr: testAddr, BackoffMin: time.Millisecond, BackoffMax: time.Second, Timeout: time.Second}
	env := interpreter.Env{Router: "test", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Stats: new(interpreter.Stats)}
	tests := []struct {
		name    string
		edit    func(*Settings)
		wantErr string
	}{
		{"addr", func(s *Settings) { s.Addr = "nope" }, "destination: addr:"},
		{"timeout", func(s *Settings) { s.Timeout = 0 }, "need timeout > 0"},
		{"backoff", func(s *Settings) { s.BackoffMin = 2 * time.Second }, "backoff_min <= backoff_max"},
		{"missing ca file", func(s *Settings) { s.CAFile = missing }, "destination: ca_file: open " + missing + ": no such file or directory"},
		{"ca file not PEM", func(s *Settings) { s.CAFile = notPEM }, "destination: ca_file: " + `"` + notPEM + `" holds no PEM certificate`},
		{"cert without key", func(s *Settings) { s.CAFile, s.CertFile = cert.certFile, cert.certFile }, "cert_file and key_file go together"},
		{"cert without ca", func(s *Settings) { s.CertFile, s.KeyFile = cert.certFile, cert.keyFile }, "need ca_file"},
		{"missing cert file", func(s *Settings) { s.CAFile, s.CertFile, s.KeyFile = cert.certFile, missing, cert.keyFile }, "cert_file: open " + missing},
		{"missing key file", func(s *Settings) { s.CAFile, s.CertFile, s.KeyFile = cert.certFile, cert.certFile, missing }, "key_file: open " + missing},
		{"key of another cert", func(s *Settings) { s.CAFile, s.CertFile, s.KeyFile = cert.certFile, cert.certFile, other.keyFile },
			"cert_file \"" + cert.certFile + "\" and key_file \"" + other.keyFile + "\": tls: private key does not match public key"},
		{"key file not PEM", func(s *Settings) { s.CAFile, s.CertFile, s.KeyFile = cert.certFile, cert.certFile, notPEM }, "and key_file \"" + notPEM + "\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := good
			tt.edit(&st)
			in, err := st.New(env)
			if err == nil {
				in.Close()
				t.Fatalf("New accepted %+v", st)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	for _, st := range []Settings{good, {Addr: good.Addr, BackoffMin: time.Millisecond, BackoffMax: time.Second, Timeout: time.Second,
		CAFile: cert.certFile, CertFile: cert.certFile, KeyFile: cert.keyFile}} {
		in, err := st.New(env)
		if err != nil {
			t.Fatalf("New(%+v): %v", st, err)
		}
		in.Close()
	}
}
