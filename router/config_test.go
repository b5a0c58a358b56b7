package router

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-multierror"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/server"
)

// configIssueExample is the example from the issue that asked for the
// configuration file.
const configIssueExample = `
[runtime]
workers = 0                 # event loops; 0 = one per CPU
pipe_size = 65536           # bytes per splice pipe
max_pipes = 256             # splice pipes per event loop
[[routers]]
label = "default"
  [routers.interpreter]
  kind = "static"
  [routers.interpreter.names]
  "/svc/web" = ["127.0.0.1:8080", "127.0.0.1:8081*0.5"]   # optional *weight
  [[routers.servers]]
  listen = "127.0.0.1:7474"
  dst = "/svc/web"
  connect_timeout = "1s"
  lifetime = "0s"
  idle_timeout = "5m"
  max_connections = 10000
  [routers.client]
  connect_timeout = "500ms"
  connect_attempts = 3
  failure_accrual = { consecutive_failures = 5, penalty = "60s" }
`

// configBase is a valid configuration that the error cases break in one
// place each: two routers, the first with two servers.
const configBase = `[[routers]]
label = "web"
  [routers.interpreter]
  kind = "static"
  [routers.interpreter.names]
  "/svc/web" = ["127.0.0.1:8080", "127.0.0.1:8081*0.5"]
  [[routers.servers]]
  listen = "127.0.0.1:7474"
  dst = "/svc/web"
  [[routers.servers]]
  listen = "127.0.0.1:7475"
  dst = "/svc/web"
  idle_timeout = "1m"

[[routers]]
label = "echo"
  [routers.interpreter]
  kind = "static"
  [routers.interpreter.names]
  "/svc/echo" = ["127.0.0.1:7007"]
  [[routers.servers]]
  listen = "127.0.0.1:7476"
  dst = "/svc/echo"
  [routers.client]
  connect_attempts = 2
`

// configEdit returns configBase with old, which must occur once, replaced.
func configEdit(t testing.TB, old, new string) string {
	t.Helper()
	if n := strings.Count(configBase, old); n != 1 {
		t.Fatalf("configEdit: %q occurs %d times in configBase", old, n)
	}
	return strings.Replace(configBase, old, new, 1)
}

