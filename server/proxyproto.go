package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"net/netip"
	"strconv"
)

// The PROXY protocol (HAProxy's doc/proxy-protocol.txt, versions 1 and 2):
// a proxy in front of Switchyard sends the client's addresses in a header
// before the client's first byte, and Switchyard may send one upstream in
// turn. ParseProxy reads a header from the bytes a loop peeked; AppendProxy
// writes one. Neither keeps state nor allocates.

// ProxyVersion is a version of the PROXY protocol.
type ProxyVersion uint8

const (
	ProxyV1 ProxyVersion = 1 // the text line: "PROXY TCP4 ...\r\n"
	ProxyV2 ProxyVersion = 2 // the binary header
)

func (v ProxyVersion) String() string {
	switch v {
	case ProxyV1:
		return "v1"
	case ProxyV2:
		return "v2"
	}
	return "unknown"
}

// ProxyAllow is the set of PROXY versions a listener accepts.
type ProxyAllow uint8

const (
	ProxyAllowV1  ProxyAllow = 1 << iota // the text line
	ProxyAllowV2                         // the binary header
	ProxyAllowAny = ProxyAllowV1 | ProxyAllowV2
)

// ProxyHeaderMax bounds a header: ParseProxy calls a longer one malformed,
// so a peek of ProxyHeaderMax bytes always settles the matter. A v1 line
// is at most 107 bytes; a v2 header may declare up to 16+65535, but its
// addresses take at most 216 and the TLVs senders add (ALPN, authority,
// unique ID, TLS details) a few hundred more. A sender that adds the
// client's whole certificate (PP2_SUBTYPE_SSL_CLIENT_CERT) may exceed it.
const ProxyHeaderMax = 4096

const (
	proxyV1Max       = 107 // "PROXY UNKNOWN ffff:...:ffff ffff:...:ffff 65535 65535\r\n"
	proxyV2Sig       = "\r\n\r\n\x00\r\nQUIT\n"
	proxyV2Fixed     = 16 // signature, version and command, family, length
	proxyV2TypeCRC32 = 0x03
)

var (
	// ErrProxyIncomplete: the bytes are a valid beginning of a header;
	// call again once more have arrived.
	ErrProxyIncomplete = errors.New("proxy protocol: incomplete header")
	// ErrNotProxy: the bytes do not begin a header of a version allowed.
	// The spec forbids guessing: a listener that expects a header drops
	// the connection rather than serve it as the client's own bytes.
	ErrNotProxy = errors.New("proxy protocol: no PROXY header")
	// ErrProxyMalformed is wrapped by the errors of a header that began
	// well and then broke the spec; the wrapper says how.
	ErrProxyMalformed = errors.New("proxy protocol: malformed header")
)

// proxyMalformedError is ErrProxyMalformed saying what is wrong. Each is
// made once, so that refusing a header does not allocate either.
type proxyMalformedError struct{ msg string }

func (e *proxyMalformedError) Error() string { return e.msg }
func (e *proxyMalformedError) Unwrap() error { return ErrProxyMalformed }

func proxyMalformed(what string) error {
	return &proxyMalformedError{"proxy protocol: malformed header: " + what}
}

var (
	errV1TooLong  = proxyMalformed("v1: no CRLF within 107 bytes")
	errV1Protocol = proxyMalformed("v1: protocol not TCP4, TCP6 or UNKNOWN")
	errV1Src      = proxyMalformed("v1: bad source address")
	errV1Dst      = proxyMalformed("v1: bad destination address")
	errV1SrcPort  = proxyMalformed("v1: bad source port")
	errV1DstPort  = proxyMalformed("v1: bad destination port")
	errV1CR       = proxyMalformed("v1: CR not followed by LF")
	errV2Version  = proxyMalformed("v2: version not 2")
	errV2Command  = proxyMalformed("v2: command not LOCAL or PROXY")
	errV2Family   = proxyMalformed("v2: unknown address family and protocol")
	errV2TooLong  = proxyMalformed("v2: longer than " + strconv.Itoa(ProxyHeaderMax) + " bytes")
	errV2Short    = proxyMalformed("v2: length shorter than the family's addresses")
	errV2TLV      = proxyMalformed("v2: TLV overruns the header")
	errV2CRC      = proxyMalformed("v2: CRC32C mismatch")
)

// ProxyHeader is a parsed header. Local: a v2 LOCAL command, a v1
// "UNKNOWN" line, or a v2 PROXY command for a family other than TCP over
// IPv4 or IPv6 (see ParseProxy): the connection's own addresses stand.
// Src and Dst are set only when !Local, unmapped (an IPv4-mapped IPv6
// address is given as IPv4), as the listener gives a socket's addresses.
type ProxyHeader struct {
	Version  ProxyVersion
	Local    bool
	Src, Dst netip.AddrPort
}

