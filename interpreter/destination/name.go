package destination

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// namePrefix starts every name this kind resolves.
const namePrefix = "/svc/"

// maxHostLen is the longest DNS name.
const maxHostLen = 253

// parseName returns the authority that name asks the Destination service
// for: "/svc/web.emojivoto.svc.cluster.local:8080" asks for
// "web.emojivoto.svc.cluster.local:8080". The host is a DNS name (letters,
// digits, "-" and "_" in dot-separated labels) or an IP address, IPv6 in
// brackets; the port is 1-65535.
func parseName(name string) (string, error) {
	authority, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return "", fmt.Errorf("%s is not a destination name: write /svc/<host>:<port>, as in /svc/web.emojivoto.svc.cluster.local:8080", strconv.Quote(name))
	}
	if err := checkAuthority(authority); err != nil {
		return "", fmt.Errorf("%s: %v", strconv.Quote(name), err)
	}
	return authority, nil
}

func checkAuthority(s string) error {
	if s == "" {
		return fmt.Errorf("missing <host>:<port> after %s", namePrefix)
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return fmt.Errorf("%s has no port (write %s:<port>)", strconv.Quote(s), s)
	}
	host, port := s[:i], s[i+1:]
	if _, err := parsePort(port); err != nil {
		return err
	}
	if inner, ok := strings.CutPrefix(host, "["); ok {
		inner, ok = strings.CutSuffix(inner, "]")
		if a, err := netip.ParseAddr(inner); !ok || err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("%s is not an IPv6 address in brackets", strconv.Quote(host))
		}
		return nil
	}
	if strings.Contains(host, ":") {
		return fmt.Errorf("%s: an IPv6 address takes brackets, as in [::1]:%s", strconv.Quote(s), port)
	}
	return checkHost(host)
}

// checkHost checks a DNS name or an IPv4 address.
func checkHost(host string) error {
	switch {
	case host == "":
		return fmt.Errorf("missing host before %q", ":")
	case len(host) > maxHostLen:
		return fmt.Errorf("host is %d bytes long, more than a DNS name's %d", len(host), maxHostLen)
	}
	for i, label := range strings.Split(host, ".") {
		if label == "" {
			return fmt.Errorf("host %s has an empty label (number %d)", strconv.Quote(host), i+1)
		}
		for _, c := range label {
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("host %s contains %q: a host is a DNS name (letters, digits, %q and %q) or an IP address",
					strconv.Quote(host), c, "-", "_")
			}
		}
	}
	return nil
}
