package router

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/hashicorp/go-multierror"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Config is a whole configuration file: the runtime shared by every router,
// and the routers themselves.
type Config struct {
	Runtime RuntimeConfig
	Routers []RouterConfig
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
}

// InterpreterConfig chooses the interpreter that resolves destination names.
type InterpreterConfig struct {
	Kind string // "static" is the only kind so far
	// Names maps each name to its endpoints, parsed; kind static only.
	Names map[string][]interpreter.Endpoint
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
}

// ClientConfig is how a router connects to the endpoints of a name.
type ClientConfig struct {
	ConnectTimeout  time.Duration
	ConnectAttempts int
	FailureAccrual  endpoint.Accrual
}

// Defaults for keys a file leaves out. A key that is given keeps its value,
// even when it is zero: lifetime = "0s" means no lifetime limit.
const (
	defaultWorkers             = 0
	defaultPipeSize            = 1 << 20
	defaultMaxPipes            = 256
	defaultServerConnect       = 3 * time.Second
	defaultLifetime            = 0
	defaultIdleTimeout         = 5 * time.Minute
	defaultMaxConnections      = 10000
	defaultClientConnect       = time.Second
	defaultConnectAttempts     = 3
	defaultConsecutiveFailures = 5
	defaultPenalty             = 60 * time.Second
)

// Limits checked by validation.
const (
	maxWorkers         = 1024
	minPipeSize        = 4096
	maxPipeSize        = 64 << 20
	maxMaxPipes        = 65536
	maxConnectAttempts = 100
)

// kindStatic is the only interpreter kind so far; knownKinds lists them all
// for error messages.
const (
	kindStatic = "static"
	knownKinds = kindStatic
)