// ParseProxy parses b, the first bytes of a connection (all of those seen
// so far, from byte 0: it keeps no state between calls), as a header of a
// version in allow. On success n is the header's exact length: the
// connection's own bytes start at b[n]. Otherwise the error is
// ErrProxyIncomplete or ErrNotProxy, as they are (== compares), or wraps
// ErrProxyMalformed. Bytes are judged as they arrive, so a bad header is
// refused before it ends; a verdict other than ErrProxyIncomplete stands
// whatever bytes follow, and ProxyHeaderMax bytes always get one. It never
// reads past len(b) and does not allocate.
//
// v1 is read as the spec writes it: single spaces; IPv4 as four decimal
// numbers without leading zeros; IPv6 as groups of 1 to 4 hex digits, one
// "::" at most, the last 32 bits possibly dotted (as inet_pton reads it),
// no zone; ports in decimal, 0 to 65535, without leading zeros; TCP4 with
// IPv4 addresses and TCP6 with IPv6 ones; the whole line, CRLF included,
// within 107 bytes. What follows "UNKNOWN" and a space, up to CRLF, is
// ignored.
//
// v2: the command is LOCAL (Local; the address block is skipped unread, its
// family ignored, as the spec says) or PROXY. For PROXY the family and
// protocol byte must be one the spec lists, the length at least that
// family's addresses, and what follows the addresses a run of whole TLVs,
// whose values are skipped except CRC32C, which is checked. TCP over IPv4
// or IPv6 gives Src and Dst; UNSPEC, UDP and UNIX fall back, as the spec
// asks of a receiver that does not support them, to UNSPEC: Local.
func ParseProxy(b []byte, allow ProxyAllow) (h ProxyHeader, n int, err error) {
	switch {
	case allow&ProxyAllowV1 != 0 && proxyHasPrefix(b, "PROXY "):
		return parseProxyV1(b)
	case allow&ProxyAllowV2 != 0 && proxyHasPrefix(b, proxyV2Sig):
		return parseProxyV2(b)
	}
	return ProxyHeader{}, 0, ErrNotProxy
}

// proxyHasPrefix reports whether b and p agree as far as both go: b begins
// with p, or could once more bytes arrive.
func proxyHasPrefix(b []byte, p string) bool {
	n := min(len(b), len(p))
	return string(b[:n]) == p[:n]
}

// parseProxyV1 parses a line b begins, b being a prefix of "PROXY " or
// longer and beginning with it.
func parseProxyV1(b []byte) (ProxyHeader, int, error) {
	l := proxyLine{b: b[:min(len(b), proxyV1Max)], i: len("PROXY ")}
	if len(l.b) < l.i {
		return ProxyHeader{}, 0, ErrProxyIncomplete
	}
	proto := l.b[l.i:]
	switch {
	case proxyHasPrefix(proto, "TCP4 "), proxyHasPrefix(proto, "TCP6 "):
		if len(proto) < len("TCP4 ") {
			return ProxyHeader{}, 0, ErrProxyIncomplete
		}
		l.i += len("TCP4 ")
		return l.tcp(proto[3] == '6')
	case proxyHasPrefix(proto, "UNKNOWN"):
		l.i += len("UNKNOWN")
		if l.i >= len(l.b) {
			return ProxyHeader{}, 0, l.end()
		}
		if c := l.b[l.i]; c != ' ' && c != '\r' {
			return ProxyHeader{}, 0, errV1Protocol
		}
		cr := bytes.IndexByte(l.b[l.i:], '\r')
		if cr < 0 {
			return ProxyHeader{}, 0, l.end()
		}
		l.i += cr + 1
		if err := l.lf(); err != nil {
			return ProxyHeader{}, 0, err
		}
		return ProxyHeader{Version: ProxyV1, Local: true}, l.i, nil
	}
	return ProxyHeader{}, 0, errV1Protocol
}

// proxyLine is a v1 line being read: b, the bytes seen of it (at most
// proxyV1Max), read up to i.
type proxyLine struct {
	b []byte
	i int
}

// end is the verdict on a line that runs out of bytes: more may come,
// unless proxyV1Max have.
func (l *proxyLine) end() error {
	if len(l.b) < proxyV1Max {
		return ErrProxyIncomplete
	}
	return errV1TooLong
}

