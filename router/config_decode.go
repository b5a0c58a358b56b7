package router

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// The raw configuration is the file as decoded: a nil pointer is a key that
// was not given (or did not decode), until setDefaults fills it in.
type (
	rawConfig struct {
		workers, pipeSize, maxPipes *int64
		drainTimeout                *time.Duration
		adminListen                 *string
		pprof                       *bool
		access                      *bool
		accessPath                  *string
		routers                     []*rawRouter
	}
	rawRouter struct {
		path        string
		label, kind *string
		interp      *table // the kind's keys, decoded by the kind in validate
		servers     []*rawServer

		bindIdle *time.Duration
		maxNames *int64

		connectTimeout      *time.Duration
		connectAttempts     *int64
		maxWaiters          *int64
		consecutiveFailures *int64
		penalty             *time.Duration
		sendProxy           *string
		balancer, hashKey   *string
		hashBalanceFactor   *float64
	}
	rawServer struct {
		path                                  string
		listen, dst, systemdSocket            *string
		connectTimeout, lifetime, idleTimeout *time.Duration
		maxConnections                        *int64
		handshakeTimeout                      *time.Duration
		sniDefault, proxyProtocol             *string
		proxyProtocolFrom                     []*string
		offload                               *string
		offloadAfter                          *int64
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

	ad := root.table("admin")
	c.drainTimeout = ad.duration("drain_timeout")
	c.adminListen = ad.string("listen")
	c.pprof = ad.bool("pprof")
	ad.done()

	lg := root.table("log")
	c.access = lg.bool("access")
	c.accessPath = lg.string("path")
	lg.done()

	for _, t := range root.tables("routers") {
		c.routers = append(c.routers, decodeRouter(t))
	}
	root.done()
	return c
}

func decodeRouter(t *table) *rawRouter {
	r := &rawRouter{
		path:     t.path,
		label:    t.string("label"),
		bindIdle: t.duration("bind_idle"),
		maxNames: t.int("max_names"),
	}

	// The kind decodes the rest of the table, and reports its unknown
	// keys, once validate knows which kind it is.
	r.interp = t.detachedTable("interpreter")
	r.kind = r.interp.string("kind")

	for _, st := range t.tables("servers") {
		r.servers = append(r.servers, &rawServer{
			path:           st.path,
			listen:         st.string("listen"),
			dst:            st.string("dst"),
			connectTimeout: st.duration("connect_timeout"),
			lifetime:       st.duration("lifetime"),
			idleTimeout:    st.duration("idle_timeout"),
			maxConnections: st.int("max_connections"),
			systemdSocket:  st.string("systemd_socket"),

			handshakeTimeout:  st.duration("handshake_timeout"),
			sniDefault:        st.string("sni_default"),
			proxyProtocol:     st.string("proxy_protocol"),
			proxyProtocolFrom: st.strings("proxy_protocol_from"),
			offload:           st.string("offload"),
			offloadAfter:      st.int("offload_after"),
		})
		st.done()
	}

	ct := t.table("client")
	r.connectTimeout = ct.duration("connect_timeout")
	r.connectAttempts = ct.int("connect_attempts")
	r.maxWaiters = ct.int("max_waiters")
	r.sendProxy = ct.string("send_proxy")
	r.balancer = ct.string("balancer")
	r.hashKey = ct.string("hash_key")
	r.hashBalanceFactor = ct.float("hash_balance_factor")
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
	p        *problems
	path     string
	m        map[string]any // nil for a table that is absent
	used     map[string]bool
	children []*table // sub-tables taken with table, checked by done
	notTable bool     // the key is there, but not a table (reported)
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

// done reports the keys of t and of its sub-tables that nobody took.
func (t *table) done() {
	for _, c := range t.children {
		c.done()
	}
	t.children = nil
	for _, key := range slices.Sorted(maps.Keys(t.m)) {
		if !t.used[key] {
			t.p.add(joinKey(t.path, key), "unknown key")
		}
	}
}

func (t *table) table(key string) *table {
	v, path, ok := t.take(key)
	m, isTable := v.(map[string]any)
	c := newTable(t.p, path, m)
	if ok && !isTable {
		t.p.add(path, "expected a table, got %s", describe(v))
		c.notTable = true
	}
	t.children = append(t.children, c)
	return c
}

// detachedTable is table for a sub-table whose unknown keys its new owner
// reports, by calling done itself, once it has taken the keys it knows.
func (t *table) detachedTable(key string) *table {
	c := t.table(key)
	t.children = t.children[:len(t.children)-1]
	return c
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

// float decodes a number; an integer is taken as one.
func (t *table) float(key string) *float64 {
	v, path, ok := t.take(key)
	if !ok {
		return nil
	}
	switch n := v.(type) {
	case float64:
		return &n
	case int64:
		f := float64(n)
		return &f
	}
	t.p.add(path, "expected a number, got %s", describe(v))
	return nil
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

func (t *table) bool(key string) *bool {
	v, path, ok := t.take(key)
	if !ok {
		return nil
	}
	b, isBool := v.(bool)
	if !isBool {
		t.p.add(path, "expected a boolean (true or false), got %s", describe(v))
		return nil
	}
	return &b
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
	v, path, ok := t.take(key)
	if !ok {
		return nil
	}
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
