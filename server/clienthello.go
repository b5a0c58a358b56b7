package server

import "errors"

// MaxClientHello bounds the bytes of a connection read to find its
// ClientHello: 16 KiB, record headers included. A ClientHello that does
// not end within them is malformed, however it would have ended.
const MaxClientHello = 16 << 10

var (
	// ErrIncomplete: the bytes are a valid start of a ClientHello that has
	// not ended yet and can still end within MaxClientHello bytes. Peek
	// again when more have arrived.
	ErrIncomplete = errors.New("TLS ClientHello incomplete: more bytes needed")
	// ErrNotTLS: the first bytes are not a TLS handshake record (plain
	// HTTP, SSL 2.0, ...).
	ErrNotTLS = errors.New("not a TLS handshake record")
	// ErrNoSNI: a complete, well-formed ClientHello without a host_name in
	// a server_name extension (a client that connects by IP address).
	ErrNoSNI = errors.New("TLS ClientHello without a server name (SNI)")
	// ErrMalformed is wrapped by the errors that say what is wrong with a
	// ClientHello, or its records, or its server name.
	ErrMalformed = errors.New("malformed TLS ClientHello")
)

// malformed says what is wrong with a ClientHello and wraps ErrMalformed.
// It is a constant string, so returning one does not allocate: a flood of
// bad hellos costs no garbage.
type malformed string

func (m malformed) Error() string { return ErrMalformed.Error() + ": " + string(m) }
func (m malformed) Unwrap() error { return ErrMalformed }

const (
	recordHeaderLen     = 5
	maxRecordPayload    = 1 << 14
	recordTypeHandshake = 22
	handshakeHeaderLen  = 4
	typeClientHello     = 1
	extServerName       = 0
	nameTypeHostName    = 0
	maxHostName         = 253
	maxLabel            = 63
)

const errTooLarge = malformed("it does not end within the first 16384 bytes")

// ServerName parses b, the first bytes a client sent (all of them, from
// byte 0, as peeked so far), and returns the host name in its
// ClientHello's server_name extension, lowercased; or ErrIncomplete,
// ErrNotTLS, ErrNoSNI, or an error wrapping ErrMalformed that says what is
// wrong. b is only read, never beyond len(b) nor beyond MaxClientHello
// bytes, and is not retained; the work is linear in those bytes. The name
// is the one allocation, and there is none on error. Safe from any
// goroutine.
//
// The name must be a DNS host name, or the hello is malformed: labels of
// 1-63 letters, digits,
// hyphens and underscores, not starting or ending with a hyphen, 253 bytes
// in all. Underscores are allowed, as browsers and HAProxy allow them,
// since names such as my_host.corp exist in private zones. One trailing
// dot is stripped: "example.com." is the same host as "example.com". A
// name whose last label is all digits (1.2.3.4, an IP address literal,
// which RFC 6066 forbids) is malformed; so is an IPv6 literal, which has
// colons.
//
// The result is final once it is not ErrIncomplete: more bytes after b do
// not change it, and a prefix of b gives either ErrIncomplete or the same
// result. b of MaxClientHello bytes or more never gives ErrIncomplete. What
// follows the ClientHello (the rest of its record, early data) is not
// looked at.
func ServerName(b []byte) (string, error) {
	size, records, err := helloExtent(b)
	if err != nil {
		return "", err
	}
	if records == 1 {
		return clientHelloServerName(b[recordHeaderLen : recordHeaderLen+size])
	}
	return reassembledServerName(b, size)
}

