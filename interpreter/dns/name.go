package dns

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// The two forms of name this interpreter resolves.
const (
	hostPrefix = "/dns/"    // /dns/<host>/<port>: the A and AAAA records of host
	srvPrefix  = "/dnssrv/" // /dnssrv/<_service._proto.domain>: its SRV records
)

const (
	maxHostLen  = 253 // RFC 1035: 255 octets on the wire are 253 characters in text
	maxLabelLen = 63
)

// target is a parsed name: the host to query, always fully qualified and in
// lower case, and for /dns names the port to connect to.
type target struct {
	srv  bool
	host string
	port uint16 // /dns names only; 0 for /dnssrv
}

// parseName parses a /dns or /dnssrv name. Host names are taken as fully
// qualified: no search domain is ever appended. Errors quote the name and
// say what is wrong with it.
func parseName(name string) (target, error) {
	if rest, ok := strings.CutPrefix(name, hostPrefix); ok {
		host, port, ok := strings.Cut(rest, "/")
		if !ok {
			return target{}, fmt.Errorf("%s has no port: write %s<host>/<port>", strconv.Quote(name), hostPrefix)
		}
		fqdn, err := checkHost(host)
		if err != nil {
			return target{}, fmt.Errorf("%s: %w", strconv.Quote(name), err)
		}
		p, err := parsePort(port)
		if err != nil {
			return target{}, fmt.Errorf("%s: %w", strconv.Quote(name), err)
		}
		return target{host: fqdn, port: p}, nil
	}
	if rest, ok := strings.CutPrefix(name, srvPrefix); ok {
		if strings.Contains(rest, "/") {
			return target{}, fmt.Errorf(`%s has a "/" after the service name: SRV records give the port, write %s<_service._proto.domain>`, strconv.Quote(name), srvPrefix)
		}
		fqdn, err := checkHost(rest)
		if err != nil {
			return target{}, fmt.Errorf("%s: %w", strconv.Quote(name), err)
		}
		return target{srv: true, host: fqdn}, nil
	}
	return target{}, fmt.Errorf("%s is not a name of the dns interpreter: write %s<host>/<port> or %s<_service._proto.domain>",
		strconv.Quote(name), hostPrefix, srvPrefix)
}

// checkHost checks that host is a DNS name made of labels of 1-63 letters,
// digits, "-" and "_", at most 253 characters in all, with or without the
// trailing dot, and returns it lower-cased with the dot.
func checkHost(host string) (string, error) {
	if host == "" {
		return "", fmt.Errorf("missing host name")
	}
	name := strings.TrimSuffix(host, ".")
	if _, err := netip.ParseAddr(name); err == nil {
		return "", fmt.Errorf("%s is an IP address, not a host name (a static interpreter takes literal addresses)", strconv.Quote(host))
	}
	if len(name) > maxHostLen {
		return "", fmt.Errorf("host name is %d characters long, more than %d", len(name), maxHostLen)
	}
	for label := range strings.SplitSeq(name, ".") {
		if err := checkLabel(label); err != nil {
			return "", fmt.Errorf("host name %s: %w", strconv.Quote(host), err)
		}
	}
	return strings.ToLower(name) + ".", nil
}

func checkLabel(label string) error {
	if label == "" {
		return fmt.Errorf(`empty label (a leading dot or two dots in a row)`)
	}
	if len(label) > maxLabelLen {
		return fmt.Errorf("label %s is %d characters long, more than %d", strconv.Quote(label), len(label), maxLabelLen)
	}
	for _, c := range []byte(label) {
		if !isLabelByte(c) {
			return fmt.Errorf(`%s is not allowed: labels take letters, digits, "-" and "_"`, quoteByte(c))
		}
	}
	return nil
}

func isLabelByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// quoteByte quotes c for an error message, a byte of a multi-byte UTF-8
// sequence as its hexadecimal value.
func quoteByte(c byte) string {
	if c < 0x80 {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// parsePort parses a port to connect to: a decimal number in 1-65535.
func parsePort(s string) (uint16, error) {
	if s == "" {
		return 0, fmt.Errorf("missing port")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %s is not a number", strconv.Quote(s))
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %s is out of range (1-65535)", s)
	}
	return uint16(n), nil
}
