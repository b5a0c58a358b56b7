package consul

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

func TestDecodeDefaults(t *testing.T) {
	st, problems := decodeMap(t, map[string]any{})
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	want := Settings{
		Addr:       "http://127.0.0.1:8500",
		Wait:       time.Minute,
		Timeout:    10 * time.Second,
		BackoffMin: 100 * time.Millisecond,
		BackoffMax: 10 * time.Second,

		MaxConnections: 64,
	}
	if *st != want {
		t.Fatalf("got %+v\nwant %+v", *st, want)
	}
}

func TestDecodeAllKeys(t *testing.T) {
	st, problems := decodeMap(t, map[string]any{
		"addr":        "https://consul.internal:8501/",
		"dc":          "eu-west-1",
		"tag":         "primary",
		"token":       "b1gs3cr3t-0000",
		"wait":        "5m",
		"timeout":     "3s",
		"backoff_min": "1s",
		"backoff_max": "1m",

		"max_connections": int64(150),
	})
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	want := Settings{
		Addr:       "https://consul.internal:8501/",
		Datacenter: "eu-west-1",
		Tag:        "primary",
		Token:      "b1gs3cr3t-0000",
		Wait:       5 * time.Minute,
		Timeout:    3 * time.Second,
		BackoffMin: time.Second,
		BackoffMax: time.Minute,

		MaxConnections: 150,
	}
	if *st != want {
		t.Fatalf("got %+v\nwant %+v", *st, want)
	}
	st, problems = decodeMap(t, map[string]any{"token_file": "/run/secrets/consul-token", "wait": "10m"})
	if len(problems) > 0 || st.TokenFile != "/run/secrets/consul-token" || st.Token != "" || st.Wait != maxWait {
		t.Fatalf("token_file: got %+v, problems %q", *st, problems)
	}
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name string
		m    map[string]any
		want []string // each a substring of one problem, in order
	}{
		{"addr not a string", map[string]any{"addr": int64(8500)}, []string{"addr: expected a string"}},
		{"addr empty", map[string]any{"addr": ""}, []string{`addr: "" must start with http:// or https://`}},
		{"addr no scheme", map[string]any{"addr": "consul:8500"}, []string{`"consul:8500" must start with http:// or https://`}},
		{"addr ip no scheme", map[string]any{"addr": "127.0.0.1:8500"}, []string{`addr: "127.0.0.1:8500" is not a URL`}},
		{"addr no host", map[string]any{"addr": "http://"}, []string{"has no host"}},
		{"addr user", map[string]any{"addr": "http://u:p@h:8500"}, []string{"must not contain a user or password"}},
		{"addr query", map[string]any{"addr": "http://h:8500/?dc=x"}, []string{`must not have a query ("?dc=x")`}},
		{"addr fragment", map[string]any{"addr": "http://h:8500/#x"}, []string{"must not have a fragment"}},
		{"addr port", map[string]any{"addr": "http://h:0"}, []string{"has port 0, out of range"}},
		{"dc not a string", map[string]any{"dc": true}, []string{"dc: expected a string"}},
		{"dc bad", map[string]any{"dc": "eu west"}, []string{`dc: "eu west" contains ' '`}},
		{"dc slash", map[string]any{"dc": "a/b"}, []string{`dc: "a/b" contains '/'`}},
		{"tag control", map[string]any{"tag": "a\nb"}, []string{`tag: "a\nb" contains the control character '\n'`}},
		{"token empty", map[string]any{"token": ""}, []string{"token: must not be empty"}},
		{"token space", map[string]any{"token": " abc"}, []string{"token: must not start or end with white space"}},
		{"token control", map[string]any{"token": "ab\r\nX-Evil: 1"}, []string{"token: must not contain control characters"}},
		{"token and file", map[string]any{"token": "abc", "token_file": "/x"}, []string{"token_file: set token or token_file, not both"}},
		{"token_file empty", map[string]any{"token_file": ""}, []string{"token_file: must not be empty"}},
		{"wait zero", map[string]any{"wait": "0s"}, []string{"wait: must be greater than 0, got 0s"}},
		{"wait too long", map[string]any{"wait": "11m"}, []string{"wait: must be at most 10m0s, the longest Consul waits, got 11m0s"}},
		{"wait not a duration", map[string]any{"wait": "60"}, []string{`wait: bad duration "60"`}},
		{"max_connections too few", map[string]any{"max_connections": int64(3)}, []string{"max_connections: must be 4-10000, got 3"}},
		{"timeout zero", map[string]any{"timeout": "0s"}, []string{"timeout: must be greater than 0"}},
		{"backoff_min zero", map[string]any{"backoff_min": "0s"}, []string{"backoff_min: must be greater than 0"}},
		{"backoff_max below min", map[string]any{"backoff_min": "2s", "backoff_max": "1s"}, []string{"backoff_max: must be at least backoff_min (2s), got 1s"}},
		{"every problem at once", map[string]any{"addr": "ftp://x", "dc": "a b", "wait": "-1s", "timeout": "0s"}, []string{
			"addr: ", "dc: ", "wait: must be greater", "timeout: must be greater",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, problems := decodeMap(t, tt.m)
			if len(problems) != len(tt.want) {
				t.Fatalf("problems %q, want %d matching %q", problems, len(tt.want), tt.want)
			}
			for i, want := range tt.want {
				if !strings.Contains(problems[i], "routers[0].interpreter.") || !strings.Contains(problems[i], want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, problems[i], want)
				}
			}
		})
	}
}