var labelPattern = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// A ConfigError is one problem in a configuration: the key it concerns, as
// a TOML path with array indexes (routers[0].servers[1].listen), and the
// line of that key, or of the nearest enclosing table when the key is
// missing.
type ConfigError struct {
	File string // set by Load
	Line int    // 0 when unknown
	Path string // empty when the problem has no key; unindexed for a syntax error
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

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

func parse(data []byte, file string) (*Config, error) {
	p := &problems{file: file}
	var tree map[string]any
	if _, err := toml.Decode(string(data), &tree); err != nil {
		p.syntax(err)
		return nil, p.err()
	}
	p.lines = keyLines(string(data))
	raw := decode(tree, p)
	raw.setDefaults()
	c := raw.validate(p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}

// problems collects the problems of one configuration, at most one per
// path: the first one found is the one that explains the others.
type problems struct {
	file  string
	lines map[string]int // path → line, from keyLines
	list  []*ConfigError
	seen  map[string]bool // paths in list
}

func (p *problems) add(path string, format string, args ...any) {
	p.addErr(path, fmt.Errorf(format, args...))
}

func (p *problems) addErr(path string, err error) {
	if p.seen[path] {
		return
	}
	if p.seen == nil {
		p.seen = make(map[string]bool)
	}
	p.seen[path] = true
	p.list = append(p.list, &ConfigError{File: p.file, Line: p.lineOf(path), Path: path, Err: err})
}

// lineOf returns the line of path, or of its nearest ancestor that is in
// the file.
func (p *problems) lineOf(path string) int {
	for ; path != ""; path = parentPath(path) {
		if line, ok := p.lines[path]; ok {
			return line
		}
	}
	return 0
}

// syntax records a TOML syntax error, which carries its own line and the
// last key read (without array indexes).
func (p *problems) syntax(err error) {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		p.list = append(p.list, &ConfigError{File: p.file, Err: err})
		return
	}
	p.list = append(p.list, &ConfigError{
		File: p.file,
		Line: pe.Position.Line,
		Path: pe.LastKey,
		Err:  errors.New(pe.Message),
	})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	slices.SortStableFunc(p.list, func(a, b *ConfigError) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(p.list))
	for i, e := range p.list {
		errs[i] = e
	}
	return &multierror.Error{Errors: errs, ErrorFormat: listFormat}
}

// listFormat prints one problem as itself and several as a count followed
// by one indented line each.
func listFormat(errs []error) string {
	if len(errs) == 1 {
		return errs[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems in configuration:", len(errs))
	for _, err := range errs {
		b.WriteString("\n\t")
		b.WriteString(err.Error())
	}
	return b.String()
}

// The raw configuration is the file as decoded: a nil pointer is a key that
// was not given (or did not decode), until setDefaults fills it in.
type (
	rawConfig struct {
		workers, pipeSize, maxPipes *int64
		routers                     []*rawRouter
	}
	rawRouter struct {
		path        string
		label, kind *string
		names       map[string][]*string // nil when the table is absent; nil entries did not decode
		servers     []*rawServer

		connectTimeout      *time.Duration
		connectAttempts     *int64
		consecutiveFailures *int64
		penalty             *time.Duration
	}
	rawServer struct {
		path                                  string
		listen, dst                           *string
		connectTimeout, lifetime, idleTimeout *time.Duration
		maxConnections                        *int64
	}
)

// decode reads the parsed TOML tree into a rawConfig, reporting every key
// that is unknown or of the wrong type.
func decode(tree map[string]any, p *problems) *rawConfig {
	root := newTable(p, "", tree)
	c := &rawConfig{}

	rt := root.table("runtime")
	c.workers = rt.int("workers")
	c.pipeSize = rt.int("pipe_size")
	c.maxPipes = rt.int("max_pipes")
	rt.done()

	for _, t := range root.tables("routers") {
		c.routers = append(c.routers, decodeRouter(t))
	}
	root.done()
	return c
}

func decodeRouter(t *table) *rawRouter {
	r := &rawRouter{path: t.path, label: t.string("label")}

	it := t.table("interpreter")
	r.kind = it.string("kind")
	if names := it.table("names"); names.m != nil {
		r.names = make(map[string][]*string)
		for _, name := range slices.Sorted(maps.Keys(names.m)) {
			r.names[name] = names.strings(name)
		}
		names.done()
	}
	it.done()

	for _, st := range t.tables("servers") {
		r.servers = append(r.servers, &rawServer{
			path:           st.path,
			listen:         st.string("listen"),
			dst:            st.string("dst"),
			connectTimeout: st.duration("connect_timeout"),
			lifetime:       st.duration("lifetime"),
			idleTimeout:    st.duration("idle_timeout"),
			maxConnections: st.int("max_connections"),
		})
		st.done()
	}

	ct := t.table("client")
	r.connectTimeout = ct.duration("connect_timeout")
	r.connectAttempts = ct.int("connect_attempts")
	fa := ct.table("failure_accrual")
	r.consecutiveFailures = fa.int("consecutive_failures")
	r.penalty = fa.duration("penalty")
	fa.done()
	ct.done()

	t.done()
	return r
}

// A table is one TOML table being decoded. Each accessor takes a key out of
// it; done reports the keys nobody took as unknown. Keys are matched
// exactly: "Listen" is not "listen".
type table struct {
	p    *problems
	path string
	m    map[string]any // nil for a table that is absent
	used map[string]bool
}

func newTable(p *problems, path string, m map[string]any) *table {
	return &table{p: p, path: path, m: m, used: make(map[string]bool)}
}

// take returns the value of key and its path, marking the key as known.
func (t *table) take(key string) (any, string, bool) {
	t.used[key] = true
	v, ok := t.m[key]
	return v, joinKey(t.path, key), ok
}

func (t *table) done() {
	for _, key := range slices.Sorted(maps.Keys(t.m)) {
		if !t.used[key] {
			t.p.add(joinKey(t.path, key), "unknown key")
		}
	}
}

func (t *table) table(key string) *table {
	v, path, ok := t.take(key)
	m, isTable := v.(map[string]any)
	if ok && !isTable {
		t.p.add(path, "expected a table, got %s", describe(v))
	}
	return newTable(t.p, path, m)
}

// tables returns the array of tables at key, given either as [[key]]
// sections or as an array of inline tables.
func (t *table) tables(key string) []*table {
	v, path, ok := t.take(key)
	var out []*table
	switch v := v.(type) {
	case []map[string]any:
		for i, m := range v {
			out = append(out, newTable(t.p, indexPath(path, i), m))
		}
	case []any:
		for i, e := range v {
			if m, ok := e.(map[string]any); ok {
				out = append(out, newTable(t.p, indexPath(path, i), m))
			} else {
				t.p.add(indexPath(path, i), "expected a table, got %s", describe(e))
			}
		}
	default:
		if ok {
			t.p.add(path, "expected an array of tables, got %s", describe(v))
		}
	}
	return out
}

func (t *table) int(key string) *int64 {
	v, path, ok := t.take(key)
	if !ok {
		return nil
	}
	n, isInt := v.(int64)
	if !isInt {
		t.p.add(path, "expected an integer, got %s", describe(v))
		return nil
	}
	return &n
}

func (t *table) string(key string) *string {
	v, path, ok := t.take(key)
	if !ok {
		return nil
	}
	s, isString := v.(string)
	if !isString {
		t.p.add(path, "expected a string, got %s", describe(v))
		return nil
	}
	return &s
}

// duration decodes a Go duration string ("500ms", "5m"). Bare numbers are
// refused: nobody can tell whether 5 means seconds or nanoseconds.
func (t *table) duration(key string) *time.Duration {
	v, path, ok := t.take(key)
	if !ok {
		return nil
	}
	s, isString := v.(string)
	if !isString {
		t.p.add(path, `expected a duration string such as "1s" or "500ms", got %s`, describe(v))
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.p.add(path, "bad duration %s: %v", quote(s), err)
		return nil
	}
	return &d
}

// strings decodes an array of strings, with nil for each element that is
// not one, so that the others keep their indexes. The result is never nil
// for a key that is present: a name with bad entries is still a name.
func (t *table) strings(key string) []*string {
	v, path, _ := t.take(key)
	arr, isArray := v.([]any)
	if !isArray {
		t.p.add(path, "expected an array of strings, got %s", describe(v))
		return []*string{}
	}
	out := make([]*string, len(arr))
	for i, e := range arr {
		if s, ok := e.(string); ok {
			out[i] = &s
		} else {
			t.p.add(indexPath(path, i), "expected a string, got %s", describe(e))
		}
	}
	return out
}

// describe names the TOML type of a decoded value, with the value when it
// is short, for type errors.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return "string " + quote(v)
	case int64:
		return "integer " + strconv.FormatInt(v, 10)
	case float64:
		return "float " + strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case map[string]any:
		return "a table"
	case []map[string]any, []any:
		return "an array"
	case time.Time:
		return "datetime " + v.Format(time.RFC3339Nano)
	default:
		return fmt.Sprintf("%T", v)
	}
}

// quote quotes s for an error message, shortened if it is long.
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !isRuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

func (c *rawConfig) setDefaults() {
	orDefault(&c.workers, defaultWorkers)
	orDefault(&c.pipeSize, defaultPipeSize)
	orDefault(&c.maxPipes, defaultMaxPipes)
	for _, r := range c.routers {
		for _, s := range r.servers {
			orDefault(&s.connectTimeout, defaultServerConnect)
			orDefault(&s.lifetime, defaultLifetime)
			orDefault(&s.idleTimeout, defaultIdleTimeout)
			orDefault(&s.maxConnections, defaultMaxConnections)
		}
		orDefault(&r.connectTimeout, defaultClientConnect)
		orDefault(&r.connectAttempts, defaultConnectAttempts)
		orDefault(&r.consecutiveFailures, defaultConsecutiveFailures)
		orDefault(&r.penalty, defaultPenalty)
	}
}

func orDefault[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}

// validate checks a defaulted rawConfig and builds the Config from it. The
// Config is meaningful only if validate added no problems.
func (c *rawConfig) validate(p *problems) *Config {
	cfg := &Config{Runtime: RuntimeConfig{
		Workers:  checkRange(p, "runtime.workers", *c.workers, 0, maxWorkers),
		PipeSize: checkRange(p, "runtime.pipe_size", *c.pipeSize, minPipeSize, maxPipeSize),
		MaxPipes: checkRange(p, "runtime.max_pipes", *c.maxPipes, 1, maxMaxPipes),
	}}
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
				FailureAccrual: endpoint.Accrual{
					ConsecutiveFailures: checkAtLeast(p, r.path+".client.failure_accrual.consecutive_failures", *r.consecutiveFailures, 0),
					Penalty:             checkNonNegative(p, r.path+".client.failure_accrual.penalty", *r.penalty),
				},
			},
		}
		if len(r.servers) == 0 {
			p.add(r.path+".servers", "at least one [[routers.servers]] table is required")
		}
		for _, s := range r.servers {
			rc.Servers = append(rc.Servers, s.validate(p, rc.Interpreter, r.names != nil, listens))
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

func (r *rawRouter) checkInterpreter(p *problems) InterpreterConfig {
	path := r.path + ".interpreter"
	switch {
	case r.kind == nil:
		p.add(path+".kind", "required (known: %s)", knownKinds)
		return InterpreterConfig{}
	case *r.kind != kindStatic:
		p.add(path+".kind", "unknown interpreter kind %s (known: %s)", quote(*r.kind), knownKinds)
		if r.names != nil {
			p.add(path+".names", "only valid for kind %q", kindStatic)
		}
		return InterpreterConfig{Kind: *r.kind}
	case r.names == nil:
		p.add(path+".names", "required for kind %q", kindStatic)
		return InterpreterConfig{Kind: *r.kind}
	}
	ic := InterpreterConfig{Kind: *r.kind, Names: make(map[string][]interpreter.Endpoint, len(r.names))}
	for _, name := range slices.Sorted(maps.Keys(r.names)) {
		namePath := joinKey(path+".names", name)
		if !strings.HasPrefix(name, "/") {
			p.add(namePath, `name must start with "/"`)
		}
		eps := make([]interpreter.Endpoint, 0, len(r.names[name]))
		at := make(map[netip.AddrPort]int)
		for i, s := range r.names[name] {
			if s == nil {
				continue
			}
			e, err := interpreter.ParseEndpoint(*s)
			if err != nil {
				p.addErr(indexPath(namePath, i), err)
				continue
			}
			if j, dup := at[e.Addr]; dup {
				p.add(indexPath(namePath, i), "%s is already listed at [%d]", e.Addr, j)
				continue
			}
			at[e.Addr] = i
			eps = append(eps, e)
		}
		ic.Names[name] = eps
	}
	return ic
}

// owner is a server that listens on an address, for conflict messages.
type owner struct {
	addr netip.AddrPort
	path string
}

// validate checks one server of a router whose interpreter is ic.
// hasNames is false when a static interpreter has no names table at all,
// which is reported once there rather than once per dst.
func (s *rawServer) validate(p *problems, ic InterpreterConfig, hasNames bool, listens map[uint16][]owner) ServerConfig {
	sc := ServerConfig{
		Listen:         s.checkListen(p, listens),
		ConnectTimeout: checkPositive(p, s.path+".connect_timeout", *s.connectTimeout),
		Lifetime:       checkNonNegative(p, s.path+".lifetime", *s.lifetime),
		IdleTimeout:    checkNonNegative(p, s.path+".idle_timeout", *s.idleTimeout),
		MaxConnections: checkAtLeast(p, s.path+".max_connections", *s.maxConnections, 1),
	}
	path := s.path + ".dst"
	switch {
	case s.dst == nil:
		p.add(path, "required")
		return sc
	case !strings.HasPrefix(*s.dst, "/"):
		p.add(path, `%s must start with "/"`, quote(*s.dst))
	case ic.Kind == kindStatic && hasNames && ic.Names[*s.dst] == nil:
		p.add(path, "%s is not a name of the static interpreter", quote(*s.dst))
	}
	sc.Dst = *s.dst
	return sc
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

// joinKey appends key to a TOML path, quoted unless it is a bare key.
func joinKey(path, key string) string {
	if !isBareKey(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func indexPath(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !isBareByte(k[i]) {
			return false
		}
	}
	return true
}

func isBareByte(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// parentPath drops the last key or index of a path made by joinKey and
// indexPath.
func parentPath(path string) string {
	cut, quoted := 0, false
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && (c == '.' || c == '['):
			cut = i
		}
	}
	return path[:cut]
}

// keyLines maps the path of every key, table and array element in a TOML
// document to the line it starts on. BurntSushi/toml keeps positions only
// by unindexed key, so in an array of tables it would point every element's
// key at the last element's line; this scan counts the elements instead.
//
// src must be valid TOML (it has already been parsed); on anything else the
// scan still ends, with some lines missing or wrong.
func keyLines(src string) map[string]int {
	s := &scanner{src: src, lines: make(map[string]int), arrays: make(map[string]int)}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			s.newlines = append(s.newlines, i)
		}
	}
	s.pos = len(src) - len(strings.TrimPrefix(src, "\ufeff"))
	s.run()
	return s.lines
}