// tcp reads the rest of a TCP4 or TCP6 line:
// "src dst sport dport\r\n". Each field is checked as soon as it ends, so
// that a bad one is refused before the line is complete.
func (l *proxyLine) tcp(v6 bool) (ProxyHeader, int, error) {
	class, width := proxyClassIPv4, len("255.255.255.255")
	if v6 {
		class, width = proxyClassIPv6, len("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255")
	}
	var addrs [2]netip.Addr
	for i, bad := range [2]error{errV1Src, errV1Dst} {
		tok, err := l.field(' ', width, class, bad)
		if err != nil {
			return ProxyHeader{}, 0, err
		}
		a, ok := proxyTextAddr(tok, v6)
		if !ok {
			return ProxyHeader{}, 0, bad
		}
		addrs[i] = a
	}
	var ports [2]uint16
	for i, bad := range [2]error{errV1SrcPort, errV1DstPort} {
		delim := byte(' ')
		if i == 1 {
			delim = '\r'
		}
		tok, err := l.field(delim, len("65535"), proxyClassDigit, bad)
		if err != nil {
			return ProxyHeader{}, 0, err
		}
		p, ok := proxyParsePort(tok)
		if !ok {
			return ProxyHeader{}, 0, bad
		}
		ports[i] = p
	}
	if err := l.lf(); err != nil {
		return ProxyHeader{}, 0, err
	}
	return ProxyHeader{
		Version: ProxyV1,
		Src:     netip.AddrPortFrom(addrs[0], ports[0]),
		Dst:     netip.AddrPortFrom(addrs[1], ports[1]),
	}, l.i, nil
}

// field returns the field at i, up to delim, and moves past delim. A byte
// outside class before it, or more than width bytes, is bad.
func (l *proxyLine) field(delim byte, width int, class uint8, bad error) ([]byte, error) {
	start := l.i
	for ; l.i < len(l.b); l.i++ {
		c := l.b[l.i]
		if c == delim {
			l.i++
			return l.b[start : l.i-1], nil
		}
		if proxyChars[c]&class == 0 || l.i-start == width {
			return nil, bad
		}
	}
	return nil, l.end()
}

// lf checks the LF after the CR just read.
func (l *proxyLine) lf() error {
	switch {
	case l.i >= len(l.b):
		return l.end()
	case l.b[l.i] != '\n':
		return errV1CR
	}
	l.i++
	return nil
}

// Character classes of v1 fields.
const (
	proxyClassDigit uint8 = 1 << iota
	proxyClassHex         // a-f, A-F
	proxyClassDot
	proxyClassColon

	proxyClassIPv4 = proxyClassDigit | proxyClassDot
	proxyClassIPv6 = proxyClassDigit | proxyClassHex | proxyClassDot | proxyClassColon
)

var proxyChars = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] = proxyClassDigit
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c], t[c-'a'+'A'] = proxyClassHex, proxyClassHex
	}
	t['.'], t[':'] = proxyClassDot, proxyClassColon
	return t
}()

// proxyTextAddr parses s as an IPv4 (!v6) or IPv6 address in the text of
// a v1 line, unmapped.
func proxyTextAddr(s []byte, v6 bool) (netip.Addr, bool) {
	if !v6 {
		ip, ok := proxyParseIPv4(s)
		return netip.AddrFrom4(ip), ok
	}
	ip, ok := proxyParseIPv6(s)
	return netip.AddrFrom16(ip).Unmap(), ok
}

// proxyParsePort parses a decimal port without leading zeros.
func proxyParsePort(s []byte) (uint16, bool) {
	if len(s) == 0 || len(s) > 5 || len(s) > 1 && s[0] == '0' {
		return 0, false
	}
	var v uint32
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint32(c-'0')
	}
	return uint16(v), v <= 0xffff
}

// proxyParseIPv4 parses four decimal numbers from 0 to 255 without leading
// zeros, separated by dots.
func proxyParseIPv4(s []byte) (ip [4]byte, ok bool) {
	for k := range ip {
		if k > 0 {
			if len(s) == 0 || s[0] != '.' {
				return ip, false
			}
			s = s[1:]
		}
		j, v := 0, 0
		for ; j < len(s) && j < 4 && '0' <= s[j] && s[j] <= '9'; j++ {
			v = v*10 + int(s[j]-'0')
		}
		if j == 0 || j > 3 || v > 255 || j > 1 && s[0] == '0' {
			return ip, false
		}
		ip[k] = byte(v)
		s = s[j:]
	}
	return ip, len(s) == 0
}