func TestProblemsNeverQuoteTheToken(t *testing.T) {
	for _, token := range []string{" s3cr3t", "s3cr3t\n", "s3\x00cr3t"} {
		_, problems := decodeMap(t, map[string]any{"token": token})
		if len(problems) != 1 || strings.Contains(problems[0], "s3") {
			t.Fatalf("problems %q for a bad token: want one, without the token", problems)
		}
	}
}

func TestAddrAccepted(t *testing.T) {
	tests := []struct{ in, api string }{
		{"http://127.0.0.1:8500", "http://127.0.0.1:8500"},
		{"http://127.0.0.1:8500/", "http://127.0.0.1:8500"},
		{"HTTPS://consul:8501", "https://consul:8501"},
		{"http://[::1]:8500", "http://[::1]:8500"},
		{"http://h/consul/", "http://h/consul"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if api, err := parseAddr(tt.in); err != nil || api != tt.api {
				t.Fatalf("parseAddr(%q) = %q, %v; want %q", tt.in, api, err, tt.api)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name    string
		wantErr string // "" means valid
	}{
		{"/svc/web", ""},
		{"/svc/web-api_v2.internal", ""},
		{"/svc/A1", ""},
		{"/web", `"/web" is not a Consul service name: names take the form /svc/<service>`},
		{"/svc", "names take the form /svc/<service>"},
		{"svc/web", "names take the form"},
		{"/svcweb", "names take the form"},
		{"/svc/", `"/svc/": the service name after /svc/ is empty`},
		{"/svc/a/b", `"a/b" has more than one segment`},
		{"/svc/..", `".." is not a service name`},
		{"/svc/.", `"." is not a service name`},
		{"/svc/my web", `service name "my web" contains ' '`},
		{"/svc/wéb", `contains 'é'`},
		{"/svc/a?b", `contains '?'`},
		{"/svc/a%2Fb", `contains '%'`},
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

func TestHealthURL(t *testing.T) {
	const api = "http://127.0.0.1:8500"
	tests := []struct {
		service, dc, tag string
		index            uint64
		wait             time.Duration
		want             string
	}{
		{"web", "", "", 0, time.Minute, api + "/v1/health/service/web?passing=true"},
		{"web", "dc2", "v1", 0, 0, api + "/v1/health/service/web?dc=dc2&passing=true&tag=v1"},
		{"web", "", "", 42, 59*time.Second + 123456*time.Nanosecond, api + "/v1/health/service/web?index=42&passing=true&wait=59001ms"},
		{"web", "", "a b&c", 1, 0, api + "/v1/health/service/web?index=1&passing=true&tag=a+b%26c&wait=1ms"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := healthURL(api, tt.service, tt.dc, tt.tag, tt.index, tt.wait); got != tt.want {
				t.Fatalf("got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	env := interpreter.Env{Router: "test", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Stats: new(interpreter.Stats)}
	good := Settings{Addr: defaultAddr, Wait: time.Minute, Timeout: time.Second, BackoffMin: time.Millisecond, BackoffMax: time.Second, MaxConnections: defaultMaxConns}
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tokenFile := file("token", "\n  0b6b2f3a-token \n")
	tests := []struct {
		name    string
		edit    func(*Settings)
		wantErr string // "": accepted
		token   string
	}{
		{"good", func(*Settings) {}, "", ""},
		{"token", func(s *Settings) { s.Token = "abc" }, "", "abc"},
		{"token file", func(s *Settings) { s.TokenFile = tokenFile }, "", "0b6b2f3a-token"},
		{"addr", func(s *Settings) { s.Addr = "ftp://x" }, "consul: addr:", ""},
		{"dc", func(s *Settings) { s.Datacenter = "a b" }, "consul: dc:", ""},
		{"tag", func(s *Settings) { s.Tag = "\x00" }, "consul: tag:", ""},
		{"wait", func(s *Settings) { s.Wait = 11 * time.Minute }, "need 0 < wait <= 10m0s", ""},
		{"timeout", func(s *Settings) { s.Timeout = 0 }, "timeout > 0", ""},
		{"max_connections", func(s *Settings) { s.MaxConnections = 1 }, "consul: max_connections: must be 4-10000, got 1", ""},
		{"backoff", func(s *Settings) { s.BackoffMin = 2 * time.Second }, "backoff_min <= backoff_max", ""},
		{"token and file", func(s *Settings) { s.Token, s.TokenFile = "a", tokenFile }, "not both", ""},
		{"bad token", func(s *Settings) { s.Token = "a\nb" }, "consul: token: must not contain control characters", ""},
		{"missing token file", func(s *Settings) { s.TokenFile = filepath.Join(dir, "nope") }, "consul: token_file: stat " + dir + "/nope: no such file", ""},
		{"token file a directory", func(s *Settings) { s.TokenFile = dir }, "is not a regular file", ""},
		{"empty token file", func(s *Settings) { s.TokenFile = file("empty", " \n") }, "is empty", ""},
		{"large token file", func(s *Settings) { s.TokenFile = file("large", strings.Repeat("x", maxTokenFile+1)) }, "larger than 4096 bytes", ""},
		{"bad token in file", func(s *Settings) { s.TokenFile = file("bad", "s3cr3t\x01x") }, "the token in " + dir + "/bad must not contain control characters", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := good
			tt.edit(&st)
			in, err := st.New(env)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New(%+v): %v", st, err)
				}
				defer in.Close()
				if got := *in.(*Interpreter).token.Load(); got != tt.token {
					t.Fatalf("token %q, want %q", got, tt.token)
				}
				return
			}
			if err == nil {
				in.Close()
				t.Fatalf("New accepted %+v", st)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("New: %v, want an error containing %q, without the token", err, tt.wantErr)
			}
		})
	}
}