type scanner struct {
	src      string
	pos      int
	newlines []int // offsets of '\n'
	lines    map[string]int
	arrays   map[string]int // array of tables → index of its last element
	table    string         // path of the current [table]
}

func (s *scanner) eof() bool { return s.pos >= len(s.src) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.pos]
}

func (s *scanner) mark(path string, at int) {
	if _, ok := s.lines[path]; !ok {
		s.lines[path] = sort.SearchInts(s.newlines, at) + 1
	}
}

func (s *scanner) run() {
	for {
		s.skipBlank()
		if s.eof() {
			return
		}
		if s.peek() == '[' {
			s.header()
		} else {
			s.keyValue(s.table)
		}
		s.skipLine()
	}
}

// header reads [table] or [[array.of.tables]]; every key in it but the
// last of an array header names the latest element of its array, if it is
// an array.
func (s *scanner) header() {
	at := s.pos
	s.pos++
	array := s.peek() == '['
	if array {
		s.pos++
	}
	keys := s.keys()
	path := ""
	for i, k := range keys {
		path = joinKey(path, k)
		n, isArray := s.arrays[path]
		if array && i == len(keys)-1 {
			if isArray {
				n++
			}
			s.arrays[path] = n
			s.mark(path, at)
			isArray = true
		}
		if isArray {
			path = indexPath(path, n)
		}
		s.mark(path, at)
	}
	s.table = path
}

