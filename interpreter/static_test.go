package interpreter

import (
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// parseTests are also the seed corpus of FuzzParseEndpoint.
var parseTests = []struct {
	in      string
	want    Endpoint
	wantErr string // substring of the error; "" means success
}{
	{in: "127.0.0.1:80", want: ep("127.0.0.1:80", 1)},
	{in: "127.0.0.1:80*2", want: ep("127.0.0.1:80", 2)},
	{in: "10.0.0.1:65535*0.25", want: ep("10.0.0.1:65535", 0.25)},
	{in: "10.0.0.1:1*1e3", want: ep("10.0.0.1:1", 1000)},
	{in: "10.0.0.1:8080*1", want: ep("10.0.0.1:8080", 1)},
	{in: "10.0.0.1:0080", want: ep("10.0.0.1:80", 1)},
	{in: "[::1]:80*2", want: ep("[::1]:80", 2)},
	{in: "[2001:db8::1]:443", want: ep("[2001:db8::1]:443", 1)},
	{in: "[::ffff:192.0.2.1]:80", want: ep("[::ffff:192.0.2.1]:80", 1)},
	{in: "[fe80::1%eth0]:22*3", want: ep("[fe80::1%eth0]:22", 3)},

	{in: "", wantErr: `bad endpoint "": missing address`},
	{in: "127.0.0.1:80*x", wantErr: `bad endpoint "127.0.0.1:80*x": weight "x" is not a number`},
	{in: "127.0.0.1:80*", wantErr: `missing weight after "*"`},
	{in: "127.0.0.1:80*0", wantErr: `weight "0" must be greater than 0`},
	{in: "127.0.0.1:80*-1", wantErr: `weight "-1" must be greater than 0`},
	{in: "127.0.0.1:80*1e-400", wantErr: `weight "1e-400" must be greater than 0`},
	{in: "127.0.0.1:80*1e400", wantErr: `weight "1e400" is out of range`},
	{in: "127.0.0.1:80*NaN", wantErr: `weight "NaN" is not a finite number`},
	{in: "127.0.0.1:80*+Inf", wantErr: `weight "+Inf" is not a finite number`},
	{in: "127.0.0.1:80*2*3", wantErr: `weight "2*3" is not a number`},
	{in: "foo:80", wantErr: `bad endpoint "foo:80": "foo" is not an IP address (static names take literal addresses)`},
	{in: "example.com:443*2", wantErr: `"example.com" is not an IP address`},
	{in: "127.0.0.1*2:80", wantErr: `"127.0.0.1*2" is not an IP address`},
	{in: " 127.0.0.1:80", wantErr: `" 127.0.0.1" is not an IP address`},
	{in: "127.0.0.1", wantErr: `bad endpoint "127.0.0.1": missing port`},
	{in: "127.0.0.1*2", wantErr: `missing port`},
	{in: "127.0.0.1:", wantErr: `missing port`},
	{in: "127.0.0.1:*2", wantErr: `missing port`},
	{in: ":80", wantErr: `missing IP address`},
	{in: "127.0.0.1:0", wantErr: `port 0 is out of range (1-65535)`},
	{in: "127.0.0.1:65536", wantErr: `port 65536 is out of range (1-65535)`},
	{in: "127.0.0.1:99999999999999999999", wantErr: `is out of range (1-65535)`},
	{in: "127.0.0.1:http", wantErr: `port "http" is not a number`},
	{in: "127.0.0.1:-80", wantErr: `port "-80" is not a number`},
	{in: "127.0.0.1:+80", wantErr: `port "+80" is not a number`},
	{in: "[::1]", wantErr: `missing port (write [::1]:port)`},
	{in: "[::1]:", wantErr: `missing port`},
	{in: "[::1]80", wantErr: `unexpected "80" after "]"`},
	{in: "[::1:80", wantErr: `missing "]"`},
	{in: "::1", wantErr: `missing port (IPv6 addresses take brackets: [::1]:port)`},
	{in: "2001:db8::1:80", wantErr: `missing port`},
	{in: "fe80::x:80", wantErr: `must be in brackets`},
	{in: "[127.0.0.1]:80", wantErr: `IPv4 address "127.0.0.1" must not be in brackets`},
	{in: "[]:80", wantErr: `"" is not an IP address`},
	{in: "[fe80::1%]:80", wantErr: `"fe80::1%" is not an IP address`},
	{in: "[::1]:80*x", wantErr: `weight "x" is not a number`},
}

func ep(addr string, weight float64) Endpoint {
	return Endpoint{Addr: netip.MustParseAddrPort(addr), Weight: weight}
}

func TestParseEndpoint(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseEndpoint(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseEndpoint(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "bad endpoint "+strconv.Quote(tt.in)+": ") {
					t.Errorf("error %q does not begin by quoting the input", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseEndpoint(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
}

// format writes e in the form ParseEndpoint reads.
func format(e Endpoint) string {
	if e.Weight == 1 {
		return e.Addr.String()
	}
	return e.Addr.String() + "*" + strconv.FormatFloat(e.Weight, 'g', -1, 64)
}

func FuzzParseEndpoint(f *testing.F) {
	for _, tt := range parseTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseEndpoint(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "bad endpoint "+strconv.Quote(s)+": ") {
				t.Fatalf("ParseEndpoint(%q): error %q does not begin by quoting the input", s, err)
			}
			return
		}
		if !(e.Weight > 0) || math.IsInf(e.Weight, 0) {
			t.Fatalf("ParseEndpoint(%q): weight %v, want positive and finite", s, e.Weight)
		}
		if !e.Addr.IsValid() || e.Addr.Port() == 0 {
			t.Fatalf("ParseEndpoint(%q): address %v, want a valid address with a port", s, e.Addr)
		}
		again, err := ParseEndpoint(format(e))
		if err != nil || again != e {
			t.Fatalf("ParseEndpoint(%q) = %v; formatted as %q it parses as %v, %v", s, e, format(e), again, err)
		}
	})
}

// recorder is a Sink that keeps what it is given, as a test may.
type recorder struct{ got []Resolution }

func (r *recorder) Update(res Resolution) { r.got = append(r.got, res) }

func TestStaticResolve(t *testing.T) {
	config := map[string][]Endpoint{
		"web":   {ep("10.0.0.1:80", 1), ep("10.0.0.2:80", 3)},
		"empty": {},
	}
	s := NewStatic(config)
	config["web"][0] = ep("192.0.2.1:1", 1) // NewStatic copied what it was given
	config["late"] = nil

	tests := []struct {
		name string
		want []Resolution
	}{
		{name: "web", want: []Resolution{BoundTo([]Endpoint{ep("10.0.0.1:80", 1), ep("10.0.0.2:80", 3)})}},
		{name: "empty", want: []Resolution{BoundTo([]Endpoint{})}},
		{name: "late", want: []Resolution{NotFoundAnswer()}},
		{name: "", want: []Resolution{NotFoundAnswer()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			s.Resolve(tt.name, &r)
			if !reflect.DeepEqual(r.got, tt.want) {
				t.Errorf("Resolve(%q) delivered %v before returning, want %v", tt.name, r.got, tt.want)
			}
		})
	}
}

func TestStaticResolveDeliversCopies(t *testing.T) {
	s := NewStatic(map[string][]Endpoint{"web": {ep("10.0.0.1:80", 1)}})
	var first, second recorder
	s.Resolve("web", &first)()
	first.got[0].Endpoints[0].Weight = 99
	s.Resolve("web", &second)
	if w := second.got[0].Endpoints[0].Weight; w != 1 {
		t.Errorf("a sink editing its slice changed the next resolution: weight %v, want 1", w)
	}
}

func TestStaticNames(t *testing.T) {
	tests := []struct {
		name string
		s    *Static
		want []string
	}{
		{"zero value", &Static{}, []string{}},
		{"nil map", NewStatic(nil), []string{}},
		{"sorted", NewStatic(map[string][]Endpoint{"web": nil, "api": nil, "db": nil}), []string{"api", "db", "web"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.Names(); !slices.Equal(got, tt.want) {
				t.Errorf("Names() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestStaticZeroValue(t *testing.T) {
	var s Static
	var r recorder
	s.Resolve("web", &r)
	if len(r.got) != 1 || r.got[0].State != NotFound {
		t.Errorf("zero Static answered %v, want not found", r.got)
	}
}

// Reconfigure answers again exactly the watches whose name changed: new
// endpoints, a name that went (not found) or came; a stopped watch and an
// unchanged name hear nothing.
func TestStaticReconfigure(t *testing.T) {
	s := NewStatic(map[string][]Endpoint{
		"web": {ep("10.0.0.1:80", 1)},
		"db":  {ep("10.0.0.9:5432", 1)},
		"old": {ep("10.0.0.5:80", 1)},
	})
	var web, db, old, late, stopped recorder
	s.Resolve("web", &web)
	s.Resolve("db", &db)
	s.Resolve("old", &old)
	s.Resolve("late", &late)
	s.Resolve("web", &stopped)()
	if !s.CanTake(&StaticSettings{}) {
		t.Fatal("CanTake refused static settings")
	}
	s.Reconfigure(&StaticSettings{Names: map[string][]Endpoint{
		"web":  {ep("10.0.0.1:80", 1), ep("10.0.0.2:80", 2)},
		"db":   {ep("10.0.0.9:5432", 1)},
		"late": {ep("10.0.0.7:80", 1)},
	}})
	checks := []struct {
		name string
		r    *recorder
		want []Resolution
	}{
		{"web", &web, []Resolution{BoundTo([]Endpoint{ep("10.0.0.1:80", 1)}), BoundTo([]Endpoint{ep("10.0.0.1:80", 1), ep("10.0.0.2:80", 2)})}},
		{"db", &db, []Resolution{BoundTo([]Endpoint{ep("10.0.0.9:5432", 1)})}},
		{"old", &old, []Resolution{BoundTo([]Endpoint{ep("10.0.0.5:80", 1)}), NotFoundAnswer()}},
		{"late", &late, []Resolution{NotFoundAnswer(), BoundTo([]Endpoint{ep("10.0.0.7:80", 1)})}},
		{"stopped", &stopped, []Resolution{BoundTo([]Endpoint{ep("10.0.0.1:80", 1)})}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.r.got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.r.got, c.want)
		}
	}
	if got := s.Names(); !reflect.DeepEqual(got, []string{"db", "late", "web"}) {
		t.Errorf("Names() = %v after Reconfigure", got)
	}
}
