package destination

import (
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/destination/destpb"
)

func ipv4(n uint32, port uint32) *destpb.TcpAddress {
	return &destpb.TcpAddress{Ip: &destpb.IPAddress{Ip: &destpb.IPAddress_Ipv4{Ipv4: n}}, Port: port}
}

func ipv6(first, last uint64, port uint32) *destpb.TcpAddress {
	return &destpb.TcpAddress{Ip: &destpb.IPAddress{Ip: &destpb.IPAddress_Ipv6{Ipv6: &destpb.IPv6{First: first, Last: last}}}, Port: port}
}

func TestWireAddr(t *testing.T) {
	tests := []struct {
		name    string
		in      *destpb.TcpAddress
		want    string // "" when rejected
		wantErr string
	}{
		{"ipv4", ipv4(0x0A010203, 8080), "10.1.2.3:8080", ""},
		{"ipv4 high", ipv4(0xC0A80001, 65535), "192.168.0.1:65535", ""},
		{"loopback", ipv4(0x7F000001, 1), "127.0.0.1:1", ""},
		{"ipv6", ipv6(0x20010db800000000, 1, 443), "[2001:db8::1]:443", ""},
		{"ipv6 halves", ipv6(0x20010db8_00010002, 0x0003000400050006, 80), "[2001:db8:1:2:3:4:5:6]:80", ""},
		{"ipv6 loopback", ipv6(0, 1, 80), "[::1]:80", ""},
		{"ipv4-mapped", ipv6(0, 0x0000ffff0A010203, 80), "10.1.2.3:80", ""},
		{"port 0", ipv4(0x0A010203, 0), "", "10.1.2.3: port 0 is out of range (1-65535)"},
		{"port 65536", ipv4(0x0A010203, 65536), "", "port 65536 is out of range"},
		{"port max", ipv4(0x0A010203, math.MaxUint32), "", "port 4294967295 is out of range"},
		{"nil", nil, "", "missing address"},
		{"no ip", &destpb.TcpAddress{Port: 80}, "", "address with no IP (port 80)"},
		{"empty ip", &destpb.TcpAddress{Ip: &destpb.IPAddress{}, Port: 80}, "", "address with no IP"},
		{"ipv6 nil", &destpb.TcpAddress{Ip: &destpb.IPAddress{Ip: &destpb.IPAddress_Ipv6{}}, Port: 80}, "", "IPv6 address without its value"},
		{"unspecified v4", ipv4(0, 80), "", "0.0.0.0 is not a unicast address"},
		{"unspecified v6", ipv6(0, 0, 80), "", ":: is not a unicast address"},
		{"broadcast", ipv4(0xFFFFFFFF, 80), "", "255.255.255.255 is not a unicast address"},
		{"multicast v4", ipv4(0xE0000001, 80), "", "224.0.0.1 is not a unicast address"},
		{"multicast v6", ipv6(0xff02000000000000, 1, 80), "", "ff02::1 is not a unicast address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wireAddr(tt.in)
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("wireAddr = %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != netip.MustParseAddrPort(tt.want) {
				t.Fatalf("wireAddr = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// FuzzWireAddr converts arbitrary wire addresses, after a trip through the
// wire encoding: it must not panic, and an address it accepts is a valid
// unicast address with a port 1-65535 that converts back to itself.
func FuzzWireAddr(f *testing.F) {
	f.Add(uint8(0), uint32(0x0A010203), uint64(0), uint64(0), uint32(8080))
	f.Add(uint8(1), uint32(0), uint64(0x20010db800000000), uint64(1), uint32(443))
	f.Add(uint8(1), uint32(0), uint64(0), uint64(0x0000ffff0A010203), uint32(80))
	f.Add(uint8(0), uint32(0), uint64(0), uint64(0), uint32(0))
	f.Add(uint8(2), uint32(1), uint64(1), uint64(1), uint32(70000))
	f.Fuzz(func(t *testing.T, kind uint8, v4 uint32, first, last uint64, port uint32) {
		var in *destpb.TcpAddress
		switch kind % 5 {
		case 0:
			in = ipv4(v4, port)
		case 1:
			in = ipv6(first, last, port)
		case 2:
			in = &destpb.TcpAddress{Port: port}
		case 3:
			in = &destpb.TcpAddress{Ip: &destpb.IPAddress{Ip: &destpb.IPAddress_Ipv6{}}, Port: port}
		}
		if in != nil {
			b, err := proto.Marshal(in)
			if err != nil {
				t.Fatal(err)
			}
			in = new(destpb.TcpAddress)
			if err := proto.Unmarshal(b, in); err != nil {
				t.Fatal(err)
			}
		}
		ap, err := wireAddr(in)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an error without a message")
			}
			return
		}
		a := ap.Addr()
		switch {
		case !ap.IsValid() || ap.Port() == 0 || uint32(ap.Port()) != port:
			t.Fatalf("accepted %v from port %d", ap, port)
		case a.IsUnspecified() || a.IsMulticast() || a.Is4In6() || a.Zone() != "":
			t.Fatalf("accepted %v", ap)
		case kind%5 == 0 && a.As4() != [4]byte{byte(v4 >> 24), byte(v4 >> 16), byte(v4 >> 8), byte(v4)}:
			t.Fatalf("%08x converted to %v", v4, a)
		}
		if back, err := wireAddr(toWire(ap)); err != nil || back != ap {
			t.Fatalf("%v converted back to %v, %v", ap, back, err)
		}
	})
}

// The pool of addresses the update-sequence fuzzer draws from: key is the
// endpoint each stands for, invalid when it must be dropped. The mapped
// address is the same endpoint as the first.
var fuzzPool = []struct {
	wire *destpb.TcpAddress
	key  netip.AddrPort
}{
	{ipv4(0x0A000001, 80), netip.MustParseAddrPort("10.0.0.1:80")},
	{ipv4(0x0A000002, 80), netip.MustParseAddrPort("10.0.0.2:80")},
	{ipv4(0x0A000001, 81), netip.MustParseAddrPort("10.0.0.1:81")},
	{ipv6(0x20010db800000000, 1, 80), netip.MustParseAddrPort("[2001:db8::1]:80")},
	{ipv6(0, 0x0000ffff0A000001, 80), netip.MustParseAddrPort("10.0.0.1:80")},
	{ipv4(0x0A000003, 0), netip.AddrPort{}},
	{ipv4(0x0A000003, 70000), netip.AddrPort{}},
	{&destpb.TcpAddress{Port: 80}, netip.AddrPort{}},
	{ipv4(0, 80), netip.AddrPort{}},
}

// setModel is the endpointSet's semantics written plainly.
type setModel struct {
	stale, missing bool
	eps            map[netip.AddrPort]float64
}

// answer is the model's Resolution, endpoints sorted.
func (m *setModel) answer() interpreter.Resolution {
	if m.missing {
		return interpreter.NotFoundAnswer()
	}
	eps := []interpreter.Endpoint{}
	for ap, w := range m.eps {
		eps = append(eps, interpreter.Endpoint{Addr: ap, Weight: w})
	}
	slices.SortFunc(eps, func(a, b interpreter.Endpoint) int { return a.Addr.Compare(b.Addr) })
	return interpreter.BoundTo(eps)
}

// FuzzUpdateSequence applies arbitrary sequences of updates (two bytes an
// update: what, and which addresses or weight) and new streams to an
// endpointSet and to setModel: the answers must agree after every step,
// and the dropped addresses must be the invalid ones.
func FuzzUpdateSequence(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 1, 0})
	f.Add([]byte{0, 0, 3, 0, 0, 1, 4, 0, 0, 2})
	f.Add([]byte{6, 0x10, 2, 0, 8, 0, 7, 0x14, 5, 0, 0, 3})
	f.Add([]byte{0, 0x25, 0, 0x16, 1, 5, 1, 4, 9, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		var s endpointSet
		m := setModel{eps: map[netip.AddrPort]float64{}}
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%10, ops[i+1]
			picks := []int{int(arg%16) % len(fuzzPool)}
			if op >= 6 {
				picks = append(picks, int(arg/16)%len(fuzzPool))
			}
			var u *destpb.Update
			switch op {
			case 0, 6:
				set := &destpb.WeightedAddrSet{}
				for j, p := range picks {
					set.Addrs = append(set.Addrs, &destpb.WeightedAddr{Addr: fuzzPool[p].wire, Weight: uint32(arg>>(2*j)) % 4})
				}
				u = &destpb.Update{Update: &destpb.Update_Add{Add: set}}
			case 1, 7:
				set := &destpb.AddrSet{}
				for _, p := range picks {
					set.Addrs = append(set.Addrs, fuzzPool[p].wire)
				}
				u = &destpb.Update{Update: &destpb.Update_Remove{Remove: set}}
			case 2, 3:
				u = noEndpoints(op == 2)
			case 4:
				s.newStream()
				m.stale = true
				continue
			case 5:
				u = &destpb.Update{} // of a kind unknown here
			case 8:
				u = add()
			case 9:
				u = &destpb.Update{Update: &destpb.Update_Remove{Remove: &destpb.AddrSet{}}}
			}

			dropped, known := s.apply(u)
			wantDropped := 0
			if known != (op != 5) {
				t.Fatalf("step %d: known %v for op %d", i/2, known, op)
			}
			if known {
				if m.stale {
					m.stale, m.missing = false, false
					clear(m.eps)
				}
				switch op {
				case 0, 6:
					m.missing = false
					for j, p := range picks {
						if k := fuzzPool[p].key; k.IsValid() {
							m.eps[k] = float64(max(uint32(arg>>(2*j))%4, 1))
						} else {
							wantDropped++
						}
					}
				case 1, 7:
					for _, p := range picks {
						if k := fuzzPool[p].key; k.IsValid() {
							delete(m.eps, k)
						} else {
							wantDropped++
						}
					}
				case 2, 3:
					m.missing = op == 3
					clear(m.eps)
				case 8:
					m.missing = false
				}
			}
			if len(dropped) != wantDropped {
				t.Fatalf("step %d: dropped %v, want %d", i/2, dropped, wantDropped)
			}
			if got, want := s.answer(), m.answer(); !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d (op %d, arg %#x): got %v %v, model %v %v", i/2, op, arg, got.State, got.Endpoints, want.State, want.Endpoints)
			}
		}
	})
}