// proxyParseIPv6 parses groups of 1 to 4 hex digits separated by colons,
// one "::" standing for one or more groups of zeros, the last two groups
// possibly written as an IPv4 address, as net/netip does (without zones).
func proxyParseIPv6(s []byte) (ip [16]byte, ok bool) {
	ellipsis := -1 // the byte of ip where "::" stands
	if len(s) >= 2 && s[0] == ':' && s[1] == ':' {
		ellipsis = 0
		s = s[2:]
		if len(s) == 0 {
			return ip, true
		}
	}
	i := 0
	for i < 16 {
		j, v := 0, 0
		for ; j < len(s) && j < 5 && proxyChars[s[j]]&(proxyClassDigit|proxyClassHex) != 0; j++ {
			v = v<<4 | proxyHexValue(s[j])
		}
		if j < len(s) && s[j] == '.' {
			if ellipsis < 0 && i != 12 || i > 12 {
				return ip, false
			}
			v4, ok := proxyParseIPv4(s)
			if !ok {
				return ip, false
			}
			copy(ip[i:], v4[:])
			i += 4
			s = nil
			break
		}
		if j == 0 || j > 4 {
			return ip, false
		}
		ip[i], ip[i+1] = byte(v>>8), byte(v)
		i += 2
		s = s[j:]
		if len(s) == 0 {
			break
		}
		if s[0] != ':' || len(s) == 1 {
			return ip, false
		}
		s = s[1:]
		if s[0] == ':' {
			if ellipsis >= 0 {
				return ip, false
			}
			ellipsis = i
			s = s[1:]
			if len(s) == 0 {
				break
			}
		}
	}
	if len(s) != 0 {
		return ip, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return ip, false
		}
		n := 16 - i
		for k := i - 1; k >= ellipsis; k-- {
			ip[k+n] = ip[k]
		}
		for k := ellipsis; k < ellipsis+n; k++ {
			ip[k] = 0
		}
	} else if ellipsis >= 0 {
		return ip, false // "::" must stand for at least one group
	}
	return ip, true
}

func proxyHexValue(c byte) int {
	switch {
	case c <= '9':
		return int(c - '0')
	case c >= 'a':
		return int(c-'a') + 10
	}
	return int(c-'A') + 10
}

// parseProxyV2 parses a binary header b begins, b being a prefix of the
// signature or longer and beginning with it. The fixed part is checked
// byte by byte as it arrives, the length as soon as it has: a bad or
// oversized header is refused before the rest of it arrives.
func parseProxyV2(b []byte) (ProxyHeader, int, error) {
	if len(b) <= 12 {
		return ProxyHeader{}, 0, ErrProxyIncomplete
	}
	if b[12]>>4 != 2 {
		return ProxyHeader{}, 0, errV2Version
	}
	local := false
	switch b[12] & 0xf {
	case 0: // LOCAL
		local = true
	case 1: // PROXY
	default:
		return ProxyHeader{}, 0, errV2Command
	}
	if len(b) <= 13 {
		return ProxyHeader{}, 0, ErrProxyIncomplete
	}
	addrLen, ok := proxyV2AddrLen(b[13])
	if local {
		addrLen, ok = 0, true // the family is ignored
	}
	if !ok {
		return ProxyHeader{}, 0, errV2Family
	}
	if len(b) < proxyV2Fixed {
		return ProxyHeader{}, 0, ErrProxyIncomplete
	}
	size := int(binary.BigEndian.Uint16(b[14:16]))
	switch {
	case proxyV2Fixed+size > ProxyHeaderMax:
		return ProxyHeader{}, 0, errV2TooLong
	case size < addrLen:
		return ProxyHeader{}, 0, errV2Short
	case len(b) < proxyV2Fixed+size:
		return ProxyHeader{}, 0, ErrProxyIncomplete
	}
	hdr := b[:proxyV2Fixed+size]
	h := ProxyHeader{Version: ProxyV2, Local: true}
	if local {
		return h, len(hdr), nil
	}
	if err := proxyCheckTLVs(hdr, proxyV2Fixed+addrLen); err != nil {
		return ProxyHeader{}, 0, err
	}
	a := hdr[proxyV2Fixed:]
	switch b[13] {
	case 0x11: // TCP over IPv4
		h.Local = false
		h.Src = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[0:4])), binary.BigEndian.Uint16(a[8:10]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom4([4]byte(a[4:8])), binary.BigEndian.Uint16(a[10:12]))
	case 0x21: // TCP over IPv6
		h.Local = false
		h.Src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[0:16])).Unmap(), binary.BigEndian.Uint16(a[32:34]))
		h.Dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(a[16:32])).Unmap(), binary.BigEndian.Uint16(a[34:36]))
	}
	return h, len(hdr), nil
}

