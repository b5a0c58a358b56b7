package file

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// usage is what a line should look like, for error messages.
const usage = `want "host port" or "host port * weight"`

// maxQuoted bounds how much of a bad field an error message quotes, so
// that a garbage file cannot make a megabyte-long log line.
const maxQuoted = 64

// parseFile parses the contents of one service file in the format of
// namerd's io.l5d.fs namer: one endpoint per line, as "host port" or
// "host port * weight", fields separated by white space. "#" starts a
// comment that runs to the end of the line; blank lines are ignored. host
// is an IP literal (IPv6 without brackets), port 1-65535, weight a
// positive finite number, 1 when not given. An address may be listed once.
//
// The endpoints come in the order of the file; an empty or all-comment
// file is an empty set. Errors begin with the line they are about:
// "line 3: ...".
func parseFile(data []byte) ([]interpreter.Endpoint, error) {
	var eps []interpreter.Endpoint
	seen := make(map[netip.AddrPort]int)
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(string(line))
		if len(fields) == 0 {
			continue
		}
		e, err := parseLine(fields)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if at, dup := seen[e.Addr]; dup {
			return nil, fmt.Errorf("line %d: %s is already listed on line %d", n, e.Addr, at)
		}
		seen[e.Addr] = n
		eps = append(eps, e)
	}
	return eps, nil
}

// parseLine parses the fields of one line that is not blank.
func parseLine(f []string) (interpreter.Endpoint, error) {
	switch {
	case len(f) == 1:
		if _, err := netip.ParseAddrPort(f[0]); err == nil {
			_, err = parseHost(f[0]) // says to split the port off
			return interpreter.Endpoint{}, err
		}
		return interpreter.Endpoint{}, fmt.Errorf("missing port after %s (%s)", quote(f[0]), usage)
	case len(f) == 3 && f[2] == "*":
		return interpreter.Endpoint{}, errors.New(`missing weight after "*"`)
	case len(f) >= 3 && strings.HasPrefix(f[2], "*") && f[2] != "*":
		return interpreter.Endpoint{}, fmt.Errorf(`%s: separate "*" from the weight with a space (%s)`, quote(f[2]), usage)
	case len(f) == 3, len(f) == 4 && f[2] != "*":
		return interpreter.Endpoint{}, fmt.Errorf("unexpected %s after the port (%s)", quote(f[2]), usage)
	case len(f) > 4:
		return interpreter.Endpoint{}, fmt.Errorf("unexpected %s after the weight (%s)", quote(f[4]), usage)
	}
	addr, err := parseHost(f[0])
	if err != nil {
		return interpreter.Endpoint{}, err
	}
	port, err := parsePort(f[1])
	if err != nil {
		return interpreter.Endpoint{}, err
	}
	e := interpreter.Endpoint{Addr: netip.AddrPortFrom(addr, port), Weight: 1}
	if len(f) == 4 {
		if e.Weight, err = parseWeight(f[3]); err != nil {
			return interpreter.Endpoint{}, err
		}
	}
	return e, nil
}

// parseHost parses an IP literal. Host names are refused rather than
// resolved: resolving would put DNS on the file's path and hide its
// failures.
func parseHost(s string) (netip.Addr, error) {
	addr, err := netip.ParseAddr(s)
	if err == nil {
		return addr, nil
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok = strings.CutSuffix(inner, "]"); ok {
			if _, err := netip.ParseAddr(inner); err == nil {
				return netip.Addr{}, fmt.Errorf("write the IPv6 address %s without brackets", quote(inner))
			}
		}
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.Addr{}, fmt.Errorf("%s includes a port: write the address and the port as two fields, %q",
			quote(s), ap.Addr().String()+" "+strconv.Itoa(int(ap.Port())))
	}
	return netip.Addr{}, fmt.Errorf("%s is not an IP address (host names are not resolved)", quote(s))
}

// parsePort parses a TCP port to connect to: decimal digits, 1-65535.
func parsePort(s string) (uint16, error) {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("port %s is not a number", quote(s))
		}
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %s is out of range (1-65535)", quote(s))
	}
	return uint16(n), nil
}

// parseWeight parses a weight: a positive finite number.
func parseWeight(s string) (float64, error) {
	w, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && w != 0:
		return 0, fmt.Errorf("weight %s is out of range", quote(s))
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("weight %s is not a number", quote(s))
	case math.IsNaN(w) || math.IsInf(w, 0):
		return 0, fmt.Errorf("weight %s is not a finite number", quote(s))
	case w <= 0:
		// Also catches values too small to represent, which parse as 0.
		return 0, fmt.Errorf("weight %s must be greater than 0", quote(s))
	}
	return w, nil
}

// quote quotes s for an error message, cut to maxQuoted bytes.
func quote(s string) string {
	if len(s) > maxQuoted {
		return strconv.Quote(s[:maxQuoted]) + "..."
	}
	return strconv.Quote(s)
}
