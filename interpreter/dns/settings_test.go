package dns

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

// decodeMap decodes m as the router would, reporting the keys nobody took
// as unknown.
func decodeMap(m map[string]any) (*Settings, []string) {
	t := kindtest.NewTable(m)
	st := Kind.Decode(t)
	for _, key := range t.Unknown() {
		t.Problem(key, "unknown key")
	}
	s, _ := st.(*Settings)
	return s, t.Problems
}

func TestDecodeDefaults(t *testing.T) {
	st, problems := decodeMap(map[string]any{})
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	want := Settings{
		Timeout:    2 * time.Second,
		BackoffMin: 100 * time.Millisecond,
		BackoffMax: 10 * time.Second,
		TTLMin:     time.Second,
		TTLMax:     5 * time.Minute,
	}
	if *st != want {
		t.Errorf("defaults: %+v, want %+v", *st, want)
	}
}

func TestDecodeValues(t *testing.T) {
	st, problems := decodeMap(map[string]any{
		"server":      "[2001:DB8::53]:5353",
		"timeout":     "500ms",
		"backoff_min": "1s",
		"backoff_max": "1s",
		"ttl_min":     "30s",
		"ttl_max":     "30s",
	})
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	want := Settings{
		Server:     "[2001:db8::53]:5353",
		Timeout:    500 * time.Millisecond,
		BackoffMin: time.Second,
		BackoffMax: time.Second,
		TTLMin:     30 * time.Second,
		TTLMax:     30 * time.Second,
	}
	if *st != want {
		t.Errorf("settings: %+v, want %+v", *st, want)
	}
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name string
		m    map[string]any
		want []string // each a problem, "key: start of the message", under the table's path
	}{
		{"server empty", map[string]any{"server": ""}, []string{"server: must not be empty (leave server out to use the nameservers of /etc/resolv.conf)"}},
		{"server without port", map[string]any{"server": "10.0.0.1"}, []string{`server: "10.0.0.1" has no port: write 10.0.0.1:53`}},
		{"server IPv6 without port", map[string]any{"server": "2001:db8::1"}, []string{`server: "2001:db8::1" has no port: write [2001:db8::1]:53`}},
		{"server IPv6 without brackets", map[string]any{"server": "2001:db8::1:53x"}, []string{`server: "2001:db8::1:53x" is not "IP:port" (IPv6 in brackets: "[::1]:53")`}},
		{"server host name", map[string]any{"server": "dns.example:53"}, []string{`server: "dns.example" is not an IP address: server takes a literal address`}},
		{"server IPv4 in brackets", map[string]any{"server": "[10.0.0.1]:53"}, []string{`server: IPv4 address "10.0.0.1" must not be in brackets`}},
		{"server port 0", map[string]any{"server": "10.0.0.1:0"}, []string{`server: "10.0.0.1:0": port 0 is out of range (1-65535)`}},
		{"server port too big", map[string]any{"server": "10.0.0.1:65536"}, []string{`server: "10.0.0.1:65536": port 65536 is out of range (1-65535)`}},
		{"server port not a number", map[string]any{"server": "10.0.0.1:dns"}, []string{`server: "10.0.0.1:dns": port "dns" is not a number`}},
		{"server missing port after colon", map[string]any{"server": "10.0.0.1:"}, []string{`server: "10.0.0.1:": missing port`}},
		{"server not a string", map[string]any{"server": int64(53)}, []string{"server: expected a string"}},
		{"timeout zero", map[string]any{"timeout": "0s"}, []string{"timeout: must be greater than 0, got 0s"}},
		{"timeout negative", map[string]any{"timeout": "-1s"}, []string{"timeout: must be greater than 0, got -1s"}},
		{"timeout not a duration", map[string]any{"timeout": "2"}, []string{`timeout: bad duration "2"`}},
		{"backoff_min zero", map[string]any{"backoff_min": "0s"}, []string{"backoff_min: must be greater than 0, got 0s"}},
		{"backoff_max zero", map[string]any{"backoff_max": "0s"}, []string{"backoff_max: must be greater than 0, got 0s"}},
		{"backoff_min above backoff_max", map[string]any{"backoff_min": "20s"}, []string{"backoff_max: must be at least backoff_min (20s), got 10s"}},
		{"ttl_min zero", map[string]any{"ttl_min": "0s"}, []string{"ttl_min: must be greater than 0, got 0s"}},
		{"ttl_max negative", map[string]any{"ttl_max": "-5m"}, []string{"ttl_max: must be greater than 0, got -5m0s"}},
		{"ttl_min above ttl_max", map[string]any{"ttl_min": "10m"}, []string{"ttl_max: must be at least ttl_min (10m0s), got 5m0s"}},
		{"ttl_max below default ttl_min", map[string]any{"ttl_max": "500ms"}, []string{"ttl_max: must be at least ttl_min (1s), got 500ms"}},
		{"unknown key", map[string]any{"servers": "10.0.0.1:53"}, []string{"servers: unknown key"}},
		{"every problem at once", map[string]any{"server": "x", "timeout": "0s", "ttl_min": "0s"}, []string{
			`server: "x" is not "IP:port"`, "timeout: must be greater than 0", "ttl_min: must be greater than 0",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, problems := decodeMap(tt.m)
			if st == nil {
				t.Errorf("Decode returned no settings")
			}
			if len(problems) != len(tt.want) {
				t.Fatalf("problems %q, want %d: %q", problems, len(tt.want), tt.want)
			}
			for i, want := range tt.want {
				if !strings.HasPrefix(problems[i], "routers[0].interpreter."+want) {
					t.Errorf("problem %d: %q, want it to start with %q", i, problems[i], want)
				}
			}
		})
	}
}

