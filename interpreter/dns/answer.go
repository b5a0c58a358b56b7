package dns

import (
	"cmp"
	"fmt"
	"math"
	"net/netip"
	"slices"

	mdns "github.com/miekg/dns"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// maxCNAMEs bounds the CNAME chain followed in one answer.
const maxCNAMEs = 8

// zeroWeight is the weight of an endpoint of an SRV record of weight 0.
// RFC 2782 gives such records "a very small chance of being selected"
// beside records of positive weight, and an equal share among themselves:
// 0.01 is a hundredth of the share of a weight-1 record.
const zeroWeight = 0.01

// records is what one answer says about one name and type.
type records struct {
	notFound bool   // NXDOMAIN
	ttl      uint32 // smallest TTL of what was used; the negative TTL for no records
	addrs    []netip.Addr
	srvs     []*mdns.SRV        // the usable records of the lowest priority
	glue     map[string]records // addresses of srvs' targets from the additional section
}

// readAnswer reads msg, an answer of rcode NOERROR or NXDOMAIN to (qname,
// qtype), where qname is canonical (lower case, fully qualified). Only
// records of qname, or of the names its CNAME chain in the answer section
// leads to, are used. Addresses that no connection may go to (unspecified,
// multicast, broadcast) are left out; IPv4-mapped IPv6 addresses are taken
// as IPv4. With no records the TTL is the negative TTL of RFC 2308: that of
// the SOA record in the authority section, or 0 without one.
func readAnswer(msg *mdns.Msg, qname string, qtype uint16) (records, error) {
	chain, ttl, err := cnameChain(msg.Answer, qname)
	if err != nil {
		return records{}, err
	}
	if msg.Rcode == mdns.RcodeNameError {
		return records{notFound: true, ttl: min(ttl, negativeTTL(msg))}, nil
	}
	var rec records
	found := false
	for _, rr := range msg.Answer {
		h := rr.Header()
		if h.Rrtype != qtype || h.Class != mdns.ClassINET || !slices.Contains(chain, mdns.CanonicalName(h.Name)) {
			continue
		}
		found = true
		ttl = min(ttl, h.Ttl)
		if srv, ok := rr.(*mdns.SRV); ok {
			rec.srvs = append(rec.srvs, srv)
		} else if a, ok := addrOf(rr); ok {
			rec.addrs = append(rec.addrs, a)
		}
	}
	if !found {
		ttl = min(ttl, negativeTTL(msg))
	}
	rec.ttl = ttl
	if qtype == mdns.TypeSRV {
		rec.srvs = srvGroup(rec.srvs)
		rec.glue = glue(msg.Extra, rec.srvs)
	}
	return rec, nil
}

// cnameChain returns the names that qname's CNAME chain in answer passes
// through, qname first, and the smallest TTL of the CNAME records followed
// (MaxUint32 for none).
func cnameChain(answer []mdns.RR, qname string) ([]string, uint32, error) {
	chain := []string{qname}
	ttl := uint32(math.MaxUint32)
	for {
		next := cnameOf(answer, chain[len(chain)-1])
		if next == nil {
			return chain, ttl, nil
		}
		to := mdns.CanonicalName(next.Target)
		if slices.Contains(chain, to) {
			return nil, 0, fmt.Errorf("CNAME loop at %s", to)
		}
		if len(chain) > maxCNAMEs {
			return nil, 0, fmt.Errorf("CNAME chain from %s longer than %d", qname, maxCNAMEs)
		}
		chain = append(chain, to)
		ttl = min(ttl, next.Hdr.Ttl)
	}
}

func cnameOf(answer []mdns.RR, name string) *mdns.CNAME {
	for _, rr := range answer {
		if c, ok := rr.(*mdns.CNAME); ok && c.Hdr.Class == mdns.ClassINET && mdns.CanonicalName(c.Hdr.Name) == name {
			return c
		}
	}
	return nil
}

// negativeTTL is how long the absence of records may be cached (RFC 2308
// section 5): the smaller of the SOA record's TTL and its MINIMUM field.
func negativeTTL(msg *mdns.Msg) uint32 {
	for _, rr := range msg.Ns {
		if soa, ok := rr.(*mdns.SOA); ok {
			return min(soa.Hdr.Ttl, soa.Minttl)
		}
	}
	return 0
}

// addrOf returns the address of an A or AAAA record, if it is one a
// connection may go to.
func addrOf(rr mdns.RR) (netip.Addr, bool) {
	var a netip.Addr
	switch rr := rr.(type) {
	case *mdns.A:
		// 4 bytes when unpacked, 16 when built from text.
		a, _ = netip.AddrFromSlice(rr.A)
		if a = a.Unmap(); !a.Is4() {
			return netip.Addr{}, false
		}
	case *mdns.AAAA:
		if len(rr.AAAA) != 16 {
			return netip.Addr{}, false
		}
		a, _ = netip.AddrFromSlice(rr.AAAA)
		a = a.Unmap()
	default:
		return netip.Addr{}, false
	}
	return a, usable(a)
}

var broadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})