func mustAddrPort(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestParseIssueExample(t *testing.T) {
	cfg, err := Parse([]byte(configIssueExample))
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Runtime: RuntimeConfig{Workers: 0, PipeSize: 65536, MaxPipes: 256},
		Admin:   AdminConfig{Listen: "127.0.0.1:9989", DrainTimeout: 30 * time.Second},
		Routers: []RouterConfig{{
			Label: "default",
			Interpreter: InterpreterConfig{
				Kind: "static",
				Settings: &interpreter.StaticSettings{Names: map[string][]interpreter.Endpoint{"/svc/web": {
					{Addr: mustAddrPort("127.0.0.1:8080"), Weight: 1},
					{Addr: mustAddrPort("127.0.0.1:8081"), Weight: 0.5},
				}}},
			},
			Servers: []ServerConfig{{
				Listen:         mustAddrPort("127.0.0.1:7474"),
				Dst:            "/svc/web",
				ConnectTimeout: time.Second,
				Lifetime:       0,
				IdleTimeout:    5 * time.Minute,
				MaxConnections: 10000,

				HandshakeTimeout: 5 * time.Second,
				OffloadAfter:     8,
			}},
			Client: ClientConfig{
				ConnectTimeout:  500 * time.Millisecond,
				ConnectAttempts: 3,
				MaxWaiters:      1000,
				FailureAccrual:  endpoint.Accrual{ConsecutiveFailures: 5, Penalty: 60 * time.Second},

				Balancer:          "p2c",
				HashKey:           "source_ip",
				HashBalanceFactor: 1.25,
			},
			BindIdle: 10 * time.Minute,
			MaxNames: 10000,
		}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Parse(issue example) =\n%+v\nwant\n%+v", cfg, want)
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, err := Parse([]byte(`
[[routers]]
label = "r"
interpreter = { kind = "static", names = { "/a" = ["127.0.0.1:1"] } }
servers = [{ listen = "127.0.0.1:0", dst = "/a" }]
`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (RuntimeConfig{Workers: 0, PipeSize: 1 << 20, MaxPipes: 256}); cfg.Runtime != want {
		t.Errorf("Runtime = %+v, want %+v", cfg.Runtime, want)
	}
	r := cfg.Routers[0]
	wantServer := ServerConfig{
		Listen:         mustAddrPort("127.0.0.1:0"),
		Dst:            "/a",
		ConnectTimeout: 3 * time.Second,
		Lifetime:       0,
		IdleTimeout:    5 * time.Minute,
		MaxConnections: 0,

		HandshakeTimeout: 5 * time.Second,
		OffloadAfter:     8,
	}
	if !reflect.DeepEqual(r.Servers[0], wantServer) {
		t.Errorf("Servers[0] = %+v, want %+v", r.Servers[0], wantServer)
	}
	wantClient := ClientConfig{
		ConnectTimeout:  time.Second,
		ConnectAttempts: 3,
		MaxWaiters:      1000,
		FailureAccrual:  endpoint.Accrual{ConsecutiveFailures: 5, Penalty: 60 * time.Second},

		Balancer:          "p2c",
		HashKey:           "source_ip",
		HashBalanceFactor: 1.25,
	}
	if r.BindIdle != 10*time.Minute || r.MaxNames != 10000 {
		t.Errorf("BindIdle, MaxNames = %v, %d, want 10m, 10000", r.BindIdle, r.MaxNames)
	}
	if r.Client != wantClient {
		t.Errorf("Client = %+v, want %+v", r.Client, wantClient)
	}
}

func TestParseKeepsExplicitZero(t *testing.T) {
	src := configEdit(t, `  idle_timeout = "1m"`, `  idle_timeout = "0s"
  lifetime = "0s"`)
	src = strings.Replace(src, `  connect_attempts = 2`, `  failure_accrual = { consecutive_failures = 0, penalty = "0s" }`, 1)
	cfg, err := Parse([]byte("[runtime]\nworkers = 0\n" + src))
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Routers[0].Servers[1]
	if s.IdleTimeout != 0 || s.Lifetime != 0 {
		t.Errorf("IdleTimeout, Lifetime = %v, %v; want 0, 0", s.IdleTimeout, s.Lifetime)
	}
	if got := cfg.Routers[0].Servers[0].IdleTimeout; got != 5*time.Minute {
		t.Errorf("IdleTimeout of the server that left it out = %v, want the default 5m", got)
	}
	if got := cfg.Routers[1].Client.FailureAccrual; got != (endpoint.Accrual{}) {
		t.Errorf("FailureAccrual = %+v, want zero (disabled)", got)
	}
}

func TestParsePortZeroNeverConflicts(t *testing.T) {
	src := strings.ReplaceAll(configBase, `"127.0.0.1:747`, `"127.0.0.1:0`)
	src = strings.ReplaceAll(src, `listen = "127.0.0.1:06"`, `listen = "0.0.0.0:0"`)
	cfg, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Routers[1].Servers[0].Listen; got != mustAddrPort("0.0.0.0:0") {
		t.Errorf("Listen = %v, want 0.0.0.0:0", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		// want are substrings of the error; the first is the problem the
		// case is about, and names the key path.
		want []string
		// at, if set, is text of src on whose line want[0] is reported.
		at string
	}{{
		name: "unknown top-level key",
		src:  "colour = \"red\"\n" + configBase,
		want: []string{`colour: unknown key`},
		at:   "colour",
	}, {
		name: "unknown key in table",
		src:  "[runtime]\nworker = 4\n" + configBase,
		want: []string{`runtime.worker: unknown key`},
		at:   "worker",
	}, {
		name: "unknown key in array of tables",
		src:  configEdit(t, `listen = "127.0.0.1:7475"`, `lisen = "127.0.0.1:7475"`),
		want: []string{`routers[0].servers[1].lisen: unknown key`, `routers[0].servers[1].listen: required`},
		at:   "lisen",
	}, {
		name: "unknown key in inline table",
		src:  configEdit(t, `connect_attempts = 2`, `failure_accrual = { consecutive_failures = 1, penalti = "1s" }`),
		want: []string{`routers[1].client.failure_accrual.penalti: unknown key`},
		at:   "penalti",
	}, {
		name: "key case matters",
		src:  configEdit(t, `label = "echo"`, `Label = "echo"`),
		want: []string{`routers[1].Label: unknown key`, `routers[1].label: required`},
	}, {
		name: "type error",
		src:  "[runtime]\nworkers = \"x\"\n" + configBase,
		want: []string{`line 2: runtime.workers: expected an integer, got string "x"`},
	}, {
		name: "type error in second element of array of tables",
		src:  configEdit(t, `idle_timeout = "1m"`, `max_connections = "many"`),
		want: []string{`routers[0].servers[1].max_connections: expected an integer, got string "many"`},
		at:   `"many"`,
	}, {
		name: "table expected",
		src:  configEdit(t, `label = "web"`, `label = "web"`+"\nclient = 3"),
		want: []string{`routers[0].client: expected a table, got integer 3`},
	}, {
		name: "routers not an array of tables",
		src:  `routers = "x"`,
		want: []string{`routers: expected an array of tables, got string "x"`},
	}, {
		name: "syntax error",
		src:  configEdit(t, `dst = "/svc/echo"`, `dst = `),
		want: []string{`routers.servers.dst: expected value`},
		at:   "dst = \n",
	}, {
		name: "bad duration",
		src:  configEdit(t, `idle_timeout = "1m"`, `idle_timeout = "5 minutes"`),
		want: []string{`routers[0].servers[1].idle_timeout: bad duration "5 minutes": time: unknown unit`},
		at:   "5 minutes",
	}, {
		name: "duration given as a number",
		src:  configEdit(t, `idle_timeout = "1m"`, `idle_timeout = 60`),
		want: []string{`routers[0].servers[1].idle_timeout: expected a duration string such as "1s" or "500ms", got integer 60`},
	}, {
		name: "negative duration",
		src:  configEdit(t, `idle_timeout = "1m"`, `lifetime = "-1s"`),
		want: []string{`routers[0].servers[1].lifetime: negative duration -1s`},
	}, {
		name: "negative penalty",
		src:  configEdit(t, `connect_attempts = 2`, `failure_accrual = { penalty = "-1m" }`),
		want: []string{`routers[1].client.failure_accrual.penalty: negative duration -1m0s`},
	}, {
		name: "zero server connect timeout",
		src:  configEdit(t, `idle_timeout = "1m"`, `connect_timeout = "0s"`),
		want: []string{`routers[0].servers[1].connect_timeout: must be greater than 0, got 0s`},
	}, {
		name: "zero client connect timeout",
		src:  configEdit(t, `connect_attempts = 2`, `connect_timeout = "0ms"`),
		want: []string{`routers[1].client.connect_timeout: must be greater than 0, got 0s`},
	}, {
		name: "bad port",
		src:  configEdit(t, `listen = "127.0.0.1:7475"`, `listen = "127.0.0.1:99999"`),
		want: []string{`routers[0].servers[1].listen: "127.0.0.1:99999" is not an IP:port address (invalid port)`},
		at:   "99999",
	}, {
		name: "host name instead of IP",
		src:  configEdit(t, `listen = "127.0.0.1:7475"`, `listen = "localhost:7475"`),
		want: []string{`routers[0].servers[1].listen: "localhost:7475" is not an IP:port address (the host must be a literal IP address)`},
	}, {
		name: "missing port",
		src:  configEdit(t, `listen = "127.0.0.1:7475"`, `listen = "127.0.0.1"`),
		want: []string{`routers[0].servers[1].listen: "127.0.0.1" is not an IP:port address (missing port)`},
	}, {
		name: "missing listen",
		src:  configEdit(t, `listen = "127.0.0.1:7475"`, ``),
		want: []string{`routers[0].servers[1].listen: required`},
		// A missing key is reported on the line of its table.
		at: "[[routers.servers]]\n  \n",
	}, {
		name: "missing dst",
		src:  configEdit(t, `dst = "/svc/echo"`, ``),
		want: []string{`routers[1].servers[0].dst: required`},
	}, {
		name: "dst not a name",
		src:  configEdit(t, `dst = "/svc/echo"`, `dst = "svc/echo"`),
		want: []string{`routers[1].servers[0].dst: "svc/echo" must start with "/"`},
	}, {
		name: "dst not a static name",
		src:  configEdit(t, `dst = "/svc/echo"`, `dst = "/svc/x"`),
		want: []string{`routers[1].servers[0].dst: "/svc/x" is not a name of the static interpreter`},
	}, {
		name: "duplicate listen",
		src:  configEdit(t, `listen = "127.0.0.1:7476"`, `listen = "127.0.0.1:7474"`),
		want: []string{`routers[1].servers[0].listen: 127.0.0.1:7474 is already used by routers[0].servers[0]`},
	}, {
		name: "duplicate listen as IPv4-mapped IPv6",
		src:  configEdit(t, `listen = "127.0.0.1:7476"`, `listen = "[::ffff:127.0.0.1]:7475"`),
		want: []string{`routers[1].servers[0].listen: [::ffff:127.0.0.1]:7475 is already used by routers[0].servers[1]`},
	}, {
		name: "wildcard listen overlaps",
		src:  configEdit(t, `listen = "127.0.0.1:7476"`, `listen = "0.0.0.0:7474"`),
		want: []string{`routers[1].servers[0].listen: 0.0.0.0:7474 overlaps 127.0.0.1:7474 of routers[0].servers[0]`},
	}, {
		name: "no routers",
		src:  "[runtime]\nworkers = 1\n",
		want: []string{`routers: at least one [[routers]] table is required`},
	}, {
		name: "no servers",
		src: configEdit(t, `  [[routers.servers]]
  listen = "127.0.0.1:7476"
  dst = "/svc/echo"
`, ""),
		want: []string{`routers[1].servers: at least one [[routers.servers]] table is required`},
	}, {
		name: "missing label",
		src:  configEdit(t, `label = "echo"`, ``),
		want: []string{`routers[1].label: required`},
	}, {
		name: "bad label",
		src:  configEdit(t, `label = "echo"`, `label = "echo router"`),
		want: []string{`routers[1].label: "echo router" is not a valid label`},
	}, {
		name: "duplicate label",
		src:  configEdit(t, `label = "echo"`, `label = "web"`),
		want: []string{`routers[1].label: "web" is already used by routers[0]`},
	}, {
		name: "missing interpreter kind",
		src:  configReplaceNth(configBase, "  kind = \"static\"\n", "", 2),
		want: []string{`routers[1].interpreter.kind: required (known: "static"`},
	}, {
		name: "unknown interpreter kind",
		src:  configReplaceNth(configBase, `kind = "static"`, `kind = "zookeeper"`, 2),
		want: []string{`routers[1].interpreter.kind: unknown interpreter kind "zookeeper" (known: "static"`},
		at:   `"zookeeper"`,
	}, {
		name: "static without names",
		src: configEdit(t, `  [routers.interpreter.names]
  "/svc/echo" = ["127.0.0.1:7007"]
`, ""),
		want: []string{`routers[1].interpreter.names: required for kind "static"`},
	}, {
		name: "bad weight",
		src:  configEdit(t, `"127.0.0.1:8081*0.5"`, `"127.0.0.1:8081*x"`),
		want: []string{`routers[0].interpreter.names."/svc/web"[1]: bad endpoint "127.0.0.1:8081*x"`},
		at:   "8081*x",
	}, {
		name: "endpoint not a string",
		src:  configEdit(t, `"127.0.0.1:8081*0.5"`, `8081`),
		want: []string{`routers[0].interpreter.names."/svc/web"[1]: expected a string, got integer 8081`},
	}, {
		name: "bad endpoint after one of the wrong type keeps its index",
		src:  configEdit(t, `"127.0.0.1:8081*0.5"`, `8081, "127.0.0.1"`),
		want: []string{`routers[0].interpreter.names."/svc/web"[2]: bad endpoint "127.0.0.1"`, `routers[0].interpreter.names."/svc/web"[1]: expected a string`},
	}, {
		name: "duplicate endpoint",
		src:  configEdit(t, `"127.0.0.1:8081*0.5"`, `"127.0.0.1:8080*2"`),
		want: []string{`routers[0].interpreter.names."/svc/web"[1]: 127.0.0.1:8080 is already listed at [0]`},
	}, {
		name: "name without slash",
		src:  configEdit(t, `"/svc/echo" = ["127.0.0.1:7007"]`, `"/svc/echo" = ["127.0.0.1:7007"]`+"\n  echo = []"),
		want: []string{`routers[1].interpreter.names.echo: name must start with "/"`},
	}, {
		name: "workers out of range",
		src:  "[runtime]\nworkers = 2000\n" + configBase,
		want: []string{`runtime.workers: must be between 0 and 1024, got 2000`},
	}, {
		name: "pipe size out of range",
		src:  "[runtime]\npipe_size = 100\n" + configBase,
		want: []string{`runtime.pipe_size: must be between 4096 and 67108864, got 100`},
	}, {
		name: "max pipes out of range",
		src:  "[runtime]\nmax_pipes = 0\n" + configBase,
		want: []string{`runtime.max_pipes: must be between 1 and 65536, got 0`},
	}, {
		name: "connect attempts out of range",
		src:  configEdit(t, `connect_attempts = 2`, `connect_attempts = 101`),
		want: []string{`routers[1].client.connect_attempts: must be between 1 and 100, got 101`},
	}, {
		name: "systemd_socket with a colon",
		src:  configEdit(t, `idle_timeout = "1m"`, `systemd_socket = "a:b"`),
		want: []string{`routers[0].servers[1].systemd_socket: "a:b" may hold printable ASCII characters other than ":" and space only`},
	}, {
		name: "systemd_socket empty",
		src:  configEdit(t, `idle_timeout = "1m"`, `systemd_socket = ""`),
		want: []string{`routers[0].servers[1].systemd_socket: "" must be 1 to 255 characters long`},
	}, {
		name: "access log path without access",
		src:  "[log]\npath = \"/var/log/switchyard/access.log\"\n" + configBase,
		want: []string{`log.path: is the access log's file: set access = true too`},
	}, {
		name: "admin listen",
		src:  "[admin]\nlisten = \"localhost:9989\"\n" + configBase,
		want: []string{`admin.listen: "localhost:9989" is not an IP:port address (the host must be a literal IP address); "" turns the endpoint off`},
	}, {
		name: "max_waiters negative",
		src:  configEdit(t, `connect_attempts = 2`, `connect_attempts = 2`+"\n  max_waiters = -1"),
		want: []string{`routers[1].client.max_waiters: must be between 0 and 1048576, got -1`},
	}, {
		name: "pprof not a boolean",
		src:  "[admin]\npprof = \"yes\"\n" + configBase,
		want: []string{`admin.pprof: expected a boolean (true or false), got string "yes"`},
	}, {
		name: "max_connections negative",
		src:  configEdit(t, `idle_timeout = "1m"`, `max_connections = -1`),
		want: []string{`routers[0].servers[1].max_connections: must be at least 0, got -1`},
	}, {
		name: "negative consecutive failures",
		src:  configEdit(t, `connect_attempts = 2`, `failure_accrual = { consecutive_failures = -1 }`),
		want: []string{`routers[1].client.failure_accrual.consecutive_failures: must be at least 0, got -1`},
	}, {
		name: "proxy_protocol unknown",
		src:  configEdit(t, `  idle_timeout = "1m"`, `  proxy_protocol = "v3"`+"\n"+`  proxy_protocol_from = ["10.0.0.0/8"]`),
		want: []string{`routers[0].servers[1].proxy_protocol: "v3" is not one of "", "v1", "v2", "any"`},
	}, {
		name: "proxy_protocol without proxy_protocol_from",
		src:  configEdit(t, `  idle_timeout = "1m"`, `  proxy_protocol = "v2"`),
		want: []string{`routers[0].servers[1].proxy_protocol_from: required with proxy_protocol`},
	}, {
		name: "proxy_protocol_from without proxy_protocol",
		src:  configEdit(t, `  idle_timeout = "1m"`, `  proxy_protocol_from = ["10.0.0.0/8"]`),
		want: []string{`routers[0].servers[1].proxy_protocol_from: lists who may send a PROXY header: it needs proxy_protocol`},
	}, {
		name: "proxy_protocol_from bad CIDR",
		src:  configEdit(t, `  idle_timeout = "1m"`, `  proxy_protocol = "any"`+"\n"+`  proxy_protocol_from = ["10.0.0.1/8", "fe80::/10", "nope"]`),
		want: []string{`routers[0].servers[1].proxy_protocol_from[0]: "10.0.0.1/8" is not a CIDR or an IP address: has host bits set (the network is 10.0.0.0/8)`,
			`routers[0].servers[1].proxy_protocol_from[2]: "nope" is not a CIDR`},
	}, {
		name: "handshake_timeout zero",
		src:  configEdit(t, `  idle_timeout = "1m"`, `  handshake_timeout = "0s"`),
		want: []string{`routers[0].servers[1].handshake_timeout: must be greater than 0`},
	}, {
		name: "sni dst no static name fits",
		src: configEdit(t, `listen = "127.0.0.1:7476"
  dst = "/svc/echo"`, `listen = "127.0.0.1:7476"
  dst = "/tls/{sni}"`),
		want: []string{`routers[1].servers[0].dst: no static name fits "/tls/{sni}"`},
	}, {
		name: "sni_default without sni",
		src:  configEdit(t, `  idle_timeout = "1m"`, `  sni_default = "/svc/web"`),
		want: []string{`routers[0].servers[1].sni_default: is where connections without a server name go: it needs a dst with {sni}`},
	}, {
		name: "client keys",
		src: configEdit(t, `  connect_attempts = 2`, `  send_proxy = "v9"
  balancer = "roundrobin"
  hash_key = "cookie"
  hash_balance_factor = 0.5`),
		want: []string{`routers[1].client.send_proxy: "v9" is not one of "", "v1", "v2"`,
			`routers[1].client.balancer: "roundrobin" is not one of "p2c", "hash"`,
			`routers[1].client.hash_key: "cookie" is not one of "source_ip", "sni"`,
			`routers[1].client.hash_balance_factor: must be 1-100`},
	}, {
		name: "hash on sni without sni",
		src:  configEdit(t, `  connect_attempts = 2`, `  balancer = "hash"`+"\n"+`  hash_key = "sni"`),
		want: []string{`routers[1].servers[0].dst: has no {sni}, which client.hash_key = "sni" needs`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tt.src))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v; want an error", cfg)
			}
			if cfg != nil {
				t.Errorf("Parse returned a Config with its error")
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q; it is:\n%s", w, msg)
				}
			}
			if tt.at != "" {
				i := strings.Index(tt.src, tt.at)
				if i < 0 {
					t.Fatalf("%q is not in the source", tt.at)
				}
				line := strings.Count(tt.src[:i], "\n") + 1
				if w := fmt.Sprintf("line %d: %s", line, tt.want[0]); !strings.Contains(msg, w) {
					t.Errorf("error does not contain %q; it is:\n%s", w, msg)
				}
			}
		})
	}
}

// configReplaceNth replaces the n-th (from 1) occurrence of old in s.
func configReplaceNth(s, old, new string, n int) string {
	at := -1
	for range n {
		j := strings.Index(s[at+1:], old)
		if j < 0 {
			panic(fmt.Sprintf("configReplaceNth: fewer than %d of %q", n, old))
		}
		at += 1 + j
	}
	return s[:at] + new + s[at+len(old):]
}

func TestParseReportsEveryProblem(t *testing.T) {
	src := "[runtime]\nworkers = -1\n" + configBase
	src = strings.Replace(src, `listen = "127.0.0.1:7475"`, `lisen = "127.0.0.1:7475"`, 1)
	src = strings.Replace(src, `idle_timeout = "1m"`, `idle_timeout = "5 minutes"`, 1)
	src = strings.Replace(src, `"127.0.0.1:8081*0.5"`, `"127.0.0.1:8081*-1"`, 1)
	src = strings.Replace(src, `dst = "/svc/echo"`, `dst = "/svc/nope"`, 1)
	_, err := Parse([]byte(src))
	var merr *multierror.Error
	if !errors.As(err, &merr) {
		t.Fatalf("error is %T, want *multierror.Error: %v", err, err)
	}
	want := []string{
		`line 2: runtime.workers: must be between 0 and 1024, got -1`,
		`line 8: routers[0].interpreter.names."/svc/web"[1]: bad endpoint "127.0.0.1:8081*-1"`,
		`line 12: routers[0].servers[1].listen: required`,
		`line 13: routers[0].servers[1].lisen: unknown key`,
		`line 15: routers[0].servers[1].idle_timeout: bad duration "5 minutes"`,
		`line 25: routers[1].servers[0].dst: "/svc/nope" is not a name of the static interpreter`,
	}
	if len(merr.Errors) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(merr.Errors), len(want), err)
	}
	for i, e := range merr.Errors {
		var ce *ConfigError
		if !errors.As(e, &ce) {
			t.Errorf("problem %d is %T, want *ConfigError", i, e)
		}
		if !strings.HasPrefix(e.Error(), want[i]) {
			t.Errorf("problem %d = %q, want it to start with %q", i, e, want[i])
		}
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "6 problems in configuration:\n\tline 2: runtime.workers") {
		t.Errorf("message does not start with the count and an indented list:\n%s", msg)
	}
}