func TestSystemServers(t *testing.T) {
	tests := []struct {
		name    string
		conf    string
		want    []string
		wantErr string
	}{
		{"in order", "# comment\nsearch example.\nnameserver 10.0.0.1\nnameserver 2001:db8::53\noptions ndots:2\nnameserver 10.0.0.2\n",
			[]string{"10.0.0.1:53", "[2001:db8::53]:53", "10.0.0.2:53"}, ""},
		{"zone", "nameserver fe80::1%lo\n", []string{"[fe80::1%lo]:53"}, ""},
		{"host name skipped", "nameserver dns.example\nnameserver 10.0.0.1\n", []string{"10.0.0.1:53"}, ""},
		{"none", "search example.\n", nil, "lists no nameserver: set server"},
		{"only bad ones", "nameserver dns.example\n", nil, "lists no nameserver: set server"},
		{"empty", "", nil, "lists no nameserver: set server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "resolv.conf")
			if err := os.WriteFile(path, []byte(tt.conf), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := systemServers(path, slog.New(slog.DiscardHandler))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want one naming %s and containing %q", err, path, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("servers %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "resolv.conf")
		_, err := systemServers(path, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "no server set") {
			t.Fatalf("error %v, want one naming %s", err, path)
		}
	})
}

func TestNewWithServer(t *testing.T) {
	st := &Settings{Server: "127.0.0.1:53", Timeout: time.Second, BackoffMin: time.Second, BackoffMax: time.Second, TTLMin: time.Second, TTLMax: time.Second}
	in, err := st.New(testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	if r := in.(*resolver); !slices.Equal(r.servers, []string{"127.0.0.1:53"}) {
		t.Errorf("servers %q", r.servers)
	}
}

func FuzzParseServer(f *testing.F) {
	for _, s := range []string{"10.0.0.1:53", "[::1]:53", "[fe80::1%eth0]:5353", "10.0.0.1", "::1", "[10.0.0.1]:53", "host:53", ":53", "1.2.3.4:0", "[::1]:", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := parseServer(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if !ap.IsValid() || ap.Port() == 0 {
			t.Fatalf("parseServer(%q) = %v", s, ap)
		}
		again, err := parseServer(ap.String())
		if err != nil || again != ap {
			t.Fatalf("%q parses to %v, whose string parses to %v, %v", s, ap, again, err)
		}
	})
}

func FuzzReadServers(f *testing.F) {
	f.Add("nameserver 10.0.0.1\nnameserver ::1\n")
	f.Add("nameserver\nnameserver x y\n#nameserver 1.1.1.1\n")
	f.Add("options rotate\nsearch a b c\n")
	f.Fuzz(func(t *testing.T, conf string) {
		servers, _, err := readServers(strings.NewReader(conf))
		if err != nil {
			return
		}
		for _, s := range servers {
			if _, err := parseServer(s); err != nil {
				t.Fatalf("server %q from %q: %v", s, conf, err)
			}
		}
	})
}
