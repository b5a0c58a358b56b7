package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const proxySig = "\r\n\r\n\x00\r\nQUIT\n"

func proxyAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// proxyV2 builds a v2 header by hand: signature, ver/cmd, fam, the length
// of body, body.
func proxyV2(verCmd, fam byte, body ...[]byte) []byte {
	var all []byte
	for _, p := range body {
		all = append(all, p...)
	}
	b := append([]byte(proxySig), verCmd, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(all)))
	return append(b, all...)
}

func proxyTLV(typ byte, value ...[]byte) []byte {
	var v []byte
	for _, p := range value {
		v = append(v, p...)
	}
	b := binary.BigEndian.AppendUint16([]byte{typ}, uint16(len(v)))
	return append(b, v...)
}

// proxyCRC32C is RFC 4960's CRC32C bit by bit, independent of hash/crc32.
func proxyCRC32C(b []byte) uint32 {
	crc := ^uint32(0)
	for _, c := range b {
		crc ^= uint32(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82f63b78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

// proxyWithCRC appends a CRC32C TLV to a v2 header and fills it in.
func proxyWithCRC(h []byte) []byte {
	h = append(bytes.Clone(h), proxyTLV(0x03, make([]byte, 4))...)
	binary.BigEndian.PutUint16(h[14:16], uint16(len(h)-16))
	binary.BigEndian.PutUint32(h[len(h)-4:], proxyCRC32C(h))
	return h
}

var (
	proxyV4Addrs = []byte{192, 168, 0, 1, 192, 168, 0, 11, 0xdc, 0x04, 0x01, 0xbb} // :56324, :443
	proxyV6Addrs = append(append(
		netip.MustParseAddr("2001:db8::1").AsSlice(),
		netip.MustParseAddr("2001:db8::ff").AsSlice()...),
		0xdc, 0x04, 0x01, 0xbb)
	proxySSL = proxyTLV(0x20, []byte{0x07, 0, 0, 0, 0}, // client: SSL, cert conn, cert sess; verified
		proxyTLV(0x21, []byte("TLSv1.3")),
		proxyTLV(0x22, []byte("client.example.com")),
		proxyTLV(0x23, []byte("TLS_AES_128_GCM_SHA256")),
		proxyTLV(0x24, []byte("RSA-SHA256")),
		proxyTLV(0x25, []byte("RSA2048")))
)

// proxyValid are headers ParseProxy accepts; each parses the same with any
// bytes after it.
var proxyValid = []struct {
	name string
	in   []byte
	want ProxyHeader
}{
	{"v1 spec example", []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"),
		ProxyHeader{ProxyV1, false, proxyAP("192.168.0.1:56324"), proxyAP("192.168.0.11:443")}},
	{"v1 TCP4 longest", []byte("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
		ProxyHeader{ProxyV1, false, proxyAP("255.255.255.255:65535"), proxyAP("255.255.255.255:65535")}},
	{"v1 TCP4 zeros", []byte("PROXY TCP4 0.0.0.0 10.0.0.1 0 0\r\n"),
		ProxyHeader{ProxyV1, false, proxyAP("0.0.0.0:0"), proxyAP("10.0.0.1:0")}},
	{"v1 TCP6", []byte("PROXY TCP6 2001:db8::1 2001:db8::ff 56324 443\r\n"),
		ProxyHeader{ProxyV1, false, proxyAP("[2001:db8::1]:56324"), proxyAP("[2001:db8::ff]:443")}},
	{"v1 TCP6 longest", []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF 65535 65535\r\n"),
		ProxyHeader{ProxyV1, false, proxyAP("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), proxyAP("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}},
	{"v1 TCP6 uncompressed", []byte("PROXY TCP6 2001:0db8:0000:0000:0000:0000:0000:0001 ::1 1 2\r\n"),
		ProxyHeader{ProxyV1, false, proxyAP("[2001:db8::1]:1"), proxyAP("[::1]:2")}},
	{"v1 TCP6 mapped", []byte("PROXY TCP6 ::ffff:192.0.2.7 2001:db8::1 1000 443\r\n"),
		ProxyHeader{ProxyV1, false, proxyAP("192.0.2.7:1000"), proxyAP("[2001:db8::1]:443")}},
	{"v1 UNKNOWN", []byte("PROXY UNKNOWN\r\n"), ProxyHeader{Version: ProxyV1, Local: true}},
	{"v1 UNKNOWN with addresses", []byte("PROXY UNKNOWN 192.168.0.1 192.168.0.11 56324 443\r\n"),
		ProxyHeader{Version: ProxyV1, Local: true}},
	{"v1 UNKNOWN longest", []byte("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
		ProxyHeader{Version: ProxyV1, Local: true}},

	{"v2 IPv4", proxyV2(0x21, 0x11, proxyV4Addrs),
		ProxyHeader{ProxyV2, false, proxyAP("192.168.0.1:56324"), proxyAP("192.168.0.11:443")}},
	{"v2 IPv6", proxyV2(0x21, 0x21, proxyV6Addrs),
		ProxyHeader{ProxyV2, false, proxyAP("[2001:db8::1]:56324"), proxyAP("[2001:db8::ff]:443")}},
	{"v2 IPv6 mapped", proxyV2(0x21, 0x21, netip.MustParseAddr("::ffff:10.0.0.1").AsSlice(),
		netip.MustParseAddr("::ffff:10.0.0.2").AsSlice(), []byte{0, 80, 0, 81}),
		ProxyHeader{ProxyV2, false, proxyAP("10.0.0.1:80"), proxyAP("10.0.0.2:81")}},
	{"v2 LOCAL", proxyV2(0x20, 0x00), ProxyHeader{Version: ProxyV2, Local: true}},
	{"v2 LOCAL with addresses", proxyV2(0x20, 0x11, proxyV4Addrs), ProxyHeader{Version: ProxyV2, Local: true}},
	{"v2 LOCAL family ignored", proxyV2(0x20, 0xff, []byte{1, 2}), ProxyHeader{Version: ProxyV2, Local: true}},
	{"v2 PROXY UNSPEC", proxyV2(0x21, 0x00), ProxyHeader{Version: ProxyV2, Local: true}},
	{"v2 PROXY UNSPEC TLVs", proxyV2(0x21, 0x00, proxyTLV(0x04, nil)), ProxyHeader{Version: ProxyV2, Local: true}},
	{"v2 UDP4", proxyV2(0x21, 0x12, proxyV4Addrs), ProxyHeader{Version: ProxyV2, Local: true}},
	{"v2 UDP6", proxyV2(0x21, 0x22, proxyV6Addrs), ProxyHeader{Version: ProxyV2, Local: true}},
	{"v2 UNIX stream", proxyV2(0x21, 0x31, make([]byte, 216)), ProxyHeader{Version: ProxyV2, Local: true}},
	{"v2 UNIX datagram", proxyV2(0x21, 0x32, make([]byte, 216)), ProxyHeader{Version: ProxyV2, Local: true}},
	{"v2 TLVs", proxyV2(0x21, 0x11, proxyV4Addrs,
		proxyTLV(0x01, []byte("h2")),
		proxyTLV(0x02, []byte("example.com")),
		proxyTLV(0x04, nil),
		proxyTLV(0x05, []byte("unique-id")),
		proxySSL,
		proxyTLV(0x30, []byte("netns")),
		proxyTLV(0xe0, make([]byte, 300))),
		ProxyHeader{ProxyV2, false, proxyAP("192.168.0.1:56324"), proxyAP("192.168.0.11:443")}},
	{"v2 IPv6 SSL", proxyV2(0x21, 0x21, proxyV6Addrs, proxySSL),
		ProxyHeader{ProxyV2, false, proxyAP("[2001:db8::1]:56324"), proxyAP("[2001:db8::ff]:443")}},
	{"v2 CRC32C", proxyWithCRC(proxyV2(0x21, 0x11, proxyV4Addrs, proxyTLV(0x01, []byte("h2")))),
		ProxyHeader{ProxyV2, false, proxyAP("192.168.0.1:56324"), proxyAP("192.168.0.11:443")}},
	{"v2 longest", proxyV2(0x21, 0x11, proxyV4Addrs, proxyTLV(0x04, make([]byte, ProxyHeaderMax-16-12-3))),
		ProxyHeader{ProxyV2, false, proxyAP("192.168.0.1:56324"), proxyAP("192.168.0.11:443")}},
}

func TestParseProxyValid(t *testing.T) {
	for _, tc := range proxyValid {
		t.Run(tc.name, func(t *testing.T) {
			for _, tail := range []string{"", "GET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n", "\r\n", "\x00"} {
				h, n, err := ParseProxy(append(bytes.Clone(tc.in), tail...), ProxyAllowAny)
				if err != nil || n != len(tc.in) || h != tc.want {
					t.Fatalf("tail %q: got %+v, %d, %v; want %+v, %d", tail, h, n, err, tc.want, len(tc.in))
				}
			}
		})
	}
}

// The event loop asks again as bytes arrive: each strict prefix of a
// header is incomplete, not refused.
func TestParseProxyEveryPrefixIncomplete(t *testing.T) {
	for _, tc := range proxyValid {
		t.Run(tc.name, func(t *testing.T) {
			for k := range len(tc.in) {
				if _, n, err := ParseProxy(tc.in[:k], ProxyAllowAny); err != ErrProxyIncomplete || n != 0 {
					t.Fatalf("first %d of %d bytes: n %d, %v", k, len(tc.in), n, err)
				}
			}
		})
	}
}

func TestParseProxyInvalid(t *testing.T) {
	v1max := "PROXY UNKNOWN " + strings.Repeat("x", proxyV1Max-len("PROXY UNKNOWN ")-2)
	tests := []struct {
		name string
		in   string
		want error // ErrProxyIncomplete, ErrNotProxy or the malformed error
	}{
		{"empty", "", ErrProxyIncomplete},
		{"HTTP", "GET / HTTP/1.1\r\n", ErrNotProxy},
		{"TLS", "\x16\x03\x01\x02\x00\x01", ErrNotProxy},
		{"lower case", "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ErrNotProxy},
		{"PROXY without space", "PROXYTCP4", ErrNotProxy},
		{"v1 prefix", "PROX", ErrProxyIncomplete},
		{"v1 106 bytes without CR", v1max + "x", ErrProxyIncomplete},
		{"v1 107 bytes without CR", v1max + "xx\r\n", errV1TooLong},
		{"v1 CR as the 107th byte", v1max + "x\r\n", errV1TooLong},
		{"v1 TCP4 endless", "PROXY TCP4 " + strings.Repeat("1", 200), errV1Src},
		{"v1 UNKNOWN endless", "PROXY UNKNOWN " + strings.Repeat("x", 200), errV1TooLong},
		{"v1 two spaces", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", errV1Src},
		{"v1 two spaces later", "PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n", errV1SrcPort},
		{"v1 two spaces before protocol", "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n", errV1Protocol},
		{"v1 tab", "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n", errV1Src},
		{"v1 unknown protocol", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", errV1Protocol},
		{"v1 TCP4 no space", "PROXY TCP41.2.3.4 5.6.7.8 1 2\r\n", errV1Protocol},
		{"v1 UNKNOWN glued", "PROXY UNKNOWNX\r\n", errV1Protocol},
		{"v1 bare LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", errV1DstPort},
		{"v1 bare CR", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rGET", errV1CR},
		{"v1 UNKNOWN bare CR", "PROXY UNKNOWN\rx\r\n", errV1CR},
		{"v1 CR CR LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r\n", errV1CR},
		{"v1 trailing space", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n", errV1DstPort},
		{"v1 missing port", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", errV1SrcPort},
		{"v1 missing ports", "PROXY TCP4 1.2.3.4 5.6.7.8\r\n", errV1Dst},
		{"v1 bad address", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n", errV1Src},
		{"v1 short address", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", errV1Src},
		{"v1 octal-looking address", "PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n", errV1Dst},
		{"v1 IPv4 in TCP6", "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", errV1Src},
		{"v1 IPv6 in TCP4", "PROXY TCP4 ::1 ::1 1 2\r\n", errV1Src},
		{"v1 mixed in TCP6", "PROXY TCP6 ::1 5.6.7.8 1 2\r\n", errV1Dst},
		{"v1 bad IPv6", "PROXY TCP6 ::1::2 ::1 1 2\r\n", errV1Src},
		{"v1 IPv6 zone", "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", errV1Src},
		{"v1 IPv6 group too long", "PROXY TCP6 2001:db8::12345 ::1 1 2\r\n", errV1Src},
		{"v1 port 65536", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", errV1SrcPort},
		{"v1 port 99999", "PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n", errV1DstPort},
		{"v1 port six digits", "PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n", errV1DstPort},
		{"v1 port leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n", errV1SrcPort},
		{"v1 port sign", "PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", errV1SrcPort},
		{"v1 partial field with bad byte", "PROXY TCP4 1.2.x", errV1Src},

		{"v2 prefix", proxySig[:5], ErrProxyIncomplete},
		{"v2 bad signature", "\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x0c", ErrNotProxy},
		{"v2 bad signature early", "\r\n\r\nX", ErrNotProxy},
		{"v2 version 1", proxySig + "\x11\x11\x00\x0c", errV2Version},
		{"v2 version 3", proxySig + "\x31", errV2Version},
		{"v2 command 2", proxySig + "\x22", errV2Command},
		{"v2 command 15", proxySig + "\x2f\x11\x00\x0c", errV2Command},
		{"v2 family 4", proxySig + "\x21\x41", errV2Family},
		{"v2 protocol 3", proxySig + "\x21\x13", errV2Family},
		{"v2 INET UNSPEC", proxySig + "\x21\x10\x00\x0c", errV2Family},
		{"v2 IPv4 short", string(proxyV2(0x21, 0x11, proxyV4Addrs[:11])), errV2Short},
		{"v2 IPv6 short", string(proxyV2(0x21, 0x21, proxyV4Addrs)), errV2Short},
		{"v2 UNIX short", string(proxyV2(0x21, 0x31, make([]byte, 215))), errV2Short},
		{"v2 short before the rest arrives", proxySig + "\x21\x21\x00\x0c", errV2Short},
		{"v2 too long", proxySig + "\x21\x11\x0f\xf1", errV2TooLong},
		{"v2 longest declared", proxySig + "\x21\x11\xff\xff", errV2TooLong},
		{"v2 TLV overrun", string(proxyV2(0x21, 0x11, proxyV4Addrs, []byte{0x01, 0x00, 0x05, 'h', '2'})), errV2TLV},
		{"v2 TLV overrun by one", string(proxyV2(0x21, 0x11, proxyV4Addrs, proxyTLV(0x01, []byte("h2"))[:4])), errV2TLV},
		{"v2 TLV header cut", string(proxyV2(0x21, 0x11, proxyV4Addrs, []byte{0x01, 0x00})), errV2TLV},
		{"v2 TLV one byte", string(proxyV2(0x21, 0x21, proxyV6Addrs, []byte{0x04})), errV2TLV},
		{"v2 UNSPEC TLV overrun", string(proxyV2(0x21, 0x00, []byte{0x04, 0x00, 0x01})), errV2TLV},
		{"v2 IPv4 garbage after addresses", string(proxyV2(0x21, 0x11, proxyV4Addrs, []byte{0xff, 0xff, 0xff, 0xff})), errV2TLV},
		{"v2 CRC32C wrong", string(proxyV2(0x21, 0x11, proxyV4Addrs, proxyTLV(0x03, []byte{1, 2, 3, 4}))), errV2CRC},
		{"v2 CRC32C short", string(proxyV2(0x21, 0x11, proxyV4Addrs, proxyTLV(0x03, []byte{1, 2, 3}))), errV2CRC},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := ParseProxy([]byte(tc.in), ProxyAllowAny)
			if err != tc.want || n != 0 || h != (ProxyHeader{}) {
				t.Fatalf("got %+v, %d, %v; want %v", h, n, err, tc.want)
			}
			if tc.want != ErrNotProxy && tc.want != ErrProxyIncomplete && !errors.Is(err, ErrProxyMalformed) {
				t.Errorf("%v does not wrap ErrProxyMalformed", err)
			}
		})
	}
}

// A header whose CRC32C is right is refused once any other byte changes.
func TestParseProxyCRC32C(t *testing.T) {
	if got := proxyCRC32C([]byte("123456789")); got != 0xe3069283 {
		t.Fatalf("reference CRC32C %#x, want 0xe3069283", got)
	}
	good := proxyWithCRC(proxyV2(0x21, 0x21, proxyV6Addrs, proxySSL))
	if _, _, err := ParseProxy(good, ProxyAllowAny); err != nil {
		t.Fatal(err)
	}
	for i := 16; i < len(good); i++ {
		if i >= len(good)-7 && i < len(good)-4 {
			continue // the CRC32C TLV's type and length
		}
		bad := bytes.Clone(good)
		bad[i] ^= 0x20
		// A TLV's length changed may overrun instead.
		if _, _, err := ParseProxy(bad, ProxyAllowAny); err != errV2CRC && err != errV2TLV {
			t.Fatalf("byte %d changed: %v, want %v", i, err, errV2CRC)
		}
	}
}

func TestParseProxyAllow(t *testing.T) {
	v1 := []byte("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n")
	v2 := proxyV2(0x21, 0x11, proxyV4Addrs)
	tests := []struct {
		name  string
		in    []byte
		allow ProxyAllow
		want  error
	}{
		{"v1 allowed", v1, ProxyAllowV1, nil},
		{"v2 allowed", v2, ProxyAllowV2, nil},
		{"v1 refused", v1, ProxyAllowV2, ErrNotProxy},
		{"v2 refused", v2, ProxyAllowV1, ErrNotProxy},
		{"v1 prefix refused", v1[:3], ProxyAllowV2, ErrNotProxy},
		{"v2 prefix refused", v2[:3], ProxyAllowV1, ErrNotProxy},
		{"nothing allowed", v1, 0, ErrNotProxy},
		{"nothing allowed, empty", nil, 0, ErrNotProxy},
		{"v1 only, empty", nil, ProxyAllowV1, ErrProxyIncomplete},
		{"v2 only, empty", nil, ProxyAllowV2, ErrProxyIncomplete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := ParseProxy(tc.in, tc.allow); err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAppendProxy(t *testing.T) {
	v4a, v4b := proxyAP("192.168.0.1:56324"), proxyAP("192.168.0.11:443")
	v6a, v6b := proxyAP("[2001:db8::1]:56324"), proxyAP("[2001:db8::ff]:443")
	tests := []struct {
		name     string
		v        ProxyVersion
		src, dst netip.AddrPort
		want     string
	}{
		{"v1 TCP4", ProxyV1, v4a, v4b, "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"},
		{"v1 TCP6", ProxyV1, v6a, v6b, "PROXY TCP6 2001:db8::1 2001:db8::ff 56324 443\r\n"},
		{"v1 mixed", ProxyV1, v4a, v6b, "PROXY TCP6 ::ffff:192.168.0.1 2001:db8::ff 56324 443\r\n"},
		{"v1 mapped pair", ProxyV1, proxyAP("[::ffff:192.168.0.1]:56324"), proxyAP("[::ffff:192.168.0.11]:443"),
			"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"},
		{"v1 zone dropped", ProxyV1, proxyAP("[fe80::1%eth0]:1"), v6b, "PROXY TCP6 fe80::1 2001:db8::ff 1 443\r\n"},
		{"v1 unknown", ProxyV1, netip.AddrPort{}, v4b, "PROXY UNKNOWN\r\n"},
		{"v1 longest", ProxyV1, proxyAP("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), proxyAP("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"),
			"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"},
		{"v2 IPv4", ProxyV2, v4a, v4b, string(proxyV2(0x21, 0x11, proxyV4Addrs))},
		{"v2 IPv6", ProxyV2, v6a, v6b, string(proxyV2(0x21, 0x21, proxyV6Addrs))},
		{"v2 mixed", ProxyV2, v4a, v6b, string(proxyV2(0x21, 0x21,
			netip.MustParseAddr("::ffff:192.168.0.1").AsSlice(), netip.MustParseAddr("2001:db8::ff").AsSlice(),
			[]byte{0xdc, 0x04, 0x01, 0xbb}))},
		{"v2 unknown", ProxyV2, v4a, netip.AddrPort{}, string(proxyV2(0x20, 0x00))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendProxy([]byte("prefix"), tc.v, tc.src, tc.dst)
			if string(got) != "prefix"+tc.want {
				t.Fatalf("got %q, want %q", got, "prefix"+tc.want)
			}
		})
	}
}

func TestAppendProxyBadVersionPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for version 3")
		}
	}()
	AppendProxy(nil, 3, proxyAP("1.2.3.4:1"), proxyAP("1.2.3.4:2"))
}

func proxyRandAddr(r *rand.Rand) netip.Addr {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	switch r.IntN(4) {
	case 0:
		return netip.AddrFrom4([4]byte(b[:4]))
	case 1:
		return netip.AddrFrom16([16]byte(b)).Unmap()
	case 2: // IPv4-mapped
		return netip.AddrFrom16(netip.AddrFrom4([4]byte(b[:4])).As16())
	default: // runs of zeros, for "::"
		for i := range b {
			if r.IntN(2) == 0 {
				b[i] = 0
			}
		}
		return netip.AddrFrom16(b).Unmap()
	}
}

func TestProxyRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		src := netip.AddrPortFrom(proxyRandAddr(r), uint16(r.Uint32()))
		dst := netip.AddrPortFrom(proxyRandAddr(r), uint16(r.Uint32()))
		want := ProxyHeader{
			Src: netip.AddrPortFrom(src.Addr().Unmap(), src.Port()),
			Dst: netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()),
		}
		for _, v := range []ProxyVersion{ProxyV1, ProxyV2} {
			want.Version = v
			b := AppendProxy(nil, v, src, dst)
			h, n, err := ParseProxy(append(b, "payload"...), ProxyAllowAny)
			if err != nil || n != len(b) || h != want {
				t.Fatalf("#%d %v %v → %v %q: got %+v, %d, %v; want %+v", i, src, dst, v, b, h, n, err, want)
			}
		}
	}
}

func TestParseProxyDoesNotAllocate(t *testing.T) {
	inputs := [][]byte{
		[]byte("PROXY TCP6 2001:db8::1 ::ffff:1.2.3.4 56324 443\r\n"),
		[]byte("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"),
		proxyWithCRC(proxyV2(0x21, 0x21, proxyV6Addrs, proxySSL)),
		proxyV2(0x21, 0x11, proxyV4Addrs, []byte{0xff}),
		[]byte("GET / HTTP/1.1\r\n"),
	}
	for _, tc := range proxyValid {
		inputs = append(inputs, tc.in)
	}
	if n := testing.AllocsPerRun(100, func() {
		for _, in := range inputs {
			ParseProxy(in, ProxyAllowAny)
		}
	}); n != 0 {
		t.Errorf("%v allocations per parse", n)
	}
}

func TestAppendProxyDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 128)
	src := proxyAP("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")
	dst := proxyAP("[fe80::1%eth0]:65535")
	v4 := proxyAP("255.255.255.255:65535")
	if n := testing.AllocsPerRun(100, func() {
		for _, v := range []ProxyVersion{ProxyV1, ProxyV2} {
			if b := AppendProxy(buf, v, src, dst); cap(b) != cap(buf) {
				t.Fatal("grew")
			}
			AppendProxy(buf, v, v4, dst)
			AppendProxy(buf, v, v4, v4)
		}
	}); n != 0 {
		t.Errorf("%v allocations per append", n)
	}
}

// What the event loop does: peek at the first bytes until they hold a
// header, then consume exactly it; the client's bytes follow untouched.
func TestProxyPeekThenConsume(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	want := ProxyHeader{ProxyV2, false, proxyAP("[2001:db8::1]:56324"), proxyAP("198.51.100.7:443")}
	hdr := AppendProxy(nil, want.Version, want.Src, want.Dst)
	stream := append(bytes.Clone(hdr), "SSH-2.0-client\r\n"...)
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(stream[:5]) // split, as a slow path may deliver it
		time.Sleep(20 * time.Millisecond)
		c.Write(stream[5:])
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, ProxyHeaderMax)
	var h ProxyHeader
	var n, peeks int
	for {
		var got int
		var rerr error
		if err := raw.Read(func(fd uintptr) bool {
			got, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK)
			return rerr != unix.EAGAIN
		}); err != nil || rerr != nil || got == 0 {
			t.Fatalf("peek: %d, %v, %v", got, err, rerr)
		}
		peeks++
		h, n, err = ParseProxy(buf[:got], ProxyAllowAny)
		if err != ErrProxyIncomplete || peeks == 1000 {
			break
		}
		time.Sleep(5 * time.Millisecond) // a loop would wait for EPOLLIN
	}
	if err != nil || h != want || n != len(hdr) {
		t.Fatalf("after %d peeks: %+v, %d, %v", peeks, h, n, err)
	}
	if _, err := io.ReadFull(c, buf[:n]); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(c)
	if err != nil || string(rest) != "SSH-2.0-client\r\n" {
		t.Fatalf("client's bytes %q, %v", rest, err)
	}
}

func BenchmarkParseProxyV1(b *testing.B) {
	for _, tc := range []struct{ name, in string }{
		{"TCP4", "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n"},
		{"TCP6", "PROXY TCP6 2001:db8:85a3::8a2e:370:7334 2001:db8::ff 56324 443\r\n"},
	} {
		in := []byte(tc.in + "GET / HTTP/1.1\r\n")
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := ParseProxy(in, ProxyAllowAny); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseProxyV2(b *testing.B) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"IPv4", proxyV2(0x21, 0x11, proxyV4Addrs)},
		{"IPv6", proxyV2(0x21, 0x21, proxyV6Addrs)},
		{"IPv6+TLVs+CRC32C", proxyWithCRC(proxyV2(0x21, 0x21, proxyV6Addrs,
			proxyTLV(0x01, []byte("h2")), proxyTLV(0x02, []byte("example.com")), proxySSL))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := ParseProxy(tc.in, ProxyAllowAny); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendProxy(b *testing.B) {
	buf := make([]byte, 0, 128)
	for _, tc := range []struct {
		name     string
		v        ProxyVersion
		src, dst netip.AddrPort
	}{
		{"V1/TCP4", ProxyV1, proxyAP("192.168.0.1:56324"), proxyAP("192.168.0.11:443")},
		{"V1/TCP6", ProxyV1, proxyAP("[2001:db8:85a3::8a2e:370:7334]:56324"), proxyAP("[2001:db8::ff]:443")},
		{"V2/IPv4", ProxyV2, proxyAP("192.168.0.1:56324"), proxyAP("192.168.0.11:443")},
		{"V2/IPv6", ProxyV2, proxyAP("[2001:db8:85a3::8a2e:370:7334]:56324"), proxyAP("[2001:db8::ff]:443")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(AppendProxy(nil, tc.v, tc.src, tc.dst))))
			b.ReportAllocs()
			for b.Loop() {
				buf = AppendProxy(buf[:0], tc.v, tc.src, tc.dst)
			}
		})
	}
}

// FuzzParseProxy checks, for any bytes: a verdict of the documented kinds;
// a header no longer than the bytes and than ProxyHeaderMax, parsed alike
// alone, incomplete in every strict prefix, refused as not PROXY by a
// listener of the other version only, and written back by AppendProxy to
// a header that parses the same; a refusal that more bytes do not undo.
func FuzzParseProxy(f *testing.F) {
	for _, tc := range proxyValid {
		f.Add(tc.in)
	}
	for _, s := range []string{
		"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
		"PROXY TCP6 ::ffff:1.2.3.4 1:2:3:4:5:6:7:8 1 2\r\nxyz",
		"PROXY TCP6 1:2:3:4:5:6:1.2.3.4 ::1 1 2\r\n",
		"PROXY UNKNOWN\r\n\r\n",
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c",
		"GET / HTTP/1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Add(proxyV2(0x21, 0x11, proxyV4Addrs, []byte{0x01, 0x00, 0x05, 'h', '2'}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseProxy(b, ProxyAllowAny)
		switch {
		case err == ErrProxyIncomplete:
			if len(b) >= ProxyHeaderMax {
				t.Fatalf("incomplete at %d bytes", len(b))
			}
			return
		case err == ErrNotProxy:
			if _, _, err := ParseProxy(append(b[:len(b):len(b)], "PROXY \r\n"...), ProxyAllowAny); err != ErrNotProxy {
				t.Fatalf("not PROXY, then with more bytes %v", err)
			}
			return
		case err != nil:
			if !errors.Is(err, ErrProxyMalformed) || n != 0 || h != (ProxyHeader{}) {
				t.Fatalf("got %+v, %d, %v", h, n, err)
			}
			if _, _, err2 := ParseProxy(append(b[:len(b):len(b)], "\r\n\r\n"...), ProxyAllowAny); err2 != err {
				t.Fatalf("%v, then with more bytes %v", err, err2)
			}
			return
		}
		if n <= 0 || n > len(b) || n > ProxyHeaderMax {
			t.Fatalf("n %d of %d bytes", n, len(b))
		}
		if h.Version != ProxyV1 && h.Version != ProxyV2 {
			t.Fatalf("version %v", h.Version)
		}
		if h.Local != (!h.Src.IsValid() && !h.Dst.IsValid()) || h.Src.Addr().Is4In6() || h.Dst.Addr().Is4In6() ||
			h.Src.Addr().Zone() != "" || h.Dst.Addr().Zone() != "" {
			t.Fatalf("header %+v", h)
		}
		if h2, n2, err2 := ParseProxy(b[:n], ProxyAllowAny); h2 != h || n2 != n || err2 != nil {
			t.Fatalf("alone: %+v, %d, %v", h2, n2, err2)
		}
		step := 1
		if n > 256 {
			step = 7
		}
		for k := n - 1; k >= 0; k -= step {
			if _, _, err := ParseProxy(b[:k], ProxyAllowAny); err != ErrProxyIncomplete {
				t.Fatalf("first %d of %d bytes: %v", k, n, err)
			}
		}
		own, other := ProxyAllowV1, ProxyAllowV2
		if h.Version == ProxyV2 {
			own, other = other, own
		}
		if h2, n2, err2 := ParseProxy(b, own); h2 != h || n2 != n || err2 != nil {
			t.Fatalf("own version only: %+v, %d, %v", h2, n2, err2)
		}
		if _, _, err := ParseProxy(b, other); err != ErrNotProxy {
			t.Fatalf("other version only: %v", err)
		}
		out := AppendProxy(nil, h.Version, h.Src, h.Dst)
		if h2, n2, err2 := ParseProxy(out, ProxyAllowAny); h2 != h || n2 != len(out) || err2 != nil {
			t.Fatalf("%+v written %q, parsed %+v, %d, %v", h, out, h2, n2, err2)
		}
		if h.Version == ProxyV1 && !h.Local {
			proxyCheckV1Fields(t, b[:n], h)
		}
	})
}

// proxyCheckV1Fields checks a parsed v1 line against net/netip and strconv.
func proxyCheckV1Fields(t *testing.T, line []byte, h ProxyHeader) {
	f := strings.Split(strings.TrimSuffix(string(line), "\r\n"), " ")
	if len(f) != 6 {
		t.Fatalf("%q: %d fields", line, len(f))
	}
	for i, want := range []netip.AddrPort{h.Src, h.Dst} {
		a, err := netip.ParseAddr(f[2+i])
		if err != nil || a.Unmap() != want.Addr() || a.Is4() != (f[1] == "TCP4") {
			t.Fatalf("%q: netip reads %v, %v; parsed %v", f[2+i], a, err, want.Addr())
		}
		if p, err := strconv.ParseUint(f[4+i], 10, 16); err != nil || uint16(p) != want.Port() ||
			f[4+i] != strconv.FormatUint(p, 10) {
			t.Fatalf("port %q: strconv reads %v, %v; parsed %v", f[4+i], p, err, want.Port())
		}
	}
}

// FuzzProxyTextAddr compares the v1 address parsers with net/netip.
func FuzzProxyTextAddr(f *testing.F) {
	for _, s := range []string{
		"1.2.3.4", "255.255.255.255", "01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1",
		"::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9",
		"::ffff:1.2.3.4", "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "::1.2.3.4", "fe80::1%eth0",
		"1::2::3", ":1", "1:", ":::", "12345::", "abcd:EF01::", "1:2:3:4:5:6:7:8::", "::1.2.3",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := netip.ParseAddr(s)
		v4, ok4 := proxyParseIPv4([]byte(s))
		if ok4 != (err == nil && want.Is4()) || ok4 && netip.AddrFrom4(v4) != want {
			t.Errorf("IPv4 %q: got %v, %v; netip %v, %v", s, v4, ok4, want, err)
		}
		v6, ok6 := proxyParseIPv6([]byte(s))
		if ok6 != (err == nil && want.Is6() && want.Zone() == "") || ok6 && netip.AddrFrom16(v6) != want {
			t.Errorf("IPv6 %q: got %v, %v; netip %v, %v", s, v6, ok6, want, err)
		}
	})
}
