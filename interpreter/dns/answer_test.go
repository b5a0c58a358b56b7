package dns

import (
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// msgOf builds an answer to (qname, qtype) with the given rcode and
// sections, records in zone file syntax.
func msgOf(t testing.TB, qname string, qtype uint16, rcode int, answer, ns, extra []string) *mdns.Msg {
	t.Helper()
	m := new(mdns.Msg).SetQuestion(qname, qtype)
	m.Response, m.Rcode = true, rcode
	for _, s := range answer {
		m.Answer = append(m.Answer, parseRR(t, s))
	}
	for _, s := range ns {
		m.Ns = append(m.Ns, parseRR(t, s))
	}
	for _, s := range extra {
		m.Extra = append(m.Extra, parseRR(t, s))
	}
	return m
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

func TestReadAnswerAddresses(t *testing.T) {
	const soaText = "example. 30 IN SOA ns.example. admin.example. 1 60 60 60 10"
	tests := []struct {
		name    string
		qtype   uint16
		rcode   int
		answer  []string
		ns      []string
		want    records
		wantErr string
	}{
		{"A", mdns.TypeA, 0, []string{"web.example. 60 IN A 192.0.2.1", "web.example. 30 IN A 192.0.2.2"}, nil,
			records{ttl: 30, addrs: addrs("192.0.2.1", "192.0.2.2")}, ""},
		{"AAAA, mapped IPv4 unmapped", mdns.TypeAAAA, 0, []string{"web.example. 60 IN AAAA 2001:db8::1", "web.example. 60 IN AAAA ::ffff:192.0.2.1"}, nil,
			records{ttl: 60, addrs: addrs("2001:db8::1", "192.0.2.1")}, ""},
		{"owner case ignored", mdns.TypeA, 0, []string{"WEB.Example. 60 IN A 192.0.2.1"}, nil,
			records{ttl: 60, addrs: addrs("192.0.2.1")}, ""},
		{"other names and types ignored", mdns.TypeA, 0, []string{"other.example. 5 IN A 192.0.2.9", "web.example. 5 IN TXT \"x\"", "web.example. 60 IN A 192.0.2.1"}, nil,
			records{ttl: 60, addrs: addrs("192.0.2.1")}, ""},
		{"unusable addresses left out, their TTL kept", mdns.TypeA, 0, []string{"web.example. 5 IN A 0.0.0.0", "web.example. 60 IN A 224.0.0.1", "web.example. 60 IN A 255.255.255.255", "web.example. 60 IN A 192.0.2.1"}, nil,
			records{ttl: 5, addrs: addrs("192.0.2.1")}, ""},
		{"CNAME chain", mdns.TypeA, 0, []string{"web.example. 20 IN CNAME a.example.", "a.example. 300 IN CNAME b.example.", "b.example. 60 IN A 192.0.2.1"}, nil,
			records{ttl: 20, addrs: addrs("192.0.2.1")}, ""},
		{"CNAME to nothing: no records", mdns.TypeA, 0, []string{"web.example. 20 IN CNAME a.example."}, []string{soaText},
			records{ttl: 10}, ""},
		{"NODATA, SOA negative TTL is the smaller of TTL and MINIMUM", mdns.TypeA, 0, nil, []string{soaText},
			records{ttl: 10}, ""},
		{"NODATA without SOA", mdns.TypeA, 0, nil, nil, records{ttl: 0}, ""},
		{"NXDOMAIN", mdns.TypeA, mdns.RcodeNameError, nil, []string{"example. 5 IN SOA ns.example. admin.example. 1 60 60 60 10"},
			records{notFound: true, ttl: 5}, ""},
		{"NXDOMAIN after a CNAME", mdns.TypeA, mdns.RcodeNameError, []string{"web.example. 3 IN CNAME gone.example."}, []string{soaText},
			records{notFound: true, ttl: 3}, ""},
		{"CNAME loop", mdns.TypeA, 0, []string{"web.example. 20 IN CNAME a.example.", "a.example. 20 IN CNAME web.example."}, nil,
			records{}, "CNAME loop at web.example."},
		{"CNAME chain too long", mdns.TypeA, 0, []string{
			"web.example. 1 IN CNAME c1.example.", "c1.example. 1 IN CNAME c2.example.", "c2.example. 1 IN CNAME c3.example.",
			"c3.example. 1 IN CNAME c4.example.", "c4.example. 1 IN CNAME c5.example.", "c5.example. 1 IN CNAME c6.example.",
			"c6.example. 1 IN CNAME c7.example.", "c7.example. 1 IN CNAME c8.example.", "c8.example. 1 IN CNAME c9.example.",
		}, nil, records{}, "CNAME chain from web.example. longer than 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := msgOf(t, "web.example.", tt.qtype, tt.rcode, tt.answer, tt.ns, nil)
			got, err := readAnswer(m, "web.example.", tt.qtype)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.notFound != tt.want.notFound || got.ttl != tt.want.ttl || !slices.Equal(got.addrs, tt.want.addrs) {
				t.Errorf("records %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSRVEndpoints(t *testing.T) {
	m := msgOf(t, "_web._tcp.example.", mdns.TypeSRV, 0, []string{
		"_web._tcp.example. 60 IN SRV 10 6 8080 a.example.",
		"_web._tcp.example. 60 IN SRV 10 0 8081 b.example.",
		"_web._tcp.example. 60 IN SRV 10 1 8082 c.example.",
		"_web._tcp.example. 60 IN SRV 10 9 0 d.example.", // port 0: no service
		"_web._tcp.example. 60 IN SRV 5 9 80 .",          // decidedly not available
		"_web._tcp.example. 30 IN SRV 20 100 9090 e.example.",
	}, nil, []string{
		"a.example. 40 IN A 192.0.2.1",
		"A.example. 50 IN AAAA 2001:db8::1",
		"e.example. 5 IN A 192.0.2.5",
	})
	rec, err := readAnswer(m, "_web._tcp.example.", mdns.TypeSRV)
	if err != nil {
		t.Fatal(err)
	}
	if rec.ttl != 30 {
		t.Errorf("ttl %d, want 30", rec.ttl)
	}
	var group []string
	for _, s := range rec.srvs {
		group = append(group, s.Target)
	}
	if want := []string{"a.example.", "b.example.", "c.example."}; !slices.Equal(group, want) {
		t.Fatalf("group %q, want %q", group, want)
	}
	if len(rec.glue) != 1 || rec.glue["a.example."].ttl != 40 || !slices.Equal(rec.glue["a.example."].addrs, addrs("192.0.2.1", "2001:db8::1")) {
		t.Fatalf("glue %+v, want a.example. only, with both addresses, ttl 40", rec.glue)
	}
	got := srvEndpoints(rec.srvs, map[string][]netip.Addr{
		"a.example.": rec.glue["a.example."].addrs,
		"b.example.": addrs("192.0.2.2"),
		"c.example.": addrs("192.0.2.2"), // same address, another port
	})
	want := []interpreter.Endpoint{
		{Addr: netip.MustParseAddrPort("192.0.2.1:8080"), Weight: 3},
		{Addr: netip.MustParseAddrPort("192.0.2.2:8081"), Weight: zeroWeight},
		{Addr: netip.MustParseAddrPort("192.0.2.2:8082"), Weight: 1},
		{Addr: netip.MustParseAddrPort("[2001:db8::1]:8080"), Weight: 3},
	}
	if !slices.Equal(got, want) {
		t.Errorf("endpoints %v, want %v", got, want)
	}
}

func TestSRVEndpointsMergeDuplicates(t *testing.T) {
	srvs := []*mdns.SRV{
		parseRR(t, "_x._tcp.example. 1 IN SRV 0 2 80 a.example.").(*mdns.SRV),
		parseRR(t, "_x._tcp.example. 1 IN SRV 0 3 80 b.example.").(*mdns.SRV),
	}
	got := srvEndpoints(srvs, map[string][]netip.Addr{"a.example.": addrs("192.0.2.1"), "b.example.": addrs("192.0.2.1")})
	want := []interpreter.Endpoint{{Addr: netip.MustParseAddrPort("192.0.2.1:80"), Weight: 5}}
	if !slices.Equal(got, want) {
		t.Errorf("endpoints %v, want %v", got, want)
	}
}

func TestHostEndpoints(t *testing.T) {
	got := hostEndpoints(addrs("192.0.2.2", "2001:db8::1", "192.0.2.1", "192.0.2.2"), 443)
	want := []interpreter.Endpoint{
		{Addr: netip.MustParseAddrPort("192.0.2.1:443"), Weight: 1},
		{Addr: netip.MustParseAddrPort("192.0.2.2:443"), Weight: 1},
		{Addr: netip.MustParseAddrPort("[2001:db8::1]:443"), Weight: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("endpoints %v, want %v", got, want)
	}
}

// FuzzReadAnswer unpacks arbitrary bytes as a DNS message and reads it as
// an answer to its own question (or to example.com.) for A, AAAA and SRV:
// nothing may panic, and every endpoint built must be one the balancer
// can use.
func FuzzReadAnswer(f *testing.F) {
	seeds := []*mdns.Msg{
		msgOf(f, "web.example.", mdns.TypeA, 0, []string{"web.example. 20 IN CNAME a.example.", "a.example. 60 IN A 192.0.2.1", "a.example. 60 IN A 0.0.0.0"}, nil, nil),
		msgOf(f, "web.example.", mdns.TypeAAAA, 0, []string{"web.example. 60 IN AAAA 2001:db8::1", "web.example. 60 IN AAAA ::ffff:192.0.2.1"}, nil, nil),
		msgOf(f, "web.example.", mdns.TypeA, mdns.RcodeNameError, nil, []string{"example. 5 IN SOA ns.example. admin.example. 1 60 60 60 10"}, nil),
		msgOf(f, "_web._tcp.example.", mdns.TypeSRV, 0, []string{
			"_web._tcp.example. 60 IN SRV 10 0 8080 a.example.", "_web._tcp.example. 60 IN SRV 10 65535 8081 a.example.",
			"_web._tcp.example. 60 IN SRV 20 1 80 b.example.", "_web._tcp.example. 60 IN SRV 0 1 80 .",
		}, nil, []string{"a.example. 40 IN A 192.0.2.1", "a.example. 50 IN AAAA 2001:db8::1", "a.example. 50 IN AAAA ::"}),
		msgOf(f, "web.example.", mdns.TypeA, 0, []string{"web.example. 20 IN CNAME web.example."}, nil, nil),
	}
	for _, m := range seeds {
		b, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m := new(mdns.Msg)
		if m.Unpack(b) != nil {
			return
		}
		qname := "example.com."
		if len(m.Question) > 0 {
			qname = mdns.CanonicalName(m.Question[0].Name)
		}
		for _, qtype := range []uint16{mdns.TypeA, mdns.TypeAAAA, mdns.TypeSRV} {
			rec, err := readAnswer(m, qname, qtype)
			if err != nil {
				if !strings.Contains(err.Error(), "CNAME") {
					t.Fatalf("unexpected error %v", err)
				}
				continue
			}
			for _, a := range rec.addrs {
				if !usable(a) || a.Is4In6() {
					t.Fatalf("unusable address %v", a)
				}
			}
			checkEndpoints(t, hostEndpoints(rec.addrs, 80))
			targets := make(map[string][]netip.Addr)
			for name, g := range rec.glue {
				targets[name] = g.addrs
			}
			for _, s := range rec.srvs {
				if s.Port == 0 || s.Target == "." || s.Priority != rec.srvs[0].Priority {
					t.Fatalf("SRV record %v in the group", s)
				}
			}
			checkEndpoints(t, srvEndpoints(rec.srvs, targets))
		}
	})
}

// checkEndpoints fails t unless eps are valid, distinct and sorted.
func checkEndpoints(t *testing.T, eps []interpreter.Endpoint) {
	t.Helper()
	for i, e := range eps {
		if !usable(e.Addr.Addr()) || e.Addr.Port() == 0 || !(e.Weight > 0) || math.IsInf(e.Weight, 0) {
			t.Fatalf("bad endpoint %v*%v", e.Addr, e.Weight)
		}
		if i > 0 && eps[i-1].Addr.Compare(e.Addr) >= 0 {
			t.Fatalf("endpoints not sorted and distinct: %v", eps)
		}
	}
}