func (s *scanner) keyValue(table string) {
	at := s.pos
	path := table
	for _, k := range s.keys() {
		path = joinKey(path, k)
		s.mark(path, at)
	}
	s.skipSpace()
	if s.peek() == '=' {
		s.pos++
	}
	s.skipSpace()
	s.value(path)
}

// keys reads a dotted key.
func (s *scanner) keys() []string {
	var keys []string
	for {
		s.skipSpace()
		keys = append(keys, s.simpleKey())
		s.skipSpace()
		if s.peek() != '.' {
			return keys
		}
		s.pos++
	}
}

func (s *scanner) simpleKey() string {
	start := s.pos
	switch s.peek() {
	case '"':
		s.skipBasic()
		return unescapeBasic(strings.TrimSuffix(s.src[start+1:s.pos], `"`))
	case '\'':
		s.skipLiteral()
		return strings.Trim(s.src[start:s.pos], "'")
	}
	for !s.eof() && isBareByte(s.peek()) {
		s.pos++
	}
	return s.src[start:s.pos]
}

// unescapeBasic decodes the escapes of a TOML basic string (without its
// quotes). Unlike strconv.Unquote, \xHH is a code point, and \e is escape.
func unescapeBasic(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case 'x', 'u', 'U':
			digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			if i+digits >= len(s) {
				b.WriteByte(c)
				break
			}
			n, err := strconv.ParseUint(s[i+1:i+1+digits], 16, 32)
			if err != nil {
				b.WriteByte(c)
				break
			}
			b.WriteRune(rune(n))
			i += digits
		default: // '"' and '\\'
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (s *scanner) value(path string) {
	rest := s.src[s.pos:]
	switch {
	case strings.HasPrefix(rest, `"""`):
		s.skipMultiline(`"""`)
	case strings.HasPrefix(rest, `'''`):
		s.skipMultiline(`'''`)
	case s.peek() == '"':
		s.skipBasic()
	case s.peek() == '\'':
		s.skipLiteral()
	case s.peek() == '[':
		s.array(path)
	case s.peek() == '{':
		s.inlineTable(path)
	default:
		for !s.eof() && !strings.ContainsRune(",]}#\n", rune(s.peek())) {
			s.pos++
		}
	}
}

func (s *scanner) array(path string) {
	s.pos++
	for i := 0; ; {
		s.skipBlank()
		switch {
		case s.eof():
			return
		case s.peek() == ']':
			s.pos++
			return
		case s.peek() == ',':
			s.pos++
			continue
		}
		at := s.pos
		elem := indexPath(path, i)
		s.mark(elem, at)
		s.value(elem)
		i++
		if s.pos == at {
			s.pos++
		}
	}
}

func (s *scanner) inlineTable(path string) {
	s.pos++
	for {
		s.skipBlank()
		switch {
		case s.eof():
			return
		case s.peek() == '}':
			s.pos++
			return
		case s.peek() == ',':
			s.pos++
			continue
		}
		at := s.pos
		s.keyValue(path)
		if s.pos == at {
			s.pos++
		}
	}
}

func (s *scanner) skipBasic() {
	for s.pos++; !s.eof(); {
		c := s.src[s.pos]
		s.pos++
		if c == '\\' {
			s.pos = min(s.pos+1, len(s.src))
		} else if c == '"' || c == '\n' {
			return
		}
	}
}

func (s *scanner) skipLiteral() {
	if i := strings.IndexAny(s.src[s.pos+1:], "'\n"); i >= 0 {
		s.pos += i + 2
	} else {
		s.pos = len(s.src)
	}
}

// skipMultiline skips a multi-line string delimited by delim, three double
// or three single quotes; up to two more quotes before the closing delim
// belong to the string.
func (s *scanner) skipMultiline(delim string) {
	for s.pos += len(delim); !s.eof(); {
		switch {
		case delim[0] == '"' && s.peek() == '\\':
			s.pos = min(s.pos+2, len(s.src))
		case strings.HasPrefix(s.src[s.pos:], delim):
			s.pos += len(delim)
			for extra := 0; extra < 2 && s.peek() == delim[0]; extra++ {
				s.pos++
			}
			return
		default:
			s.pos++
		}
	}
}

func (s *scanner) skipSpace() {
	for s.peek() == ' ' || s.peek() == '\t' {
		s.pos++
	}
}

// skipBlank skips whitespace, newlines and comments.
func (s *scanner) skipBlank() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.pos++
		case '#':
			s.skipLine()
		default:
			return
		}
	}
}

func (s *scanner) skipLine() {
	if i := strings.IndexByte(s.src[s.pos:], '\n'); i >= 0 {
		s.pos += i + 1
	} else {
		s.pos = len(s.src)
	}
}
