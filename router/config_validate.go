package router

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-proxy/switchyard/endpoint"
)

// Limits checked by validation.
const (
	maxWorkers         = 1024
	minPipeSize        = 4096
	maxPipeSize        = 64 << 20
	maxMaxPipes        = 65536
	maxConnectAttempts = 100
	maxMaxWaiters      = 1 << 20
	maxMaxNames        = 1 << 20
)

var labelPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// validate checks a defaulted rawConfig and builds the Config from it. The
// Config is meaningful only if validate added no problems.
func (c *rawConfig) validate(p *problems) *Config {
	cfg := &Config{Runtime: RuntimeConfig{
		Workers:  checkRange(p, "runtime.workers", *c.workers, 0, maxWorkers),
		PipeSize: checkRange(p, "runtime.pipe_size", *c.pipeSize, minPipeSize, maxPipeSize),
		MaxPipes: checkRange(p, "runtime.max_pipes", *c.maxPipes, 1, maxMaxPipes),
	}, Admin: AdminConfig{
		Listen:       checkAdminListen(p, *c.adminListen),
		Pprof:        *c.pprof,
		DrainTimeout: checkNonNegative(p, "admin.drain_timeout", *c.drainTimeout),
	}, Log: LogConfig{
		Access:     *c.access,
		AccessPath: *c.accessPath,
	}}
	if *c.accessPath != "" && !*c.access {
		p.add("log.path", "is the access log's file: set access = true too")
	}
	if len(c.routers) == 0 {
		p.add("routers", "at least one [[routers]] table is required")
	}
	labels := make(map[string]string)   // label → path of its router
	listens := make(map[uint16][]owner) // by port: who listens there
	for _, r := range c.routers {
		rc := RouterConfig{
			Label:       r.checkLabel(p, labels),
			Interpreter: r.checkInterpreter(p),
			Client: ClientConfig{
				ConnectTimeout:  checkPositive(p, r.path+".client.connect_timeout", *r.connectTimeout),
				ConnectAttempts: checkRange(p, r.path+".client.connect_attempts", *r.connectAttempts, 1, maxConnectAttempts),
				MaxWaiters:      checkRange(p, r.path+".client.max_waiters", *r.maxWaiters, 0, maxMaxWaiters),
				FailureAccrual: endpoint.Accrual{
					ConsecutiveFailures: checkAtLeast(p, r.path+".client.failure_accrual.consecutive_failures", *r.consecutiveFailures, 0),
					Penalty:             checkNonNegative(p, r.path+".client.failure_accrual.penalty", *r.penalty),
				},
			},
			BindIdle: checkPositive(p, r.path+".bind_idle", *r.bindIdle),
			MaxNames: checkRange(p, r.path+".max_names", *r.maxNames, 1, maxMaxNames),
		}
		if len(r.servers) == 0 {
			p.add(r.path+".servers", "at least one [[routers.servers]] table is required")
		}
		for _, s := range r.servers {
			rc.Servers = append(rc.Servers, s.validate(p, rc.Interpreter, listens))
		}
		cfg.Routers = append(cfg.Routers, rc)
	}
	return cfg
}

func (r *rawRouter) checkLabel(p *problems, seen map[string]string) string {
	path := r.path + ".label"
	switch {
	case r.label == nil:
		p.add(path, "required")
		return ""
	case !labelPattern.MatchString(*r.label):
		p.add(path, `%s is not a valid label (use letters, digits, "_", "." and "-")`, quote(*r.label))
	case seen[*r.label] != "":
		p.add(path, "%s is already used by %s", quote(*r.label), seen[*r.label])
	default:
		seen[*r.label] = r.path
	}
	return *r.label
}

// checkInterpreter finds the interpreter's kind and has it decode the rest
// of the table. With no known kind, the table's other keys are not checked:
// nothing says what they should be.
func (r *rawRouter) checkInterpreter(p *problems) InterpreterConfig {
	path := r.path + ".interpreter"
	if r.interp.notTable {
		return InterpreterConfig{} // reported as such: nothing more to say
	}
	if r.kind == nil {
		p.add(path+".kind", "required (known: %s)", kindNames())
		return InterpreterConfig{}
	}
	kind, ok := findKind(*r.kind)
	if !ok {
		p.add(path+".kind", "unknown interpreter kind %s (known: %s)", quote(*r.kind), kindNames())
		return InterpreterConfig{Kind: *r.kind}
	}
	ic := InterpreterConfig{Kind: kind.Name, Settings: kind.Decode(kindTable{r.interp})}
	r.interp.done()
	return ic
}

// owner is a server that listens on an address, for conflict messages.
type owner struct {
	addr netip.AddrPort
	path string
}

