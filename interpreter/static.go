package interpreter

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// ParseEndpoint parses "IP:port" or "IP:port*weight", IPv6 addresses in
// brackets ("[::1]:80*2"). The port is 1-65535 and the weight a positive
// finite number, 1 when not given. Errors quote the input and say what is
// wrong with it, e.g.
//
//	bad endpoint "127.0.0.1:80*x": weight "x" is not a number
func ParseEndpoint(s string) (Endpoint, error) {
	e, err := parseEndpoint(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("bad endpoint %q: %w", s, err)
	}
	return e, nil
}

func parseEndpoint(s string) (Endpoint, error) {
	hostport, weight, weighted := s, "", false
	// The weight follows the port, which follows the last colon: neither
	// the port nor the weight contains one, while the address may.
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		if j := strings.IndexByte(s[i:], '*'); j >= 0 {
			hostport, weight, weighted = s[:i+j], s[i+j+1:], true
		}
	}
	host, port, err := splitHostPort(hostport)
	if err != nil {
		return Endpoint{}, err
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return Endpoint{}, fmt.Errorf("%q is not an IP address (static names take literal addresses)", host)
	}
	if addr.Is4() && strings.HasPrefix(hostport, "[") {
		return Endpoint{}, fmt.Errorf("IPv4 address %q must not be in brackets", host)
	}
	p, err := parsePort(port)
	if err != nil {
		return Endpoint{}, err
	}
	e := Endpoint{Addr: netip.AddrPortFrom(addr, p), Weight: 1}
	if weighted {
		if e.Weight, err = parseWeight(weight); err != nil {
			return Endpoint{}, err
		}
	}
	return e, nil
}

// splitHostPort splits "host:port" or "[host]:port". Unlike
// net.SplitHostPort, its errors are written for someone editing a config.
func splitHostPort(s string) (host, port string, err error) {
	if s == "" {
		return "", "", errors.New("missing address")
	}
	if rest, ok := strings.CutPrefix(s, "["); ok {
		end := strings.LastIndexByte(rest, ']')
		if end < 0 {
			return "", "", errors.New(`missing "]" after IPv6 address`)
		}
		host, rest = rest[:end], rest[end+1:]
		if rest == "" {
			return "", "", fmt.Errorf("missing port (write [%s]:port)", host)
		}
		port, ok := strings.CutPrefix(rest, ":")
		if !ok {
			return "", "", fmt.Errorf(`unexpected %q after "]", want ":port"`, rest)
		}
		return host, port, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", fmt.Errorf("missing port (write %s:port)", s)
	}
	host, port = s[:i], s[i+1:]
	if strings.Contains(host, ":") {
		if _, err := netip.ParseAddr(s); err == nil {
			return "", "", fmt.Errorf("missing port (IPv6 addresses take brackets: [%s]:port)", s)
		}
		return "", "", fmt.Errorf("IPv6 address %q must be in brackets, as [%s]:%s", host, host, port)
	}
	if host == "" {
		return "", "", fmt.Errorf("missing IP address before %q", ":"+port)
	}
	return host, port, nil
}

// parsePort parses a TCP port to connect to: 1-65535.
func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("missing port after %q", ":")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %q is not a number", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %s is out of range (1-65535)", s)
	}
	return uint16(n), nil
}

// Static resolves names from configuration: each name has a fixed set of
// endpoints, until a reload gives it another (Reconfigure). The zero value
// knows no names.
type Static struct {
	mu      sync.Mutex
	names   map[string][]Endpoint
	watches map[string]map[*staticWatch]struct{} // by name
}

type staticWatch struct{ sink Sink }

var _ Reconfigurer = (*Static)(nil)

// NewStatic returns an interpreter for the given names. It copies names and
// the slices in it, so the caller may reuse them.
func NewStatic(names map[string][]Endpoint) *Static {
	return &Static{names: cloneNames(names), watches: map[string]map[*staticWatch]struct{}{}}
}

