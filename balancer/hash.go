package balancer

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"slices"

	"github.com/switchyard-proxy/switchyard/endpoint"
)

// Policy is how PickKey chooses among a name's endpoints.
type Policy uint8

const (
	PolicyP2C  Policy = iota // power of two choices; the key is ignored
	PolicyHash               // consistent hashing of the key, with bounded loads
)

var policyNames = [...]string{"p2c", "hash"}

// String returns the policy's name in the configuration: "p2c" or "hash".
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "unknown"
}

// ParsePolicy returns the policy named s, as String spells it.
func ParsePolicy(s string) (Policy, error) {
	for i, n := range policyNames {
		if n == s {
			return Policy(i), nil
		}
	}
	return 0, fmt.Errorf("balancer: unknown policy %q", s)
}

const (
	defaultHashBalanceFactor = 1.25
	// pointsPerWeight is how many points an endpoint of the mean weight
	// has on the ring, give or take a factor of two (see ringScale). With
	// k points an endpoint's share of the keys is off its weight's by
	// about 1/sqrt(k): 8% at 160.
	pointsPerWeight = 160
	// maxRingPoints bounds a ring at 8 MiB; past about 3,000 endpoints
	// each has fewer than pointsPerWeight points.
	maxRingPoints = 1 << 20
	// maxTracked is the largest set whose endpoints PickKey tracks as it
	// meets them, to stop once it has met them all rather than walking the
	// whole ring. Larger sets are walked in full when nothing qualifies.
	maxTracked = 1024
)

// ring places each endpoint of a snapshot at points on a circle of 64-bit
// hashes, as many as its weight calls for. A key goes to the endpoint of
// the first point at or after its hash, clockwise. An endpoint's points
// depend only on its address and its number of points, never on the rest
// of the set: when an endpoint leaves, only the keys it had move, each to
// the next point; when it comes back they return; when its weight grows it
// gains points and takes keys only from the endpoints next to them.
//
// A point is one word: its hash in the high bits and, in the low bits
// (mask), the index of its endpoint in the snapshot's endpoints. So the
// ring sorts as plain integers and the walk reads one array. The index
// moves a point by less than 2n/2^64 of the circle for n endpoints, so the
// set's order matters to no key in practice. A ring is immutable once
// published with its snapshot.
type ring struct {
	points []uint64 // ascending
	mask   uint64   // of the endpoint index in a point
	scale  float64  // multiplies weights: the bound compares scaled weights, which cannot overflow
}

// ring returns the hash ring of the endpoint set eps that replaces old's,
// nil unless the policy is PolicyHash and eps has two endpoints or more.
// An unchanged set keeps old's ring. b.mu is held.
func (b *Balancer) ring(old *snapshot, eps []*endpoint.Endpoint) *ring {
	if b.opt.Policy != PolicyHash || len(eps) < 2 {
		return nil
	}
	if old.ring != nil && slices.Equal(old.endpoints, eps) {
		return old.ring
	}
	scale := b.ringScale(eps)
	count := func(e *endpoint.Endpoint) int { return max(1, int(math.Round(e.Weight*scale*pointsPerWeight))) }
	total := 0
	for _, e := range eps {
		total += count(e)
	}
	r := &ring{points: make([]uint64, 0, total), mask: 1<<bits.Len(uint(len(eps)-1)) - 1, scale: scale}
	for i, e := range eps {
		seed := addrSeed(e.Addr)
		for j := range count(e) {
			r.points = append(r.points, mix(seed+uint64(j+1)*golden)&^r.mask|uint64(i))
		}
	}
	slices.Sort(r.points)
	return r
}

// ringScale returns what weights are multiplied by, with pointsPerWeight,
// to give an endpoint's number of points: a power of two, so that weights
// in any unit (1, or 10,000 as some control planes send) give rings of the
// same size. The scale of the last ring stands while the mean endpoint
// gets 1/2 to 4 times pointsPerWeight from it, so that an endpoint joining,
// leaving or changing weight does not add or take points of the others;
// past that a new one gives it 1 to 2 times, halved until the ring fits in
// maxRingPoints. A new scale keeps most points, since an endpoint's points
// are the first of one sequence. b.mu is held.
func (b *Balancer) ringScale(eps []*endpoint.Endpoint) float64 {
	n := float64(len(eps))
	sum := 0.0
	for _, e := range eps {
		sum += e.Weight
	}
	mean := sum / n // exact for weights in whole units
	if math.IsInf(sum, 1) {
		mean = 0
		for _, e := range eps {
			mean += e.Weight / n
		}
	}
	fits := func(s float64) bool { return mean*s*n*pointsPerWeight <= maxRingPoints }
	if m := mean * b.scale; b.scale == 0 || m < 0.5 || m >= 4 || !fits(b.scale) {
		_, exp := math.Frexp(mean) // mean = f * 2^exp, 1/2 <= f < 1
		b.scale = math.Ldexp(1, 1-exp)
		for !fits(b.scale) {
			b.scale /= 2
		}
	}
	return b.scale
}