// helloExtent walks the handshake records at the start of b that carry
// the first handshake message, checks that it is a ClientHello that ends
// within MaxClientHello bytes, and returns its size (with its 4-byte
// header) and the number of records that carry it. Every byte of it is in
// b; the rest of its last record may not be.
//
// Each check reads only bytes at or before those of the checks after it,
// and ErrIncomplete is returned when the next check needs a byte past b:
// that is what makes a prefix's result ErrIncomplete or b's. Before moving
// on to the next record it checks that the message can still end within
// MaxClientHello bytes, so a record header it reads is within them.
func helloExtent(b []byte) (size, records int, err error) {
	var hdr [handshakeHeaderLen]byte // gathered as it passes: it may straddle records
	// size is 0 until hdr is whole; got counts the message bytes in the
	// records before off, where the record at hand starts.
	got, off := 0, 0
	for records = 1; ; records++ {
		if off > len(b) {
			return 0, 0, ErrIncomplete // the last record's payload is not all in
		}
		n, err := recordHeader(b[off:], records == 1)
		if err != nil {
			return 0, 0, err
		}
		payload := off + recordHeaderLen
		if size == 0 && got+n >= handshakeHeaderLen {
			// The handshake header ends in this record.
			k := handshakeHeaderLen - got
			if len(b) < payload+k {
				return 0, 0, ErrIncomplete
			}
			copy(hdr[got:], b[payload:payload+k])
			if hdr[0] != typeClientHello {
				return 0, 0, malformed("the first handshake message is not a ClientHello")
			}
			size = handshakeHeaderLen + (int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3]))
		}
		need := max(size, handshakeHeaderLen) // until the header is in, the least the message can be
		if got+n >= need {
			end := payload + need - got
			if end > MaxClientHello {
				return 0, 0, errTooLarge
			}
			if len(b) < end {
				return 0, 0, ErrIncomplete
			}
			return size, records, nil
		}
		// The message goes on in the next record: a header and a byte more.
		next := payload + n
		if next+recordHeaderLen+need-got-n > MaxClientHello {
			return 0, 0, errTooLarge
		}
		if size == 0 {
			// The whole record is (part of) the handshake header.
			if len(b) < next {
				return 0, 0, ErrIncomplete
			}
			copy(hdr[got:], b[payload:next])
		}
		got, off = got+n, next
	}
}

// recordHeader checks the record header at the start of b, as far as b
// goes, and returns the record's payload length. first: the connection's
// first record, which tells TLS from other protocols.
func recordHeader(b []byte, first bool) (int, error) {
	// Before the hello has ended, only handshake records may come.
	if len(b) >= 1 && b[0] != recordTypeHandshake {
		if first {
			return 0, ErrNotTLS
		}
		return 0, malformed("a non-handshake record came before its end")
	}
	// Versions 3.0 (SSL 3.0) to 3.4; clients send 3.1 for compatibility.
	if len(b) >= 2 && b[1] != 3 || len(b) >= 3 && b[2] > 4 {
		if first {
			return 0, ErrNotTLS
		}
		return 0, malformed("a record's version is not 3.0 to 3.4")
	}
	if len(b) < recordHeaderLen {
		return 0, ErrIncomplete
	}
	n := int(b[3])<<8 | int(b[4])
	if n == 0 {
		return 0, malformed("an empty handshake record") // RFC 8446 §5.1
	}
	if n > maxRecordPayload {
		return 0, malformed("a record is longer than 16384 bytes")
	}
	return n, nil
}

// reassembledServerName is ServerName of a ClientHello of size bytes
// carried by several records, which helloExtent found whole in b. It
// copies their payloads together into an array on its stack and parses
// that, so nothing escapes but the name.
//
// It is not inlined, so that ServerName's frame stays small for hellos in
// one record: only a split hello grows the calling goroutine's stack, by
// MaxClientHello.
//
//go:noinline
func reassembledServerName(b []byte, size int) (string, error) {
	var buf [MaxClientHello]byte
	for off, n := 0, 0; n < size; {
		payload := off + recordHeaderLen
		end := payload + (int(b[off+3])<<8 | int(b[off+4]))
		n += copy(buf[n:size], b[payload:min(end, len(b))])
		off = end
	}
	return clientHelloServerName(buf[:size])
}

// clientHelloServerName parses msg, a whole ClientHello handshake message
// with its header (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2), as far as its
// extensions, all of which it checks are well framed, and returns its
// server name.
func clientHelloServerName(msg []byte) (string, error) {
	hello := fields(msg[handshakeHeaderLen:])
	version, ok := hello.uint16()
	if !ok {
		return "", malformed("it ends inside its legacy_version")
	}
	if version>>8 != 3 {
		return "", malformed("its legacy_version is not 3.x")
	}
	if _, ok := hello.bytes(32); !ok {
		return "", malformed("it ends inside its random")
	}
	sessionID, ok := hello.vector8()
	if !ok {
		return "", malformed("it ends inside its legacy_session_id")
	}
	if len(sessionID) > 32 {
		return "", malformed("its legacy_session_id is longer than 32 bytes")
	}
	suites, ok := hello.vector16()
	if !ok {
		return "", malformed("it ends inside its cipher_suites")
	}
	if len(suites) == 0 || len(suites)%2 != 0 {
		return "", malformed("its cipher_suites is not a non-empty list of 2-byte suites")
	}
	compression, ok := hello.vector8()
	if !ok {
		return "", malformed("it ends inside its legacy_compression_methods")
	}
	if len(compression) == 0 {
		return "", malformed("its legacy_compression_methods is empty")
	}
	if len(hello) == 0 {
		return "", ErrNoSNI // extensions are optional before TLS 1.3
	}
	exts, ok := hello.vector16()
	if !ok {
		return "", malformed("its extensions overrun it")
	}
	if len(hello) != 0 {
		return "", malformed("bytes follow its extensions")
	}
	var name []byte
	seen, named := false, false
	for len(exts) > 0 {
		typ, ok1 := exts.uint16()
		data, ok2 := exts.vector16()
		if !ok1 || !ok2 {
			return "", malformed("an extension overruns the extensions")
		}
		if typ != extServerName {
			continue
		}
		if seen {
			return "", malformed("it has two server_name extensions")
		}
		seen = true
		var err error
		if name, named, err = hostNameEntry(data); err != nil {
			return "", err
		}
	}
	if !named {
		return "", ErrNoSNI
	}
	return hostName(name)
}