func TestParseSingleProblemIsOneLine(t *testing.T) {
	_, err := Parse([]byte(configEdit(t, `label = "echo"`, `label = "web"`)))
	if want := `line 16: routers[1].label: "web" is already used by routers[0]`; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
}

func TestExampleFileParses(t *testing.T) {
	cfg, err := Load("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	routes := map[netip.AddrPort][]interpreter.Endpoint{}
	for _, r := range cfg.Routers {
		for _, s := range r.Servers {
			routes[s.Listen] = staticNames(r)[s.Dst]
		}
	}
	want := map[netip.AddrPort][]interpreter.Endpoint{
		mustAddrPort("127.0.0.1:7474"): {{Addr: mustAddrPort("127.0.0.1:5201"), Weight: 1}},
		mustAddrPort("127.0.0.1:7475"): {{Addr: mustAddrPort("127.0.0.1:7007"), Weight: 1}},
	}
	if !reflect.DeepEqual(routes, want) {
		t.Errorf("example routes %v, want %v", routes, want)
	}
	// The example documents the defaults by setting every key to its
	// default, so it must decode exactly like a file that leaves them out.
	minimal := `
[[routers]]
label = "default"
interpreter = { kind = "static", names = { "/svc/iperf" = ["127.0.0.1:5201"], "/svc/echo" = ["127.0.0.1:7007"] } }
servers = [{ listen = "127.0.0.1:7474", dst = "/svc/iperf" }, { listen = "127.0.0.1:7475", dst = "/svc/echo" }]
`
	defaults, err := Parse([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(cfg, defaults) {
		t.Errorf("the example's values are not the defaults:\nexample  %+v\ndefaults %+v", cfg, defaults)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.toml")
	_, err := Load(path)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Load(%q) error = %v, want it to name the file", path, err)
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error does not wrap os.ErrNotExist: %v", err)
	}
}

func TestLoadNamesFileAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchyard.toml")
	if err := os.WriteFile(path, []byte("[runtime]\nworkers = \"x\"\n"+configBase), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want := path + `:2: runtime.workers: expected an integer, got string "x"`; err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %q", err, want)
	}
}

func TestParentPath(t *testing.T) {
	tests := []struct{ path, want string }{
		{`routers[0].servers[1].listen`, `routers[0].servers[1]`},
		{`routers[0].servers[1]`, `routers[0].servers`},
		{`routers`, ``},
		{`names."/a.b[0]"[2]`, `names."/a.b[0]"`},
		{`names."/a.b[0]"`, `names`},
		{`names."q\".x"`, `names`},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			if got := parentPath(tt.path); got != tt.want {
				t.Errorf("parentPath(%s) = %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

// configInvariants checks what validation promises about a Config that
// Parse returned without error.
func configInvariants(t testing.TB, c *Config) {
	t.Helper()
	if c.Runtime.Workers < 0 || c.Runtime.Workers > maxWorkers ||
		c.Runtime.PipeSize < minPipeSize || c.Runtime.PipeSize > maxPipeSize ||
		c.Runtime.MaxPipes < 1 || c.Runtime.MaxPipes > maxMaxPipes {
		t.Errorf("runtime out of range: %+v", c.Runtime)
	}
	if len(c.Routers) == 0 {
		t.Errorf("no routers")
	}
	labels := map[string]bool{}
	listens := map[netip.AddrPort]bool{}
	for i, r := range c.Routers {
		if !labelPattern.MatchString(r.Label) || labels[r.Label] {
			t.Errorf("routers[%d]: bad or duplicate label %q", i, r.Label)
		}
		labels[r.Label] = true
		if _, ok := findKind(r.Interpreter.Kind); !ok || r.Interpreter.Settings == nil {
			t.Errorf("routers[%d]: kind %q, settings %v", i, r.Interpreter.Kind, r.Interpreter.Settings)
		}
		if r.BindIdle <= 0 || r.MaxNames < 1 || r.Client.MaxWaiters < 0 {
			t.Errorf("routers[%d]: out of range: bind_idle %v, max_names %d, max_waiters %d", i, r.BindIdle, r.MaxNames, r.Client.MaxWaiters)
		}
		for name, eps := range staticNames(r) {
			if !strings.HasPrefix(name, "/") {
				t.Errorf("routers[%d]: name %q", i, name)
			}
			for _, e := range eps {
				if !e.Addr.IsValid() || e.Addr.Port() == 0 || !(e.Weight > 0) || math.IsInf(e.Weight, 0) {
					t.Errorf("routers[%d]: name %q: bad endpoint %+v", i, name, e)
				}
			}
		}
		if len(r.Servers) == 0 {
			t.Errorf("routers[%d]: no servers", i)
		}
		for j, s := range r.Servers {
			if err := r.Interpreter.Settings.CheckName(s.Dst); err != nil {
				t.Errorf("routers[%d].servers[%d]: dst %q: %v", i, j, s.Dst, err)
			}
			if !s.Listen.IsValid() {
				t.Errorf("routers[%d].servers[%d]: listen %v", i, j, s.Listen)
			}
			l := netip.AddrPortFrom(s.Listen.Addr().Unmap(), s.Listen.Port())
			if l.Port() != 0 && listens[l] {
				t.Errorf("routers[%d].servers[%d]: listen %v used twice", i, j, s.Listen)
			}
			listens[l] = true
			if s.ConnectTimeout <= 0 || s.Lifetime < 0 || s.IdleTimeout < 0 || s.MaxConnections < 0 {
				t.Errorf("routers[%d].servers[%d]: out of range: %+v", i, j, s)
			}
		}
		cl := r.Client
		if cl.ConnectTimeout <= 0 || cl.ConnectAttempts < 1 || cl.ConnectAttempts > maxConnectAttempts ||
			cl.FailureAccrual.ConsecutiveFailures < 0 || cl.FailureAccrual.Penalty < 0 {
			t.Errorf("routers[%d].client out of range: %+v", i, cl)
		}
	}
}

// staticNames returns the names of a static router, nil for another kind.
func staticNames(r RouterConfig) map[string][]interpreter.Endpoint {
	if st, ok := r.Interpreter.Settings.(*interpreter.StaticSettings); ok {
		return st.Names
	}
	return nil
}

// The example shows every other interpreter kind commented out, with every
// key at its default: each block, uncommented, must be a valid interpreter
// table of its kind, and decode exactly as the kind's defaults do.
func TestExampleInterpreterBlocksParse(t *testing.T) {
	data, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dsts := map[string]string{"namerd": "/svc/web", "file": "/svc/web", "dns": "/dns/example.com/80",
		"destination": "/svc/web.emojivoto.svc.cluster.local:8080", "consul": "/svc/web"}
	blocks := 0
	for _, block := range strings.Split(string(data), "  #[routers.interpreter]\n")[1:] {
		var table, kind, required strings.Builder
		table.WriteString("[routers.interpreter]\n")
		for _, line := range strings.Split(block, "\n") {
			if line == "" {
				break
			}
			if setting, ok := strings.CutPrefix(line, "  #"); ok && !strings.HasPrefix(setting, " ") {
				table.WriteString(setting + "\n")
				if k, ok := strings.CutPrefix(setting, "kind = "); ok {
					kind.WriteString(strings.Trim(k, `"`))
				}
				// Keys with no default: the example shows a value.
				if strings.HasPrefix(setting, "base_url") || strings.HasPrefix(setting, "dir") ||
					strings.HasPrefix(setting, "server") || strings.HasPrefix(setting, "kind") ||
					strings.HasPrefix(setting, "addr") {
					required.WriteString(setting + "\n")
				}
			}
		}
		blocks++
		t.Run(kind.String(), func(t *testing.T) {
			dst, ok := dsts[kind.String()]
			if !ok {
				t.Fatalf("no dst known for kind %q", kind.String())
			}
			router := "[[routers]]\nlabel = \"r\"\n[[routers.servers]]\nlisten = \"127.0.0.1:0\"\ndst = \"" + dst + "\"\n"
			full, err := Parse([]byte(router + table.String()))
			if err != nil {
				t.Fatalf("the example's %s block: %v\n%s", kind.String(), err, table.String())
			}
			defaults, err := Parse([]byte(router + "[routers.interpreter]\n" + required.String()))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(full.Routers[0].Interpreter, defaults.Routers[0].Interpreter) {
				t.Errorf("the example's %s values are not the defaults:\nexample  %+v\ndefaults %+v",
					kind.String(), full.Routers[0].Interpreter.Settings, defaults.Routers[0].Interpreter.Settings)
			}
		})
	}
	if blocks != len(dsts) {
		t.Errorf("%d commented interpreter blocks in the example, want %d", blocks, len(dsts))
	}
}

func TestFitOpenFiles(t *testing.T) {
	cfg := &Config{Runtime: RuntimeConfig{Workers: 2, MaxPipes: 256}, Routers: []RouterConfig{
		{Servers: []ServerConfig{{MaxConnections: 0}, {MaxConnections: 1000}}},
		{Servers: []ServerConfig{{MaxConnections: 0}}},
	}}
	// 20000 - 64 margin - 1024 for pipes (under a quarter of the limit) -
	// 6 listeners - 2000 for the server with a bound = 16906, two
	// descriptors a connection, two servers.
	cfg.FitOpenFiles(20000)
	got := []int{cfg.Routers[0].Servers[0].MaxConnections, cfg.Routers[0].Servers[1].MaxConnections, cfg.Routers[1].Servers[0].MaxConnections}
	if want := []int{4226, 1000, 4226}; !slices.Equal(got, want) {
		t.Errorf("max_connections = %v, want %v", got, want)
	}
	if need := cfg.DescriptorsNeeded(20000); need > 20000 {
		t.Errorf("the shares need %d descriptors, over the limit of 20000", need)
	}
	// A limit of 1024 with four loops: pipes get a quarter, not all 2048
	// descriptors the pools could hold, and the two servers share the rest:
	// 1024 - 64 - 256 - 8 listeners = 696, 174 connections each.
	usual := &Config{Runtime: RuntimeConfig{Workers: 4, MaxPipes: 256}, Routers: []RouterConfig{{Servers: []ServerConfig{{}, {}}}}}
	usual.FitOpenFiles(1024)
	if got := usual.Routers[0].Servers[0].MaxConnections; got != 174 {
		t.Errorf("limit 1024, four loops, two servers: %d each, want 174", got)
	}
	// A limit too small for anything still leaves one connection each.
	small := &Config{Runtime: RuntimeConfig{Workers: 2, MaxPipes: 256}, Routers: []RouterConfig{{Servers: []ServerConfig{{}}}}}
	small.FitOpenFiles(60)
	if small.Routers[0].Servers[0].MaxConnections != 1 {
		t.Errorf("with a tiny limit: %d, want 1", small.Routers[0].Servers[0].MaxConnections)
	}
}

// The edge keys decode into the server's and client's settings.
func TestParseEdgeKeys(t *testing.T) {
	cfg, err := Parse([]byte(`
[[routers]]
label = "edge"
interpreter = { kind = "static", names = { "/tls/a.example.com" = ["127.0.0.1:1"], "/tls/default" = ["127.0.0.1:2"] } }
  [[routers.servers]]
  listen = "127.0.0.1:0"
  dst = "/tls/{sni}"
  sni_default = "/tls/default"
  handshake_timeout = "2s"
  proxy_protocol = "any"
  proxy_protocol_from = ["10.0.0.0/8", "::1", "fd00::/8"]
  [routers.client]
  send_proxy = "v1"
  balancer = "hash"
  hash_key = "sni"
  hash_balance_factor = 2
`))
	if err != nil {
		t.Fatal(err)
	}
	s, c := cfg.Routers[0].Servers[0], cfg.Routers[0].Client
	wantFrom := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("fd00::/8")}
	if !s.SNI() || s.SNIDefault != "/tls/default" || s.HandshakeTimeout != 2*time.Second || s.ProxyProtocol != "any" ||
		!reflect.DeepEqual(s.ProxyProtocolFrom, wantFrom) {
		t.Errorf("server %+v", s)
	}
	if c.SendProxy != "v1" || c.Balancer != "hash" || c.HashKey != "sni" || c.HashBalanceFactor != 2 {
		t.Errorf("client %+v", c)
	}
	hs := handshakeOf(&s)
	if hs == nil || !hs.SNI || hs.Proxy != server.ProxyAllowAny || hs.Default != "/tls/default" || hs.Timeout != 2*time.Second {
		t.Errorf("handshake %+v", hs)
	}
}
