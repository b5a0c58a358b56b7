package namerd

import (
	"io"
	"log/slog"
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

const testBase = "http://127.0.0.1:4180"

func TestDecodeDefaults(t *testing.T) {
	st, problems := decodeMap(t, map[string]any{"base_url": testBase})
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	want := Settings{
		BaseURL:    testBase,
		Namespace:  "default",
		Watch:      true,
		Period:     5 * time.Second,
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
		"base_url":    "https://namerd.internal:4181/",
		"namespace":   "edge",
		"watch":       false,
		"period":      "30s",
		"backoff_min": "1s",
		"backoff_max": "1m",
		"timeout":     "2s",
	})
	if len(problems) > 0 {
		t.Fatalf("problems: %q", problems)
	}
	want := Settings{
		BaseURL:    "https://namerd.internal:4181/",
		Namespace:  "edge",
		Watch:      false,
		Period:     30 * time.Second,
		BackoffMin: time.Second,
		BackoffMax: time.Minute,
		Timeout:    2 * time.Second,
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
		{"base_url missing", map[string]any{}, []string{`base_url: required for kind "namerd"`}},
		{"base_url not a string", map[string]any{"base_url": int64(4180)}, []string{"base_url: expected a string"}},
		{"base_url empty", map[string]any{"base_url": ""}, []string{`base_url: "" must start with http:// or https://`}},
		{"base_url no scheme", map[string]any{"base_url": "namerd:4180"}, []string{`"namerd:4180" must start with http:// or https://`}},
		{"base_url ip no scheme", map[string]any{"base_url": "127.0.0.1:4180"}, []string{`base_url: "127.0.0.1:4180" is not a URL`}},
		{"base_url ftp", map[string]any{"base_url": "ftp://h:21"}, []string{"must start with http:// or https://"}},
		{"base_url no host", map[string]any{"base_url": "http://"}, []string{`"http://" has no host`}},
		{"base_url port only", map[string]any{"base_url": "http://:4180"}, []string{"has no host"}},
		{"base_url path only", map[string]any{"base_url": "http:/api"}, []string{"has no host"}},
		{"base_url user", map[string]any{"base_url": "http://u:p@h:4180"}, []string{"must not contain a user or password"}},
		{"base_url query", map[string]any{"base_url": "http://h:4180/?dtab=x"}, []string{`must not have a query ("?dtab=x")`}},
		{"base_url empty query", map[string]any{"base_url": "http://h:4180/?"}, []string{"must not have a query"}},
		{"base_url fragment", map[string]any{"base_url": "http://h:4180/#top"}, []string{`must not have a fragment ("#top")`}},
		{"base_url port range", map[string]any{"base_url": "http://h:99999"}, []string{"has port 99999, out of range (1-65535)"}},
		{"base_url port zero", map[string]any{"base_url": "http://h:0"}, []string{"has port 0, out of range"}},
		{"base_url port word", map[string]any{"base_url": "http://h:http"}, []string{"is not a URL"}},
		{"namespace empty", map[string]any{"base_url": testBase, "namespace": ""}, []string{"namespace: must not be empty"}},
		{"namespace slash", map[string]any{"base_url": testBase, "namespace": "a/b"}, []string{`namespace: "a/b" must not contain "/"`}},
		{"namespace not a string", map[string]any{"base_url": testBase, "namespace": true}, []string{"namespace: expected a string"}},
		{"watch not a bool", map[string]any{"base_url": testBase, "watch": "yes"}, []string{"watch: expected a boolean"}},
		{"period zero", map[string]any{"base_url": testBase, "period": "0s"}, []string{"period: must be greater than 0, got 0s"}},
		{"period negative", map[string]any{"base_url": testBase, "period": "-5s"}, []string{"period: must be greater than 0"}},
		{"period not a duration", map[string]any{"base_url": testBase, "period": "5"}, []string{`period: bad duration "5"`}},
		{"backoff_min zero", map[string]any{"base_url": testBase, "backoff_min": "0s"}, []string{"backoff_min: must be greater than 0"}},
		{"backoff_max zero", map[string]any{"base_url": testBase, "backoff_max": "0s"}, []string{"backoff_max: must be greater than 0"}},
		{"backoff_max below min", map[string]any{"base_url": testBase, "backoff_min": "2s", "backoff_max": "1s"}, []string{"backoff_max: must be at least backoff_min (2s), got 1s"}},
		{"backoff_max below default min", map[string]any{"base_url": testBase, "backoff_max": "50ms"}, []string{"backoff_max: must be at least backoff_min (100ms)"}},
		{"timeout zero", map[string]any{"base_url": testBase, "timeout": "0s"}, []string{"timeout: must be greater than 0"}},
		{"timeout negative", map[string]any{"base_url": testBase, "timeout": "-1ms"}, []string{"timeout: must be greater than 0"}},
		{"every problem at once", map[string]any{"namespace": "", "period": "0s", "timeout": "0s"}, []string{
			"base_url: required", "namespace: must not be empty", "period: must be greater", "timeout: must be greater",
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

func TestBaseURLAccepted(t *testing.T) {
	tests := []struct{ in, api string }{
		{"http://127.0.0.1:4180", "http://127.0.0.1:4180"},
		{"http://127.0.0.1:4180/", "http://127.0.0.1:4180"},
		{"HTTP://namerd:4180", "http://namerd:4180"},
		{"https://namerd.example", "https://namerd.example"},
		{"http://[::1]:4180", "http://[::1]:4180"},
		{"http://h:4180/namerd/", "http://h:4180/namerd"},
		{"http://h:4180/a%20b//", "http://h:4180/a%20b"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			api, err := parseBaseURL(tt.in)
			if err != nil || api != tt.api {
				t.Fatalf("parseBaseURL(%q) = %q, %v; want %q", tt.in, api, err, tt.api)
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
		{"/svc", ""},
		{"/#/io.l5d.fs/web", ""},
		{"/svc/web-1_a:b.c$d%e", ""},
		{`/svc/a\x20b`, ""},
		{`/svc/\xfF`, ""},
		{"svc/web", `"svc/web" must start with "/"`},
		{"", `"" must start with "/"`},
		{"/", `"/" is the empty path`},
		{"/svc//web", `"/svc//web" has an empty segment (number 2)`},
		{"/svc/web/", `has an empty segment (number 3)`},
		{"//", `has an empty segment (number 1)`},
		{"/svc/my web", `segment "my web" contains ' ', which namerd paths do not allow`},
		{"/svc/wéb", `contains 'é'`},
		{"/svc/a?b", `contains '?'`},
		{"/svc/a*", `contains '*'`},
		{`/svc/a\`, `has a "\" not followed by xHH`},
		{`/svc/a\x2`, `not followed by xHH`},
		{`/svc/a\x2g`, `not followed by xHH`},
		{`/svc/a\u0020`, `not followed by xHH`},
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

func TestNewRejectsInvalidSettings(t *testing.T) {
	good := Settings{BaseURL: testBase, Namespace: "default", Watch: true, Period: time.Second,
		BackoffMin: time.Millisecond, BackoffMax: time.Second, Timeout: time.Second}
	env := interpreter.Env{Router: "test", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Stats: new(interpreter.Stats)}
	tests := []struct {
		name    string
		edit    func(*Settings)
		wantErr string
	}{
		{"base_url", func(s *Settings) { s.BaseURL = "ftp://x" }, "namerd: base_url:"},
		{"namespace", func(s *Settings) { s.Namespace = "" }, "namerd: namespace:"},
		{"period", func(s *Settings) { s.Period = 0 }, "need period > 0"},
		{"timeout", func(s *Settings) { s.Timeout = 0 }, "need period > 0"},
		{"backoff", func(s *Settings) { s.BackoffMin = 2 * time.Second }, "backoff_min <= backoff_max"},
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
	in, err := good.New(env)
	if err != nil {
		t.Fatalf("New(%+v): %v", good, err)
	}
	in.Close()
}

func TestResolveURL(t *testing.T) {
	tests := []struct {
		ns, name string
		watch    bool
		want     string
	}{
		{"default", "/svc/web", true, testBase + "/api/1/resolve/default?path=%2Fsvc%2Fweb&watch=true"},
		{"default", "/svc/web", false, testBase + "/api/1/resolve/default?path=%2Fsvc%2Fweb"},
		{"a b", "/#/io.l5d.fs/x", false, testBase + "/api/1/resolve/a%20b?path=%2F%23%2Fio.l5d.fs%2Fx"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := resolveURL(testBase, tt.ns, tt.name, tt.watch); got != tt.want {
				t.Fatalf("got %s\nwant %s", got, tt.want)
			}
		})
	}
}