// FuzzUpdateWire applies updates decoded from arbitrary bytes (each
// prefixed by its length): it must not panic, and every answer holds
// valid, distinct, sorted endpoints with weights of at least 1.
func FuzzUpdateWire(f *testing.F) {
	for _, u := range []*destpb.Update{add("10.0.0.1:80*3", "[2001:db8::1]:443"), remove("10.0.0.1:80"), noEndpoints(false), noEndpoints(true)} {
		b, err := proto.Marshal(u)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append([]byte{byte(len(b))}, b...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s endpointSet
		for len(data) > 0 {
			n := min(int(data[0]), len(data)-1)
			chunk := data[1 : 1+n]
			data = data[1+n:]
			u := new(destpb.Update)
			if proto.Unmarshal(chunk, u) != nil {
				s.newStream()
				continue
			}
			s.apply(u)
			res := s.answer()
			if res.State == interpreter.NotFound {
				continue
			}
			for i, e := range res.Endpoints {
				if !e.Addr.IsValid() || e.Addr.Port() == 0 || e.Weight < 1 || math.IsInf(e.Weight, 0) {
					t.Fatalf("invalid endpoint %v", e)
				}
				if i > 0 && res.Endpoints[i-1].Addr.Compare(e.Addr) >= 0 {
					t.Fatalf("endpoints not sorted and distinct: %v", res.Endpoints)
				}
			}
		}
	})
}
