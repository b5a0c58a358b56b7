package destination

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/destination/destpb"
)

// wireAddr converts an address of the wire form to netip.AddrPort. An
// IPv4-mapped IPv6 address is returned as the IPv4 one, so that an add and
// a remove of the same endpoint in the two forms agree. It rejects a
// missing or unset IP, port 0 or above 65535, and addresses that are not
// a unicast destination (unspecified, multicast, IPv4 broadcast).
func wireAddr(a *destpb.TcpAddress) (netip.AddrPort, error) {
	if a == nil {
		return netip.AddrPort{}, errors.New("missing address")
	}
	var ip netip.Addr
	switch v := a.GetIp().GetIp().(type) {
	case *destpb.IPAddress_Ipv4:
		n := v.Ipv4
		ip = netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
	case *destpb.IPAddress_Ipv6:
		if v.Ipv6 == nil {
			return netip.AddrPort{}, errors.New("IPv6 address without its value")
		}
		var b [16]byte
		putUint64(b[:8], v.Ipv6.GetFirst())
		putUint64(b[8:], v.Ipv6.GetLast())
		ip = netip.AddrFrom16(b).Unmap()
	default:
		return netip.AddrPort{}, fmt.Errorf("address with no IP (port %d)", a.GetPort())
	}
	port := a.GetPort()
	switch {
	case port == 0 || port > 65535:
		return netip.AddrPort{}, fmt.Errorf("%s: port %d is out of range (1-65535)", ip, port)
	case ip.IsUnspecified(), ip.IsMulticast(), ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return netip.AddrPort{}, fmt.Errorf("%s is not a unicast address", ip)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}

// An endpointSet is what one name's streams have said: the endpoints
// added and not removed since, and whether the service exists. The zero
// value is an empty set of an existing service.
//
// After a reconnect the set of the last stream stays as it is (stale)
// until, and only until, the first update of the new stream, which
// applies to an empty set: the Destination API lets a client use stale
// endpoints exactly that long.
type endpointSet struct {
	missing bool                      // no_endpoints{exists: false} and no add since
	stale   bool                      // a new stream has sent nothing yet
	weights map[netip.AddrPort]uint32 // the set, with weights as sent (0: 1)
}

// newStream marks the set stale: a new stream has started.
func (s *endpointSet) newStream() { s.stale = true }

// apply applies one update: an add adds to the set, or changes the weight
// of an endpoint already in it; a remove takes endpoints out; no_endpoints
// empties the set, and with exists = false says the service does not
// exist, until the next add. Each of these is idempotent, so redundant
// updates change nothing. Addresses that cannot be converted are left out,
// each with why in dropped. known is false for an update with none of the
// three (from a newer server), which changes nothing, not even a stale set.
func (s *endpointSet) apply(u *destpb.Update) (dropped []error, known bool) {
	if u.GetUpdate() == nil {
		return nil, false
	}
	if s.stale {
		s.stale, s.missing = false, false
		clear(s.weights)
	}
	switch v := u.GetUpdate().(type) {
	case *destpb.Update_Add:
		s.missing = false
		if s.weights == nil {
			s.weights = make(map[netip.AddrPort]uint32, len(v.Add.GetAddrs()))
		}
		for _, wa := range v.Add.GetAddrs() {
			ap, err := wireAddr(wa.GetAddr())
			if err != nil {
				dropped = append(dropped, err)
				continue
			}
			s.weights[ap] = wa.GetWeight()
		}
	case *destpb.Update_Remove:
		for _, a := range v.Remove.GetAddrs() {
			ap, err := wireAddr(a)
			if err != nil {
				dropped = append(dropped, err)
				continue
			}
			delete(s.weights, ap)
		}
	case *destpb.Update_NoEndpoints:
		s.missing = !v.NoEndpoints.GetExists()
		clear(s.weights)
	}
	return dropped, true
}

// answer is the set as a Resolution: NotFound when the service does not
// exist, else Bound to the endpoints (maybe none), sorted by address, each
// weighing its weight, 1 for 0.
func (s *endpointSet) answer() interpreter.Resolution {
	if s.missing {
		return interpreter.NotFoundAnswer()
	}
	eps := make([]interpreter.Endpoint, 0, len(s.weights))
	for ap, w := range s.weights {
		eps = append(eps, interpreter.Endpoint{Addr: ap, Weight: float64(max(w, 1))})
	}
	slices.SortFunc(eps, func(a, b interpreter.Endpoint) int { return a.Addr.Compare(b.Addr) })
	return interpreter.BoundTo(eps)
}