// hostNameEntry returns the host_name in a server_name extension's data
// (RFC 6066 §3), and whether there is one: entries of other types are
// skipped, as if they too had a 16-bit length. The name is not checked.
func hostNameEntry(data fields) (host []byte, found bool, err error) {
	list, ok := data.vector16()
	if !ok || len(data) != 0 {
		return nil, false, malformed("its server_name list does not fill its extension")
	}
	if len(list) == 0 {
		return nil, false, malformed("its server_name list is empty")
	}
	for len(list) > 0 {
		typ, ok1 := list.uint8()
		name, ok2 := list.vector16()
		if !ok1 || !ok2 {
			return nil, false, malformed("a server_name entry overruns its list")
		}
		if typ != nameTypeHostName {
			continue
		}
		if found {
			return nil, false, malformed("its server_name list has two host_names")
		}
		host, found = name, true
	}
	return host, found, nil
}

// hostName returns raw, a host_name, lowercased, if it is a DNS host name
// as ServerName describes. Its string is the one allocation of a
// ServerName.
func hostName(raw []byte) (string, error) {
	if n := len(raw); n > 0 && raw[n-1] == '.' {
		raw = raw[:n-1] // fully qualified: the same host
	}
	if len(raw) == 0 {
		return "", malformed("its server name is empty")
	}
	if len(raw) > maxHostName {
		return "", malformed("its server name is longer than 253 bytes")
	}
	var lower [maxHostName]byte
	label, numeric := 0, true // the label's length so far; whether it is all digits
	for i, c := range raw {
		switch {
		case c == '.':
			if label == 0 {
				return "", malformed("its server name has an empty label")
			}
			if raw[i-1] == '-' {
				return "", malformed("its server name has a label that ends with a hyphen")
			}
			lower[i] = c
			label, numeric = 0, true
			continue
		case 'a' <= c && c <= 'z' || c == '_':
			numeric = false
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
			numeric = false
		case '0' <= c && c <= '9':
		case c == '-':
			if label == 0 {
				return "", malformed("its server name has a label that starts with a hyphen")
			}
			numeric = false
		default:
			return "", malformed("its server name has a byte other than a letter, digit, hyphen, underscore or dot")
		}
		if label++; label > maxLabel {
			return "", malformed("its server name has a label longer than 63 bytes")
		}
		lower[i] = c
	}
	switch {
	case label == 0:
		return "", malformed("its server name has an empty label") // "a.." stripped of one dot
	case raw[len(raw)-1] == '-':
		return "", malformed("its server name has a label that ends with a hyphen")
	case numeric:
		return "", malformed("its server name is an IP address (its last label is all digits)")
	}
	return string(lower[:len(raw)]), nil
}

// fields is what is left of a ClientHello to read, front to back. A read
// past its end returns false; what is left is then of no use.
type fields []byte

func (f *fields) bytes(n int) ([]byte, bool) {
	if n > len(*f) {
		return nil, false
	}
	v := (*f)[:n:n]
	*f = (*f)[n:]
	return v, true
}

func (f *fields) uint8() (int, bool) {
	v, ok := f.bytes(1)
	if !ok {
		return 0, false
	}
	return int(v[0]), true
}

func (f *fields) uint16() (int, bool) {
	v, ok := f.bytes(2)
	if !ok {
		return 0, false
	}
	return int(v[0])<<8 | int(v[1]), true
}

// vector8 reads a vector with an 8-bit length.
func (f *fields) vector8() (fields, bool) {
	n, ok := f.uint8()
	if !ok {
		return nil, false
	}
	return f.bytes(n)
}

// vector16 reads a vector with a 16-bit length.
func (f *fields) vector16() (fields, bool) {
	n, ok := f.uint16()
	if !ok {
		return nil, false
	}
	return f.bytes(n)
}
