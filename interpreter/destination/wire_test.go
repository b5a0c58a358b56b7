package destination

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard-proxy/switchyard/interpreter/destination/destpb"
)

// These tests pin the wire contract of proto/ to linkerd2-proxy-api's
// field numbers, written out by hand, so that an edit of the .proto that
// changes them fails here rather than against a real control plane.

func field(num protowire.Number, msg []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), msg)
}

func varintField(num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestMethodName(t *testing.T) {
	if got := destpb.Destination_Get_FullMethodName; got != "/io.linkerd.proxy.destination.Destination/Get" {
		t.Fatalf("method %q", got)
	}
}

func TestWireFormatUpdates(t *testing.T) {
	// net.IPAddress{ipv4 = 1 fixed32}, net.IPv6{first = 1, last = 2
	// fixed64}, net.TcpAddress{ip = 1, port = 2}.
	v4 := protowire.AppendFixed32(protowire.AppendTag(nil, 1, protowire.Fixed32Type), 0x0A010203)
	tcp4 := cat(field(1, v4), varintField(2, 8080))
	v6 := cat(
		protowire.AppendFixed64(protowire.AppendTag(nil, 1, protowire.Fixed64Type), 0x20010db800000000),
		protowire.AppendFixed64(protowire.AppendTag(nil, 2, protowire.Fixed64Type), 1),
	)
	tcp6 := cat(field(1, field(2, v6)), varintField(2, 443))
	// WeightedAddr{addr = 1, weight = 3}; WeightedAddrSet{addrs = 1};
	// AddrSet{addrs = 1}; NoEndpoints{exists = 1};
	// Update{add = 1, remove = 2, no_endpoints = 3}.
	addMsg := field(1, cat(
		field(1, cat(field(1, tcp4), varintField(3, 7))),
		field(1, field(1, tcp6)),
	))
	tests := []struct {
		name string
		wire []byte
		want *destpb.Update
	}{
		{"add", addMsg, add("10.1.2.3:8080*7", "[2001:db8::1]:443*0")},
		{"remove", field(2, cat(field(1, tcp4), field(1, tcp6))), remove("10.1.2.3:8080", "[2001:db8::1]:443")},
		{"no_endpoints true", field(3, varintField(1, 1)), noEndpoints(true)},
		{"no_endpoints false", field(3, nil), noEndpoints(false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := new(destpb.Update)
			if err := proto.Unmarshal(tt.wire, got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, tt.want) {
				t.Fatalf("decoded %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWireFormatRequest(t *testing.T) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&destpb.GetDestination{Scheme: "k8s", Path: "web:80", ContextToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	// GetDestination{scheme = 1, path = 2, context_token = 3}.
	want := cat(field(1, []byte("k8s")), field(2, []byte("web:80")), field(3, []byte("tok")))
	if string(b) != string(want) {
		t.Fatalf("encoded %x, want %x", b, want)
	}
}
