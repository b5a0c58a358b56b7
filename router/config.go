package router

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Config is a whole configuration file: the runtime shared by every router,
// and the routers themselves.
type Config struct {
	Runtime RuntimeConfig
	Admin   AdminConfig
	Log     LogConfig
	Routers []RouterConfig
}

// LogConfig is what is logged beyond starts, stops and trouble.
type LogConfig struct {
	// Access logs a line per closed stream.
	Access bool
	// AccessPath is the file access lines are appended to; empty: the
	// process's log output (stderr).
	AccessPath string
}

// AdminConfig is the operator's endpoint, and how the process stops.
type AdminConfig struct {
	// Listen is the admin endpoint's address; empty: no endpoint.
	Listen string
	// Pprof serves net/http/pprof on the admin endpoint.
	Pprof bool
	// DrainTimeout is how long open streams may run on after a stop
	// signal, with the listeners closed, before they are cut.
	DrainTimeout time.Duration
}

// RuntimeConfig sizes the event loops and their splice pipes.
type RuntimeConfig struct {
	Workers  int // event loops; 0 means one per CPU
	PipeSize int // bytes per splice pipe
	MaxPipes int // splice pipes per event loop (a bounded pool)
}

// RouterConfig is one router: where it listens, how it names destinations,
// and how it connects to them.
type RouterConfig struct {
	Label       string
	Interpreter InterpreterConfig
	Servers     []ServerConfig
	Client      ClientConfig
	// BindIdle is how long a name's balancer stays cached with no
	// connection open or made to it; then its watch stops.
	BindIdle time.Duration
	// MaxNames bounds the names cached at once.
	MaxNames int
}

// InterpreterConfig chooses the interpreter that resolves destination names.
type InterpreterConfig struct {
	Kind     string               // a kind of the kinds list
	Settings interpreter.Settings // decoded by the kind
}

// ServerConfig is one listening address and the name its connections go to.
// A zero Lifetime or IdleTimeout means no limit.
type ServerConfig struct {
	Listen         netip.AddrPort
	Dst            string
	ConnectTimeout time.Duration
	Lifetime       time.Duration
	IdleTimeout    time.Duration
	MaxConnections int
	// SystemdSocket names a socket systemd passes (its
	// FileDescriptorName=) to accept on when none has Listen's address;
	// empty: match by address only.
	SystemdSocket string
	// Inherited is a listening socket the process was handed for Listen
	// (systemd's socket activation), set by the process, not the file;
	// 0: none, bind Listen.
	Inherited int `json:"-"`

	// HandshakeTimeout bounds reading what a connection sends before it
	// can be routed: a PROXY header, a TLS ClientHello.
	HandshakeTimeout time.Duration
	// SNIDefault is the dst of the connections of a server whose Dst
	// has {sni} when their ClientHello names no server (or is not one);
	// "": they are closed.
	SNIDefault string
	// ProxyProtocol is the PROXY protocol header every connection starts
	// with: "" (none), "v1", "v2" or "any"; only the peers in
	// ProxyProtocolFrom may send one, the others are refused.
	ProxyProtocol     string
	ProxyProtocolFrom []netip.Prefix

	// Offload is who moves an established stream's bytes: "" (the
	// loop, by splice) or "sockmap" (the kernel, by a BPF sk_skb
	// program; an experiment, see duplex.StartOffload).
	Offload string
	// OffloadAfter is how many batches of bytes a stream moves on its
	// loop before it is offloaded; 0: at once, when its upstream connects.
	// Short streams then never pay the offload's setup.
	OffloadAfter int
}

// OffloadSockmap is the offload value that hands streams to the kernel.
const OffloadSockmap = "sockmap"

// SNI reports whether connections are routed by the server name of their
// TLS ClientHello: the server's dst has {sni}.
func (s *ServerConfig) SNI() bool { return strings.Contains(s.Dst, sniPlaceholder) }

// sniPlaceholder is what a dst has where the server name goes.
const sniPlaceholder = "{sni}"

// ClientConfig is how a router connects to the endpoints of a name.
type ClientConfig struct {
	ConnectTimeout  time.Duration
	ConnectAttempts int
	// MaxWaiters bounds the connections that wait for a name's first
	// answer, per name.
	MaxWaiters     int
	FailureAccrual endpoint.Accrual
	// SendProxy is the PROXY protocol header written to the endpoint
	// before the client's first byte: "" (none), "v1" or "v2".
	SendProxy string
	// Balancer picks endpoints: "p2c" (the less loaded of two at random)
	// or "hash" (consistent hashing of HashKey, "source_ip" or "sni",
	// with no endpoint above HashBalanceFactor times the mean load).
	Balancer          string
	HashKey           string
	HashBalanceFactor float64
}

// Load reads and parses the configuration file at path. Problems in the
// file come back as in Parse, each prefixed with path and its line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(data, path)
}

// Parse decodes a configuration strictly, fills in defaults and validates
// it. It reports every problem at once: the error is a *multierror.Error of
// *ConfigError, one per problem, in the order of the lines they concern.
// A TOML syntax error stops parsing and is the only problem reported.
func Parse(data []byte) (*Config, error) {
	return parse(data, "")
}

// parse runs the configuration pipeline. Each stage adds what it finds
// wrong to one list of problems, so that the operator sees every mistake
// at once, each at the TOML path of its key (routers[0].servers[1].listen):
//
//  1. toml.Decode checks the syntax and yields a generic tree. A syntax
//     error ends the pipeline: nothing after it could be trusted.
//  2. keyLines scans the source for the line of every key, table and
//     array element, by indexed path, to place each problem on its line.
//  3. decode reads the tree strictly into a rawConfig: unknown keys and
//     values of the wrong type are problems, and keys left out stay nil.
//  4. setDefaults fills in the keys left out.
//  5. validate checks values, names and conflicts and builds the Config.
func parse(data []byte, file string) (*Config, error) {
	src := string(data)
	p := &problems{file: file, seen: make(map[string]bool)}
	var tree map[string]any
	if _, err := toml.Decode(src, &tree); err != nil {
		p.syntax(err)
		return nil, p.err()
	}
	p.lines = keyLines(src)
	raw := decode(tree, p)
	raw.setDefaults()
	c := raw.validate(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}