// validate checks one server of a router whose interpreter is ic (with
// nil Settings when the interpreter itself is wrong, which is reported
// there rather than once per dst).
func (s *rawServer) validate(p *problems, ic InterpreterConfig, listens map[uint16][]owner) ServerConfig {
	sc := ServerConfig{
		Listen:         s.checkListen(p, listens),
		ConnectTimeout: checkPositive(p, s.path+".connect_timeout", *s.connectTimeout),
		Lifetime:       checkNonNegative(p, s.path+".lifetime", *s.lifetime),
		IdleTimeout:    checkNonNegative(p, s.path+".idle_timeout", *s.idleTimeout),
		MaxConnections: checkAtLeast(p, s.path+".max_connections", *s.maxConnections, 0),
		SystemdSocket:  s.checkSystemdSocket(p),
	}
	path := s.path + ".dst"
	switch {
	case s.dst == nil:
		p.add(path, "required")
		return sc
	case !strings.HasPrefix(*s.dst, "/"):
		p.add(path, `%s must start with "/"`, quote(*s.dst))
	case ic.Settings != nil:
		if err := ic.Settings.CheckName(*s.dst); err != nil {
			p.addErr(path, err)
		}
	}
	sc.Dst = *s.dst
	return sc
}

// checkAdminListen checks the admin endpoint's address: "" (off) or IP:port.
func checkAdminListen(p *problems, s string) string {
	if s == "" {
		return ""
	}
	if _, err := netip.ParseAddrPort(s); err != nil {
		p.add("admin.listen", `%s is not an IP:port address (%s); "" turns the endpoint off`, quote(s), addrPortProblem(s, err))
		return ""
	}
	return s
}

// checkSystemdSocket checks a socket name as systemd's
// FileDescriptorName= takes it: 1-255 printable ASCII characters, no ":".
func (s *rawServer) checkSystemdSocket(p *problems) string {
	if s.systemdSocket == nil {
		return ""
	}
	name := *s.systemdSocket
	if name == "" || len(name) > 255 {
		p.add(s.path+".systemd_socket", "%s must be 1 to 255 characters long", quote(name))
		return ""
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x21 || c > 0x7e || c == ':' {
			p.add(s.path+".systemd_socket", `%s may hold printable ASCII characters other than ":" and space only`, quote(name))
			return ""
		}
	}
	return name
}

// checkListen parses listen and checks that no other server listens there.
// Port 0 never conflicts: each such listener gets its own ephemeral port.
// A wildcard address (0.0.0.0, ::) conflicts with every address on its port.
func (s *rawServer) checkListen(p *problems, listens map[uint16][]owner) netip.AddrPort {
	path := s.path + ".listen"
	if s.listen == nil {
		p.add(path, "required")
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(*s.listen)
	if err != nil {
		p.add(path, "%s is not an IP:port address (%s)", quote(*s.listen), addrPortProblem(*s.listen, err))
		return netip.AddrPort{}
	}
	if ap.Port() == 0 {
		return ap
	}
	addr := ap.Addr().Unmap()
	for _, o := range listens[ap.Port()] {
		other := o.addr.Addr().Unmap()
		switch {
		case other == addr:
			p.add(path, "%s is already used by %s", ap, o.path)
			return ap
		case other.IsUnspecified() || addr.IsUnspecified():
			p.add(path, "%s overlaps %s of %s", ap, o.addr, o.path)
			return ap
		}
	}
	listens[ap.Port()] = append(listens[ap.Port()], owner{addr: ap, path: s.path})
	return ap
}

// addrPortProblem says briefly why s is not an IP:port.
func addrPortProblem(s string, err error) string {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "missing port"
	}
	host := strings.TrimSuffix(strings.TrimPrefix(s[:i], "["), "]")
	if _, herr := netip.ParseAddr(host); herr != nil {
		return "the host must be a literal IP address"
	}
	if _, perr := strconv.ParseUint(s[i+1:], 10, 16); perr != nil {
		return "invalid port"
	}
	msg, _, _ := strings.Cut(err.Error(), " parsing ")
	return msg
}

func checkRange(p *problems, path string, n, lo, hi int64) int {
	if n < lo || n > hi {
		p.add(path, "must be between %d and %d, got %d", lo, hi, n)
		return 0
	}
	return int(n)
}

func checkAtLeast(p *problems, path string, n, lo int64) int {
	if n < lo {
		p.add(path, "must be at least %d, got %d", lo, n)
		return 0
	}
	return int(n)
}

func checkNonNegative(p *problems, path string, d time.Duration) time.Duration {
	if d < 0 {
		p.add(path, "negative duration %s", d)
		return 0
	}
	return d
}

func checkPositive(p *problems, path string, d time.Duration) time.Duration {
	if d <= 0 {
		p.add(path, "must be greater than 0, got %s", d)
		return 0
	}
	return d
}