func cloneNames(names map[string][]Endpoint) map[string][]Endpoint {
	out := make(map[string][]Endpoint, len(names))
	for name, eps := range names {
		out[name] = slices.Clone(eps)
	}
	return out
}

// Resolve delivers name's answer to sink before it returns; after that,
// only a Reconfigure that changes it. A name that is not configured is
// NotFound.
func (s *Static) Resolve(name string, sink Sink) (stop func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sink.Update(staticAnswer(s.names, name))
	if s.watches == nil {
		s.watches = map[string]map[*staticWatch]struct{}{}
	}
	w := &staticWatch{sink: sink}
	ws := s.watches[name]
	if ws == nil {
		ws = map[*staticWatch]struct{}{}
		s.watches[name] = ws
	}
	ws[w] = struct{}{}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if ws := s.watches[name]; ws != nil {
			delete(ws, w)
			if len(ws) == 0 {
				delete(s.watches, name)
			}
		}
	}
}

// staticAnswer is name's answer in names: a copy, so that a sink that
// breaks the contract and keeps or edits the slice cannot change what the
// next Resolve delivers.
func staticAnswer(names map[string][]Endpoint, name string) Resolution {
	eps, ok := names[name]
	if !ok {
		return NotFoundAnswer()
	}
	return BoundTo(slices.Clone(eps))
}

// CanTake implements Reconfigurer: any static settings.
func (s *Static) CanTake(st Settings) bool {
	_, ok := st.(*StaticSettings)
	return ok
}

// Reconfigure implements Reconfigurer: the names of st replace the
// interpreter's, and each watch of a name whose endpoints changed (or
// which appeared or went) gets its new answer.
func (s *Static) Reconfigure(st Settings) {
	names := cloneNames(st.(*StaticSettings).Names)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.names
	s.names = names
	for name, ws := range s.watches {
		before, had := old[name]
		after, has := names[name]
		if had == has && slices.Equal(before, after) {
			continue
		}
		for w := range ws {
			w.sink.Update(staticAnswer(names, name))
		}
	}
}

// Close does nothing: a static interpreter runs nothing in the background.
func (s *Static) Close() error { return nil }

// Names returns the configured names, sorted.
func (s *Static) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.names))
}

// StaticKind is kind "static": names and their endpoints listed in the
// configuration, under the names sub-table.
var StaticKind = Kind{Name: "static", Decode: decodeStatic}

// StaticSettings are the settings of kind "static".
type StaticSettings struct {
	Names map[string][]Endpoint `json:"names"`
}

func decodeStatic(t Table) Settings {
	names := t.Table("names")
	if !names.Present() {
		t.Problem("names", "required for kind %q", "static")
		return nil // so that no dst is reported as missing from it too
	}
	st := &StaticSettings{Names: make(map[string][]Endpoint)}
	for _, name := range names.Keys() {
		list := names.Strings(name)
		if !strings.HasPrefix(name, "/") {
			names.Problem(name, `name must start with "/"`)
		}
		eps := make([]Endpoint, 0, len(list))
		at := make(map[netip.AddrPort]int)
		for i, s := range list {
			if s == nil {
				continue
			}
			e, err := ParseEndpoint(*s)
			if err != nil {
				names.ProblemAt(name, i, "%v", err)
				continue
			}
			if j, dup := at[e.Addr]; dup {
				names.ProblemAt(name, i, "%s is already listed at [%d]", e.Addr, j)
				continue
			}
			at[e.Addr] = i
			eps = append(eps, e)
		}
		st.Names[name] = eps
	}
	return st
}

// CheckName reports a name the configuration does not list.
func (st *StaticSettings) CheckName(name string) error {
	if _, ok := st.Names[name]; !ok {
		return fmt.Errorf("%s is not a name of the static interpreter", strconv.Quote(name))
	}
	return nil
}

// New returns the static interpreter.
func (st *StaticSettings) New(Env) (Interpreter, error) { return NewStatic(st.Names), nil }
