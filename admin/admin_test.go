package admin

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// source is a Source the test sets.
type source struct {
	ready     atomic.Bool
	shutdowns atomic.Int32
	reloads   atomic.Int32
	reloadErr error // what Reload answers; read only by requests
}

type settings struct {
	PipeSize     int
	DrainTimeout time.Duration
	Listen       netip.AddrPort
	BaseURL      string `json:"base_url"`
	Inherited    int    `json:"-"`
	TTLMin       time.Duration
	Names        map[string][]string
}

func (s *source) Ready() bool { return s.ready.Load() }
func (s *source) Config() any {
	return &settings{PipeSize: 4096, DrainTimeout: 1500 * time.Millisecond, Listen: netip.MustParseAddrPort("127.0.0.1:7474"),
		BaseURL: "http://namerd:4180", Inherited: 3, TTLMin: time.Second, Names: map[string][]string{"/svc/a": {"x"}}}
}
func (s *source) Routers() any { return []string{"r"} }
func (s *source) Shutdown()    { s.shutdowns.Add(1) }
func (s *source) Reload(<-chan struct{}) (string, error) {
	s.reloads.Add(1)
	if s.reloadErr != nil {
		return "", s.reloadErr
	}
	return "reloaded: configuration 2", nil
}

func start(t *testing.T, opt Options) (*source, string) {
	t.Helper()
	src := &source{}
	s, err := Start("127.0.0.1:0", src, opt, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return src, "http://" + s.Addr().String()
}

func get(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestEndpoints(t *testing.T) {
	src, base := start(t, Options{})
	tests := []struct {
		method, path string
		ready        bool
		code         int
		body         string
	}{
		{"GET", "/live", false, 200, "live\n"},
		{"GET", "/ready", false, 503, "not ready: starting or draining\n"},
		{"GET", "/ready", true, 200, "ready\n"},
		{"POST", "/ready", true, 405, ""},
		{"GET", "/shutdown", true, 405, ""},
		{"PUT", "/shutdown", true, 405, ""},
		{"GET", "/reload", true, 405, ""},
		{"GET", "/debug/pprof/", true, 404, ""},
		{"GET", "/nothing", true, 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			src.ready.Store(tt.ready)
			code, body := get(t, tt.method, base+tt.path)
			if code != tt.code || tt.body != "" && body != tt.body {
				t.Errorf("%s %s = %d %q, want %d %q", tt.method, tt.path, code, body, tt.code, tt.body)
			}
		})
	}
	if n := src.shutdowns.Load(); n != 0 {
		t.Fatalf("%d shutdowns from requests that were refused", n)
	}
	if code, _ := get(t, "POST", base+"/shutdown"); code != http.StatusAccepted || src.shutdowns.Load() != 1 {
		t.Errorf("POST /shutdown = %d, %d shutdowns; want 202 and one", code, src.shutdowns.Load())
	}
	if n := src.reloads.Load(); n != 0 {
		t.Fatalf("%d reloads from requests that were refused", n)
	}
	if code, body := get(t, "POST", base+"/reload"); code != http.StatusOK || body != "reloaded: configuration 2\n" {
		t.Errorf("POST /reload = %d %q; want 200 and what Reload said", code, body)
	}
}

func TestReloadFailureNamesTheProblems(t *testing.T) {
	src, base := start(t, Options{})
	src.reloadErr = errors.New("switchyard.toml:3: routers[0].label: required\nswitchyard.toml:9: bad duration")
	code, body := get(t, "POST", base+"/reload")
	want := "reload failed: keeping the running configuration\nswitchyard.toml:3: routers[0].label: required\nswitchyard.toml:9: bad duration\n"
	if code != http.StatusBadRequest || body != want {
		t.Errorf("POST /reload = %d %q; want 400 %q", code, body, want)
	}
}

func TestConfigShowsTheFileKeys(t *testing.T) {
	_, base := start(t, Options{})
	code, body := get(t, "GET", base+"/config")
	if code != 200 {
		t.Fatalf("GET /config = %d", code)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"pipe_size": float64(4096), "drain_timeout": "1.5s", "listen": "127.0.0.1:7474",
		"base_url": "http://namerd:4180", "ttl_min": "1s",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if _, ok := got["inherited"]; ok {
		t.Error(`a field tagged json:"-" is shown`)
	}
	if names, _ := got["names"].(map[string]any); names["/svc/a"] == nil {
		t.Errorf("names = %v", got["names"])
	}
}

func TestPprofOnlyWhenAsked(t *testing.T) {
	_, base := start(t, Options{Pprof: true})
	code, body := get(t, "GET", base+"/debug/pprof/")
	if code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/ with pprof on = %d", code)
	}
}

func TestStartOnAnAddressInUse(t *testing.T) {
	_, base := start(t, Options{})
	addr := strings.TrimPrefix(base, "http://")
	if _, err := Start(addr, &source{}, Options{}, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil || !strings.Contains(err.Error(), "admin:") {
		t.Fatalf("Start on a taken address: %v, want an admin error", err)
	}
}

func TestSnake(t *testing.T) {
	for in, want := range map[string]string{
		"PipeSize": "pipe_size", "TTLMin": "ttl_min", "BaseURL": "base_url", "DrainTimeout": "drain_timeout",
		"Dst": "dst", "MaxConnections": "max_connections", "AccessPath": "access_path",
	} {
		if got := snake(in); got != want {
			t.Errorf("snake(%q) = %q, want %q", in, got, want)
		}
	}
}