func usable(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast() && a != broadcast
}

// srvGroup returns the records of srvs of the lowest priority, leaving out
// those that offer no service: a target of "." (RFC 2782: "decidedly not
// available") or port 0.
func srvGroup(srvs []*mdns.SRV) []*mdns.SRV {
	srvs = slices.DeleteFunc(srvs, func(s *mdns.SRV) bool { return s.Target == "." || s.Port == 0 })
	if len(srvs) == 0 {
		return nil
	}
	lowest := slices.MinFunc(srvs, func(a, b *mdns.SRV) int { return cmp.Compare(a.Priority, b.Priority) }).Priority
	return slices.DeleteFunc(srvs, func(s *mdns.SRV) bool { return s.Priority != lowest })
}

// glue returns, for each target of srvs that the additional section gives
// A or AAAA records for, those records' addresses and smallest TTL.
func glue(extra []mdns.RR, srvs []*mdns.SRV) map[string]records {
	if len(srvs) == 0 {
		return nil
	}
	targets := make(map[string]bool, len(srvs))
	for _, s := range srvs {
		targets[mdns.CanonicalName(s.Target)] = true
	}
	g := make(map[string]records)
	for _, rr := range extra {
		h := rr.Header()
		if h.Rrtype != mdns.TypeA && h.Rrtype != mdns.TypeAAAA || h.Class != mdns.ClassINET {
			continue
		}
		name := mdns.CanonicalName(h.Name)
		if !targets[name] {
			continue
		}
		rec, seen := g[name]
		if !seen {
			rec.ttl = math.MaxUint32
		}
		rec.ttl = min(rec.ttl, h.Ttl)
		if a, ok := addrOf(rr); ok {
			rec.addrs = append(rec.addrs, a)
		}
		g[name] = rec
	}
	return g
}

// hostEndpoints returns addrs at port, each once, with weight 1, sorted.
func hostEndpoints(addrs []netip.Addr, port uint16) []interpreter.Endpoint {
	set := make(endpointSet, len(addrs))
	for _, a := range addrs {
		set[netip.AddrPortFrom(a, port)] = 1
	}
	return set.sorted()
}

// srvEndpoints returns the endpoints of srvs, one group of one priority,
// given the addresses of each target (by canonical name). A target's
// weight is shared among its addresses, so that a host with an A and an
// AAAA record takes the share its SRV weight gives it, not twice that.
// Weights of endpoints listed more than once add up.
func srvEndpoints(srvs []*mdns.SRV, addrs map[string][]netip.Addr) []interpreter.Endpoint {
	set := make(endpointSet)
	for _, s := range srvs {
		as := addrs[mdns.CanonicalName(s.Target)]
		if len(as) == 0 {
			continue
		}
		w := float64(s.Weight)
		if s.Weight == 0 {
			w = zeroWeight
		}
		w /= float64(len(as))
		for _, a := range as {
			set[netip.AddrPortFrom(a, s.Port)] += w
		}
	}
	return set.sorted()
}

// endpointSet is a set of endpoints being built: address to weight.
type endpointSet map[netip.AddrPort]float64

// sorted returns the set as endpoints sorted by address, so that equal
// sets give equal slices.
func (s endpointSet) sorted() []interpreter.Endpoint {
	eps := make([]interpreter.Endpoint, 0, len(s))
	for a, w := range s {
		eps = append(eps, interpreter.Endpoint{Addr: a, Weight: w})
	}
	slices.SortFunc(eps, func(x, y interpreter.Endpoint) int { return x.Addr.Compare(y.Addr) })
	return eps
}
