package router

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/interpreter"
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

	maxHashBalanceFactor = 100
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
				SendProxy:         checkOneOf(p, r.path+".client.send_proxy", *r.sendProxy, "", "v1", "v2"),
				Balancer:          checkOneOf(p, r.path+".client.balancer", *r.balancer, "p2c", "hash"),
				HashKey:           checkOneOf(p, r.path+".client.hash_key", *r.hashKey, "source_ip", "sni"),
				HashBalanceFactor: *r.hashBalanceFactor,
			},
			BindIdle: checkPositive(p, r.path+".bind_idle", *r.bindIdle),
			MaxNames: checkRange(p, r.path+".max_names", *r.maxNames, 1, maxMaxNames),
		}
		if len(r.servers) == 0 {
			p.add(r.path+".servers", "at least one [[routers.servers]] table is required")
		}
		if f := rc.Client.HashBalanceFactor; !(f >= 1) || f > maxHashBalanceFactor {
			p.add(r.path+".client.hash_balance_factor", "must be 1-%d (a multiple of the mean load no endpoint may pass), got %v",
				maxHashBalanceFactor, f)
		}
		for _, s := range r.servers {
			sc := s.validate(p, rc.Interpreter, listens)
			if rc.Client.Balancer == "hash" && rc.Client.HashKey == "sni" && sc.Dst != "" && !sc.SNI() {
				p.add(s.path+".dst", `has no {sni}, which client.hash_key = "sni" needs`)
			}
			rc.Servers = append(rc.Servers, sc)
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
	sc.HandshakeTimeout = checkPositive(p, s.path+".handshake_timeout", *s.handshakeTimeout)
	s.checkProxyProtocol(p, &sc)
	sc.Offload = checkOneOf(p, s.path+".offload", *s.offload, "", OffloadSockmap)
	sc.OffloadAfter = checkRange(p, s.path+".offload_after", *s.offloadAfter, 0, maxOffloadAfter)
	if s.dst == nil {
		p.add(s.path+".dst", "required")
		return sc
	}
	sc.Dst = *s.dst
	if sc.SNI() {
		checkSNIDst(p, s.path+".dst", sc.Dst, ic)
	} else {
		checkDst(p, s.path+".dst", sc.Dst, ic)
	}
	if *s.sniDefault != "" {
		if !sc.SNI() {
			p.add(s.path+".sni_default", "is where connections without a server name go: it needs a dst with {sni}")
		} else {
			checkDst(p, s.path+".sni_default", *s.sniDefault, ic)
		}
		sc.SNIDefault = *s.sniDefault
	}
	return sc
}

// checkDst checks a destination name, for the interpreter ic.
func checkDst(p *problems, path, dst string, ic InterpreterConfig) {
	switch {
	case !strings.HasPrefix(dst, "/"):
		p.add(path, `%s must start with "/"`, quote(dst))
	case ic.Settings != nil:
		if err := ic.Settings.CheckName(dst); err != nil {
			p.addErr(path, err)
		}
	}
}

// checkSNIDst checks a dst with {sni}: once, and, as a name with a server
// name in its place, for the interpreter ic; for static names, that some
// configured name fits it.
func checkSNIDst(p *problems, path, dst string, ic InterpreterConfig) {
	if strings.Count(dst, sniPlaceholder) > 1 {
		p.add(path, "%s has {sni} more than once", quote(dst))
		return
	}
	st, ok := ic.Settings.(*interpreter.StaticSettings)
	if !ok {
		checkDst(p, path, strings.Replace(dst, sniPlaceholder, "example.com", 1), ic)
		return
	}
	before, after, _ := strings.Cut(dst, sniPlaceholder)
	for name := range st.Names {
		if len(name) > len(before)+len(after) && strings.HasPrefix(name, before) && strings.HasSuffix(name, after) {
			return
		}
	}
	p.add(path, "no static name fits %s (a name with a server name in place of {sni})", quote(dst))
}

// checkProxyProtocol checks proxy_protocol and the peers allowed to send
// its header, which must be given with it: whoever may send the header
// may say they are anyone.
func (s *rawServer) checkProxyProtocol(p *problems, sc *ServerConfig) {
	sc.ProxyProtocol = checkOneOf(p, s.path+".proxy_protocol", *s.proxyProtocol, "", "v1", "v2", "any")
	path := s.path + ".proxy_protocol_from"
	switch {
	case *s.proxyProtocol == "" && s.proxyProtocolFrom != nil:
		p.add(path, "lists who may send a PROXY header: it needs proxy_protocol")
		return
	case *s.proxyProtocol != "" && len(s.proxyProtocolFrom) == 0:
		p.add(path, `required with proxy_protocol: the addresses of the balancers that send the header, `+
			`as CIDRs (["10.0.0.0/8"]); ["0.0.0.0/0", "::/0"] trusts everyone to say who they are`)
		return
	}
	for i, v := range s.proxyProtocolFrom {
		if v == nil {
			continue // reported by the decoder
		}
		pfx, err := parsePrefix(*v)
		if err != nil {
			p.add(indexPath(path, i), "%s is not a CIDR or an IP address: %v", quote(*v), err)
			continue
		}
		sc.ProxyProtocolFrom = append(sc.ProxyProtocolFrom, pfx)
	}
}

// parsePrefix parses "10.0.0.0/8", or an address alone as its own prefix.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if pfx != pfx.Masked() {
		return netip.Prefix{}, fmt.Errorf("has host bits set (the network is %s)", pfx.Masked())
	}
	return pfx, nil
}

// checkOneOf checks that v is one of the values allowed.
func checkOneOf(p *problems, path, v string, allowed ...string) string {
	if slices.Contains(allowed, v) {
		return v
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	p.add(path, "%s is not one of %s", quote(v), strings.Join(quoted, ", "))
	return v
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
