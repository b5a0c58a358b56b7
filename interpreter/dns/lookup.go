package dns

import (
	"context"
	"fmt"
	"net/netip"

	mdns "github.com/miekg/dns"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// maxTargetLookups bounds the SRV targets looked up in one resolution,
// those the additional section gives no address for.
const maxTargetLookups = 32

// lookup resolves t once. It returns the answer to deliver, Bound or
// NotFound, and the TTL it holds for, or why resolving failed.
func (r *resolver) lookup(ctx context.Context, t target) (interpreter.Resolution, uint32, error) {
	if t.srv {
		return r.lookupSRV(ctx, t.host)
	}
	rec, err := r.lookupAddrs(ctx, t.host)
	if err != nil {
		return interpreter.Resolution{}, 0, err
	}
	if rec.notFound {
		return interpreter.NotFoundAnswer(), rec.ttl, nil
	}
	return interpreter.BoundTo(hostEndpoints(rec.addrs, t.port)), rec.ttl, nil
}

// lookupAddrs asks for the A and the AAAA records of host and merges
// them. Both must be answered: a set missing one family is not complete.
// An NXDOMAIN answer to the first says that the host has no records of
// any type (RFC 8020), so AAAA is not asked then.
func (r *resolver) lookupAddrs(ctx context.Context, host string) (records, error) {
	a, err := r.query(ctx, host, mdns.TypeA)
	if err != nil || a.notFound {
		return a, err
	}
	aaaa, err := r.query(ctx, host, mdns.TypeAAAA)
	if err != nil {
		return records{}, err
	}
	addrs := append(a.addrs, aaaa.addrs...)
	return records{
		notFound: len(addrs) == 0 && aaaa.notFound,
		ttl:      min(a.ttl, aaaa.ttl),
		addrs:    addrs,
	}, nil
}

// lookupSRV asks for the SRV records of name and resolves the targets of
// the lowest priority to addresses: from the additional section when it
// has them, else by asking for their A and AAAA records.
func (r *resolver) lookupSRV(ctx context.Context, name string) (interpreter.Resolution, uint32, error) {
	rec, err := r.query(ctx, name, mdns.TypeSRV)
	if err != nil {
		return interpreter.Resolution{}, 0, err
	}
	if rec.notFound {
		return interpreter.NotFoundAnswer(), rec.ttl, nil
	}
	ttl := rec.ttl
	addrs := make(map[string][]netip.Addr, len(rec.srvs))
	lookups := 0
	for _, s := range rec.srvs {
		target := mdns.CanonicalName(s.Target)
		if _, done := addrs[target]; done {
			continue
		}
		g, ok := rec.glue[target]
		if !ok {
			if lookups++; lookups > maxTargetLookups {
				return interpreter.Resolution{}, 0, fmt.Errorf("SRV %s: more than %d targets without addresses in the additional section", name, maxTargetLookups)
			}
			if g, err = r.lookupAddrs(ctx, target); err != nil {
				return interpreter.Resolution{}, 0, fmt.Errorf("SRV %s: target %w", name, err)
			}
		}
		addrs[target] = g.addrs
		ttl = min(ttl, g.ttl)
	}
	return interpreter.BoundTo(srvEndpoints(rec.srvs, addrs)), ttl, nil
}
