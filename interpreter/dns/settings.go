package dns

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Kind is kind "dns": names /dns/<host>/<port> and /dnssrv/<service>
// resolved by querying DNS servers, and re-resolved as their TTLs run out.
var Kind = interpreter.Kind{Name: "dns", Decode: decode}

// Defaults of the keys.
const (
	defaultTimeout    = 2 * time.Second
	defaultBackoffMin = 100 * time.Millisecond
	defaultBackoffMax = 10 * time.Second
	defaultTTLMin     = time.Second
	defaultTTLMax     = 5 * time.Minute
)

// Settings are the settings of kind "dns", defaulted and validated.
type Settings struct {
	// Server is the DNS server asked, a literal "IP:port"; empty: the
	// nameservers of /etc/resolv.conf, read by New, tried in order.
	Server string `json:"server,omitempty"`
	// Timeout bounds one query to one server.
	Timeout time.Duration `json:"timeout"`
	// BackoffMin and BackoffMax bound the jittered delay before a failed
	// resolution is retried.
	BackoffMin time.Duration `json:"backoff_min"`
	BackoffMax time.Duration `json:"backoff_max"`
	// TTLMin and TTLMax clamp the delay before an answer is asked again,
	// which is otherwise the smallest TTL of the records it used.
	TTLMin time.Duration `json:"ttl_min"`
	TTLMax time.Duration `json:"ttl_max"`
}

// decode reads the keys of kind "dns". It reads no file: /etc/resolv.conf
// is New's business, so that checking a configuration stays pure.
func decode(t interpreter.Table) interpreter.Settings {
	server := t.String("server")
	st := &Settings{
		Timeout:    interpreter.Or(t.Duration("timeout"), defaultTimeout),
		BackoffMin: interpreter.Or(t.Duration("backoff_min"), defaultBackoffMin),
		BackoffMax: interpreter.Or(t.Duration("backoff_max"), defaultBackoffMax),
		TTLMin:     interpreter.Or(t.Duration("ttl_min"), defaultTTLMin),
		TTLMax:     interpreter.Or(t.Duration("ttl_max"), defaultTTLMax),
	}
	if server != nil {
		if ap, err := parseServer(*server); err != nil {
			t.Problem("server", "%v", err)
		} else {
			st.Server = ap.String()
		}
	}
	interpreter.CheckPositive(t, "timeout", st.Timeout)
	interpreter.CheckBackoff(t, st.BackoffMin, st.BackoffMax)
	interpreter.CheckPositive(t, "ttl_min", st.TTLMin)
	interpreter.CheckPositive(t, "ttl_max", st.TTLMax)
	if st.TTLMin > 0 && st.TTLMax > 0 && st.TTLMin > st.TTLMax {
		t.Problem("ttl_max", "must be at least ttl_min (%s), got %s", st.TTLMin, st.TTLMax)
	}
	return st
}

// parseServer parses the server key: a literal IP address and a port,
// IPv6 in brackets.
func parseServer(s string) (netip.AddrPort, error) {
	if s == "" {
		return netip.AddrPort{}, fmt.Errorf(`must not be empty (leave server out to use the nameservers of %s)`, resolvConfPath)
	}
	ap, err := netip.ParseAddrPort(s)
	if err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("%s: port 0 is out of range (1-65535)", strconv.Quote(s))
		}
		return ap, nil
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.AddrPort{}, fmt.Errorf("%s has no port: write %s", strconv.Quote(s), netip.AddrPortFrom(a, 53))
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf(`%s is not "IP:port" (IPv6 in brackets: "[::1]:53")`, strconv.Quote(s))
	}
	a, err := netip.ParseAddr(host)
	switch {
	case err != nil:
		return netip.AddrPort{}, fmt.Errorf("%s is not an IP address: server takes a literal address", strconv.Quote(host))
	case a.Is4() && strings.HasPrefix(s, "["):
		return netip.AddrPort{}, fmt.Errorf("IPv4 address %s must not be in brackets", strconv.Quote(host))
	}
	if _, err := parsePort(port); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s: %w", strconv.Quote(s), err)
	}
	return netip.AddrPort{}, fmt.Errorf(`%s is not "IP:port"`, strconv.Quote(s))
}

// CheckName reports a name that is neither a valid /dns nor /dnssrv name.
func (st *Settings) CheckName(name string) error {
	_, err := parseName(name)
	return err
}

// New starts the interpreter. Without a server key it reads the
// nameservers of /etc/resolv.conf, and fails if there are none.
func (st *Settings) New(env interpreter.Env) (interpreter.Interpreter, error) {
	servers := []string{st.Server}
	if st.Server == "" {
		var err error
		if servers, err = systemServers(resolvConfPath, env.Log); err != nil {
			return nil, err
		}
	}
	return newResolver(st, servers, env), nil
}
