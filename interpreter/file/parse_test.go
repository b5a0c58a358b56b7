package file

import (
	"math"
	"net/netip"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

func ep(addr string, weight float64) interpreter.Endpoint {
	return interpreter.Endpoint{Addr: netip.MustParseAddrPort(addr), Weight: weight}
}

// parseTests are also the seed corpus of FuzzParseFile.
var parseTests = []struct {
	name    string
	in      string
	want    []interpreter.Endpoint
	wantErr string // substring of the error; "" means success
}{
	{name: "empty", in: ""},
	{name: "blank lines", in: "\n\n  \t\n"},
	{name: "comments only", in: "# web servers\n   # none yet\n"},
	{name: "one", in: "127.0.0.1 9991\n", want: []interpreter.Endpoint{ep("127.0.0.1:9991", 1)}},
	{name: "no final newline", in: "127.0.0.1 9991", want: []interpreter.Endpoint{ep("127.0.0.1:9991", 1)}},
	{name: "weights", in: "10.0.0.1 80 * 2\n10.0.0.2 80 * 0.5\n10.0.0.3 80\n10.0.0.4 80 * 1e3\n",
		want: []interpreter.Endpoint{ep("10.0.0.1:80", 2), ep("10.0.0.2:80", 0.5), ep("10.0.0.3:80", 1), ep("10.0.0.4:80", 1000)}},
	{name: "comments and blanks", in: "# pool a\n\n10.0.0.1 80 # primary\n  10.0.0.2\t80\t*\t3  #spare\n#10.0.0.9 80\n",
		want: []interpreter.Endpoint{ep("10.0.0.1:80", 1), ep("10.0.0.2:80", 3)}},
	{name: "crlf", in: "10.0.0.1 80\r\n10.0.0.2 81 * 2\r\n",
		want: []interpreter.Endpoint{ep("10.0.0.1:80", 1), ep("10.0.0.2:81", 2)}},
	{name: "ipv6", in: "::1 8080\n2001:db8::7 443 * 4\nfe80::1%eth0 22\n::ffff:192.0.2.1 80\n",
		want: []interpreter.Endpoint{ep("[::1]:8080", 1), ep("[2001:db8::7]:443", 4), ep("[fe80::1%eth0]:22", 1), ep("[::ffff:192.0.2.1]:80", 1)}},
	{name: "leading zeros in port", in: "10.0.0.1 0080", want: []interpreter.Endpoint{ep("10.0.0.1:80", 1)}},
	{name: "same ip other port", in: "10.0.0.1 80\n10.0.0.1 81\n",
		want: []interpreter.Endpoint{ep("10.0.0.1:80", 1), ep("10.0.0.1:81", 1)}},

	{name: "host name", in: "10.0.0.1 80\nweb1.example.com 80\n", wantErr: `line 2: "web1.example.com" is not an IP address (host names are not resolved)`},
	{name: "missing port", in: "10.0.0.1\n", wantErr: `line 1: missing port after "10.0.0.1"`},
	{name: "host:port", in: "10.0.0.1:80\n", wantErr: `line 1: "10.0.0.1:80" includes a port: write the address and the port as two fields, "10.0.0.1 80"`},
	{name: "ipv6 in brackets", in: "[::1] 80\n", wantErr: `line 1: write the IPv6 address "::1" without brackets`},
	{name: "port zero", in: "10.0.0.1 0\n", wantErr: `line 1: port "0" is out of range (1-65535)`},
	{name: "port too big", in: "\n\n10.0.0.1 65536\n", wantErr: `line 3: port "65536" is out of range (1-65535)`},
	{name: "port name", in: "10.0.0.1 http\n", wantErr: `line 1: port "http" is not a number`},
	{name: "negative port", in: "10.0.0.1 -80\n", wantErr: `port "-80" is not a number`},
	{name: "missing weight", in: "10.0.0.1 80 *\n", wantErr: `line 1: missing weight after "*"`},
	{name: "weight glued to star", in: "10.0.0.1 80 *2\n", wantErr: `line 1: "*2": separate "*" from the weight with a space`},
	{name: "weight without star", in: "10.0.0.1 80 2\n", wantErr: `line 1: unexpected "2" after the port`},
	{name: "wrong separator", in: "10.0.0.1 80 x 2\n", wantErr: `line 1: unexpected "x" after the port`},
	{name: "trailing field", in: "10.0.0.1 80 * 2 extra\n", wantErr: `line 1: unexpected "extra" after the weight`},
	{name: "weight zero", in: "10.0.0.1 80 * 0\n", wantErr: `line 1: weight "0" must be greater than 0`},
	{name: "weight negative", in: "10.0.0.1 80 * -1\n", wantErr: `weight "-1" must be greater than 0`},
	{name: "weight underflow", in: "10.0.0.1 80 * 1e-400\n", wantErr: `weight "1e-400" must be greater than 0`},
	{name: "weight overflow", in: "10.0.0.1 80 * 1e400\n", wantErr: `weight "1e400" is out of range`},
	{name: "weight nan", in: "10.0.0.1 80 * NaN\n", wantErr: `weight "NaN" is not a finite number`},
	{name: "weight inf", in: "10.0.0.1 80 * inf\n", wantErr: `weight "inf" is not a finite number`},
	{name: "weight word", in: "10.0.0.1 80 * heavy\n", wantErr: `weight "heavy" is not a number`},
	{name: "duplicate", in: "10.0.0.1 80\n10.0.0.2 80\n10.0.0.1 80 * 2\n", wantErr: `line 3: 10.0.0.1:80 is already listed on line 1`},
	{name: "long garbage is cut", in: strings.Repeat("x", 1000) + " 80\n", wantErr: `line 1: "` + strings.Repeat("x", 64) + `"... is not an IP address`},
	{name: "nul byte", in: "10.0.0.1\x00 80\n", wantErr: `line 1: "10.0.0.1\x00" is not an IP address`},
}

func TestParseFile(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFile([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseFile(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("parseFile(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

var lineErr = regexp.MustCompile(`^line ([0-9]+): `)

// formatFile writes eps in the form parseFile reads.
func formatFile(eps []interpreter.Endpoint) string {
	var b strings.Builder
	for _, e := range eps {
		b.WriteString(e.Addr.Addr().String() + " " + strconv.Itoa(int(e.Addr.Port())))
		if e.Weight != 1 {
			b.WriteString(" * " + strconv.FormatFloat(e.Weight, 'g', -1, 64))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

func FuzzParseFile(f *testing.F) {
	for _, tt := range parseTests {
		f.Add([]byte(tt.in))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		eps, err := parseFile(data)
		if err != nil {
			m := lineErr.FindStringSubmatch(err.Error())
			if m == nil {
				t.Fatalf("parseFile(%q): error %q does not begin with its line", data, err)
			}
			lines := strings.Count(string(data), "\n") + 1
			if n, _ := strconv.Atoi(m[1]); n < 1 || n > lines {
				t.Fatalf("parseFile(%q): error %q names line %d of %d", data, err, n, lines)
			}
			return
		}
		seen := make(map[netip.AddrPort]bool)
		for _, e := range eps {
			if !(e.Weight > 0) || math.IsInf(e.Weight, 0) {
				t.Fatalf("parseFile(%q): %v has weight %v, want positive and finite", data, e.Addr, e.Weight)
			}
			if !e.Addr.IsValid() || e.Addr.Port() == 0 {
				t.Fatalf("parseFile(%q): address %v, want a valid address with a port", data, e.Addr)
			}
			if seen[e.Addr] {
				t.Fatalf("parseFile(%q): %v listed twice", data, e.Addr)
			}
			seen[e.Addr] = true
		}
		again, err := parseFile([]byte(formatFile(eps)))
		if err != nil || len(again) != len(eps) || (len(eps) > 0 && !reflect.DeepEqual(again, eps)) {
			t.Fatalf("parseFile(%q) = %v; formatted as %q it parses as %v, %v", data, eps, formatFile(eps), again, err)
		}
	})
}