// PickKey chooses an endpoint for a new connection whose key is key (as
// KeyOfAddr or KeyOfString make it) at time now. Under PolicyP2C it is
// Pick, and ignores the key.
//
// Under PolicyHash it walks the ring clockwise from the key's hash and
// returns the first endpoint that is Available(now), not in exclude (the
// endpoints this connection already tried) and under its bound: with loads
// L (Load, over the set), weights w (over the endpoints available) and
// factor c (Options.HashBalanceFactor), endpoint i qualifies when
//
//	L_i + 1 <= ceil(c * (sum L + 1) * w_i / sum w)
//
// that is when the connection to be made leaves it at most c times its share
// of the load, as in "Consistent Hashing with Bounded Loads" (Mirrokni,
// Thorup, Zadimoghaddam) and HAProxy's hash-balance-factor. As long as
// loads leave the bound alone, a key goes to the same endpoint every time,
// and an endpoint set aside or tried gives its keys to the endpoint that
// would have them if it left the set. If no endpoint qualifies, PickKey
// returns the first available and not excluded, over its bound; failing
// that, as Pick does, the first not excluded although set aside; nil if
// every endpoint is excluded or there is none.
//
// PickKey takes no lock and does not allocate. rng belongs to the caller's
// event loop; it must not be shared between goroutines.
func (b *Balancer) PickKey(key uint64, rng *rand.Rand, now int64, exclude []*endpoint.Endpoint) *endpoint.Endpoint {
	if b.opt.Policy != PolicyHash {
		return b.Pick(rng, now, exclude)
	}
	s := b.snap.Load()
	if s.ring == nil {
		if len(s.endpoints) == 1 && !excluded(s.endpoints[0], exclude) {
			return s.endpoints[0]
		}
		return nil
	}
	return s.ring.walk(mix(key), s.endpoints, now, exclude, b.balanceFactor())
}

// walk is PickKey's ring walk from hash h. It stops at the first endpoint
// that qualifies, or once it has met every endpoint of eps, or after one
// turn.
func (r *ring) walk(h uint64, eps []*endpoint.Endpoint, now int64, exclude []*endpoint.Endpoint, factor float64) *endpoint.Endpoint {
	var (
		seen           [maxTracked / 64]uint64
		track          = len(eps) <= maxTracked
		met            = 0
		over, setAside *endpoint.Endpoint // first available but over its bound; first set aside
		summed         = false
		load, weight   float64 // of the set, once summed
	)
	start, _ := slices.BinarySearch(r.points, h)
	for k := range r.points {
		i := start + k
		if i >= len(r.points) {
			i -= len(r.points)
		}
		o := r.points[i] & r.mask
		if track {
			word, bit := o/64, uint64(1)<<(o%64)
			if seen[word]&bit != 0 {
				continue
			}
			seen[word] |= bit
			met++
		}
		switch e := eps[o]; {
		case excluded(e, exclude):
		case !e.Available(now):
			if setAside == nil {
				setAside = e
			}
		default:
			l := e.Load()
			if l == 0 {
				return e // the bound is never below 1
			}
			if !summed {
				load, weight = r.sums(eps, now)
				summed = true
			}
			if float64(l)*weight < factor*(load+1)*e.Weight*r.scale {
				return e
			}
			if over == nil {
				over = e
			}
		}
		if met == len(eps) {
			break
		}
	}
	if over != nil {
		return over
	}
	return setAside
}

// sums returns the load of eps and the scaled weight of those available
// at now. For integers L and real x, L+1 <= ceil(x) if and only if L < x,
// which is how walk applies the bound without rounding.
func (r *ring) sums(eps []*endpoint.Endpoint, now int64) (load, weight float64) {
	for _, e := range eps {
		load += float64(e.Load())
		if e.Available(now) {
			weight += e.Weight * r.scale
		}
	}
	return load, weight
}

// balanceFactor returns Options.HashBalanceFactor with its default applied:
// +Inf when the bound is disabled.
func (b *Balancer) balanceFactor() float64 {
	switch f := b.opt.HashBalanceFactor; {
	case f == 0 || math.IsNaN(f):
		return defaultHashBalanceFactor
	case f < 0:
		return math.Inf(1)
	default:
		return max(f, 1)
	}
}

// golden is 2^64 divided by the golden ratio: the step of the SplitMix64
// sequence, whose terms, through mix, are an endpoint's points.
const golden = 0x9e3779b97f4a7c15

// mix is SplitMix64's finaliser: a bijection of 64-bit words in which each
// input bit flips each output bit with probability about 1/2.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// KeyOfAddr returns the hash key of a client address, for PickKey. An
// IPv4 address and its IPv4-mapped IPv6 form have the same key; the zone
// counts. The key is the same in every process and release, so that
// proxies side by side send a client to the same endpoint. It does not
// allocate.
func KeyOfAddr(a netip.Addr) uint64 {
	b := a.As16()
	h := mix(mix(binary.BigEndian.Uint64(b[:8])^golden) ^ binary.BigEndian.Uint64(b[8:]))
	if z := a.Zone(); z != "" {
		h = mix(h ^ KeyOfString(z))
	}
	return h
}

// KeyOfString returns the hash key of a string, such as a TLS server name,
// for PickKey: FNV-1a, mixed. It is case-sensitive (a caller that wants
// server names to match in any case lowers them first), the same in every
// process and release, and does not allocate.
func KeyOfString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix(h)
}

// addrSeed is where the sequence of an endpoint's points starts: a hash of
// its address as key identifies it in a set.
func addrSeed(ap netip.AddrPort) uint64 {
	return mix(KeyOfAddr(ap.Addr()) ^ uint64(ap.Port()))
}