// proxyV2AddrLen returns the length of the addresses of a family and
// protocol byte, and whether the spec lists the byte at all.
func proxyV2AddrLen(famProto byte) (int, bool) {
	switch famProto {
	case 0x00: // UNSPEC
		return 0, true
	case 0x11, 0x12: // TCP, UDP over IPv4
		return 4 + 4 + 2 + 2, true
	case 0x21, 0x22: // TCP, UDP over IPv6
		return 16 + 16 + 2 + 2, true
	case 0x31, 0x32: // UNIX stream, datagram
		return 108 + 108, true
	}
	return 0, false
}

// proxyCheckTLVs checks that hdr[off:] is a run of whole TLVs, and any
// CRC32C among them.
func proxyCheckTLVs(hdr []byte, off int) error {
	for off < len(hdr) {
		if len(hdr)-off < 3 {
			return errV2TLV
		}
		typ, n := hdr[off], int(binary.BigEndian.Uint16(hdr[off+1:off+3]))
		off += 3
		if n > len(hdr)-off {
			return errV2TLV
		}
		if typ == proxyV2TypeCRC32 && (n != 4 || !proxyCRCMatches(hdr, off)) {
			return errV2CRC
		}
		off += n
	}
	return nil
}

var (
	proxyCastagnoli = crc32.MakeTable(crc32.Castagnoli)
	proxyZeros      [4]byte
)

// proxyCRCMatches reports whether the CRC32C at hdr[at:at+4] is that of
// hdr with those four bytes zero, as the spec computes it.
func proxyCRCMatches(hdr []byte, at int) bool {
	crc := crc32.Update(0, proxyCastagnoli, hdr[:at])
	crc = crc32.Update(crc, proxyCastagnoli, proxyZeros[:])
	crc = crc32.Update(crc, proxyCastagnoli, hdr[at+4:])
	return crc == binary.BigEndian.Uint32(hdr[at:at+4])
}

// AppendProxy appends to buf a header of version v (ProxyV1 or ProxyV2;
// another panics) for a TCP connection from src to dst, and returns the
// extended buffer. It does not allocate when buf has room: 104 bytes for
// v1, 52 for v2.
//
// Addresses are unmapped first. Two IPv4 addresses make a TCP4 line or a
// TCP-over-IPv4 header; otherwise both are written as IPv6, an IPv4 one as
// IPv4-mapped (::ffff:a.b.c.d), as HAProxy does for a mixed pair. Zones
// are dropped. If either is invalid (the zero AddrPort), the header says
// nothing of addresses: "PROXY UNKNOWN\r\n", or a v2 LOCAL command, as
// HAProxy sends when it has no addresses; the receiver keeps the
// connection's own.
func AppendProxy(buf []byte, v ProxyVersion, src, dst netip.AddrPort) []byte {
	if v != ProxyV1 && v != ProxyV2 {
		panic("proxy protocol: AppendProxy of version " + strconv.Itoa(int(v)))
	}
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	known := src.IsValid() && dst.IsValid()
	v4 := s.Is4() && d.Is4()
	if v == ProxyV2 {
		buf = append(buf, proxyV2Sig...)
		switch {
		case !known:
			return append(buf, 0x20, 0x00, 0, 0) // LOCAL, UNSPEC
		case v4:
			buf = append(buf, 0x21, 0x11, 0, 12) // PROXY, TCP over IPv4
			s4, d4 := s.As4(), d.As4()
			buf = append(append(buf, s4[:]...), d4[:]...)
		default:
			buf = append(buf, 0x21, 0x21, 0, 36) // PROXY, TCP over IPv6
			s16, d16 := s.As16(), d.As16()
			buf = append(append(buf, s16[:]...), d16[:]...)
		}
		buf = binary.BigEndian.AppendUint16(buf, src.Port())
		return binary.BigEndian.AppendUint16(buf, dst.Port())
	}
	switch {
	case !known:
		return append(buf, "PROXY UNKNOWN\r\n"...)
	case v4:
		buf = append(buf, "PROXY TCP4 "...)
	default:
		buf = append(buf, "PROXY TCP6 "...)
		s, d = netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16())
	}
	buf = append(s.AppendTo(buf), ' ')
	buf = append(d.AppendTo(buf), ' ')
	buf = append(strconv.AppendUint(buf, uint64(src.Port()), 10), ' ')
	buf = strconv.AppendUint(buf, uint64(dst.Port()), 10)
	return append(buf, '\r', '\n')
}
