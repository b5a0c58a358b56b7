package balancer

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/interpreter"
)

// hashBalancer returns a PolicyHash balancer bound to eps ("addr" or
// "addr*weight").
func hashBalancer(t testing.TB, factor float64, eps ...string) *Balancer {
	t.Helper()
	b := New("web", Options{Accrual: accrual, Policy: PolicyHash, HashBalanceFactor: factor})
	b.Update(resolution(t, eps...))
	return b
}

// clientKeys returns the keys of n distinct client addresses.
func clientKeys(n int) []uint64 {
	keys := make([]uint64, n)
	for i := range keys {
		keys[i] = KeyOfAddr(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
	}
	return keys
}

// owners returns the address PickKey sends each key to, without changing
// any load; the zero AddrPort where it returns nil.
func owners(b *Balancer, keys []uint64, now int64, exclude ...*endpoint.Endpoint) []netip.AddrPort {
	rng := newRand()
	out := make([]netip.AddrPort, len(keys))
	for i, k := range keys {
		if e := b.PickKey(k, rng, now, exclude); e != nil {
			out[i] = e.Addr
		}
	}
	return out
}

// weighted returns addrs(n, "") with the given weights, in order.
func weighted(ws ...string) []string {
	eps := addrs(len(ws), "")
	for i, w := range ws {
		eps[i] += "*" + w
	}
	return eps
}

func without(eps []string, i int) []string {
	return slices.Delete(slices.Clone(eps), i, i+1)
}

func TestPickKeySameKeySameEndpoint(t *testing.T) {
	b := hashBalancer(t, 0, addrs(10, "")...)
	rng := newRand()
	used := map[*endpoint.Endpoint]bool{}
	for _, k := range clientKeys(20) {
		first := b.PickKey(k, rng, 0, nil)
		used[first] = true
		for i := range 1000 {
			e := b.PickKey(k, rng, 0, nil)
			if e != first {
				t.Fatalf("key %x: pick %d went to %v, the first to %v", k, i, e, first)
			}
			e.Acquire()
			e.Release()
		}
	}
	if len(used) < 5 {
		t.Errorf("20 keys went to %d endpoints of 10", len(used))
	}
}

func TestPickKeyFollowsWeights(t *testing.T) {
	tests := []struct {
		name    string
		weights []string
		want    []float64 // share of the keys
	}{
		{"equal", []string{"1", "1", "1", "1"}, []float64{.25, .25, .25, .25}},
		{"1 1 2", []string{"1", "1", "2"}, []float64{.25, .25, .5}},
		{"halves", []string{"0.5", "0.5", "1"}, []float64{.25, .25, .5}},
		{"control plane units", []string{"10000", "10000", "20000"}, []float64{.25, .25, .5}},
		{"1 to 9", []string{"1", "9"}, []float64{.1, .9}},
	}
	keys := clientKeys(100000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eps := weighted(tt.weights...)
			b := hashBalancer(t, 0, eps...)
			count := map[netip.AddrPort]int{}
			for _, a := range owners(b, keys, 0) {
				count[a]++
			}
			var shares []string
			for i, e := range b.Endpoints() {
				got := float64(count[e.Addr]) / float64(len(keys))
				shares = append(shares, fmt.Sprintf("%.3f", got))
				if math.Abs(got-tt.want[i]) > 0.035 {
					t.Errorf("%v took %.3f of the keys, want %.3f ± 0.035", e, got, tt.want[i])
				}
			}
			t.Logf("shares %s, want %v", strings.Join(shares, " "), tt.want)
		})
	}
}

// When one endpoint leaves, the keys it had move and no other; when it
// comes back, they return. Loads stay at zero, so the bound plays no part.
func TestPickKeyRemap(t *testing.T) {
	tests := []struct {
		name string
		eps  []string
	}{
		{"5 endpoints", addrs(5, "")},
		{"10 endpoints", addrs(10, "")},
		{"weights 1 1 1 5", weighted("1", "1", "1", "5")}, // the mean weight halves when the 5 leaves
		{"weights 10000 20000 30000 40000", weighted("10000", "20000", "30000", "40000")},
	}
	keys := clientKeys(10000)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := hashBalancer(t, 0, tt.eps...)
			total := 0.0
			for _, e := range b.Endpoints() {
				total += e.Weight
			}
			var fractions []string
			worst, fewest := 0.0, len(keys)
			for r, gone := range b.Endpoints() {
				before := owners(b, keys, 0)
				b.Update(resolution(t, without(tt.eps, r)...))
				after := owners(b, keys, 0)
				moved, stray := 0, 0
				for i := range keys {
					switch {
					case before[i] == gone.Addr:
						moved++
					case after[i] != before[i]:
						stray++
					}
				}
				if stray > 0 {
					t.Errorf("without %v: %d keys it did not have moved", gone, stray)
				}
				frac := float64(moved) / float64(len(keys))
				if limit := 1.5 * gone.Weight / total; frac > limit {
					t.Errorf("without %v: %.4f of the keys moved, want at most %.4f", gone, frac, limit)
				}
				fractions = append(fractions, fmt.Sprintf("%.4f", frac))
				worst = max(worst, frac/(gone.Weight/total))

				b.Update(resolution(t, tt.eps...))
				back := owners(b, keys, 0)
				returned := 0
				for i := range keys {
					if back[i] == before[i] {
						returned++
					}
				}
				if returned < len(keys)*99/100 {
					t.Errorf("with %v back: %d of %d keys where they were, want 99%%", gone, returned, len(keys))
				}
				fewest = min(fewest, returned)
			}
			t.Logf("fraction of %d keys moved when each endpoint leaves: %s; worst %.2f times the endpoint's weight share; back where they were when it returns: %d at least",
				len(keys), strings.Join(fractions, " "), worst, fewest)
		})
	}
}

// An endpoint whose weight changes gains or loses keys; no other key moves.
func TestPickKeyReweight(t *testing.T) {
	keys := clientKeys(10000)
	b := hashBalancer(t, 0, addrs(5, "")...)
	before := owners(b, keys, 0)
	changed := b.Endpoints()[2].Addr
	b.Update(resolution(t, weighted("1", "1", "2", "1", "1")...))
	after := owners(b, keys, 0)
	gained := 0
	for i := range keys {
		switch {
		case after[i] == before[i]:
		case after[i] == changed:
			gained++
		default:
			t.Fatalf("key %x moved from %v to %v, not to the reweighted endpoint", keys[i], before[i], after[i])
		}
	}
	if frac := float64(gained) / float64(len(keys)); frac < 0.1 || frac > 0.2 {
		t.Errorf("weight 1 to 2 of five gained %.3f of the keys, want about 1/3-1/5 = 0.133", frac)
	}
}

func TestPickKeyBoundedLoad(t *testing.T) {
	tests := []struct {
		name    string
		eps     []string
		factor  float64
		maxLoad int64 // the most any endpoint may end with
	}{
		{"default factor", addrs(4, ""), 0, 33}, // ceil(1.25*100/4) + 1
		{"factor 2", addrs(4, ""), 2, 51},
		{"weights 1 1 2", weighted("1", "1", "2"), 0, 64}, // ceil(1.25*100*2/4) + 1
		{"unbounded", addrs(4, ""), -1, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := hashBalancer(t, tt.factor, tt.eps...)
			eps := b.Endpoints()
			factor := b.balanceFactor()
			weight := 0.0
			for _, e := range eps {
				weight += e.Weight
			}
			rng := newRand()
			key := KeyOfString("heavy")
			home := b.PickKey(key, rng, 0, nil)
			for i := range 100 {
				e := b.PickKey(key, rng, 0, nil)
				bound := math.Ceil(factor*float64(i+1)*e.Weight/weight - 1e-9)
				if float64(e.Load()+1) > bound {
					t.Fatalf("connection %d went to %v at load %d, above its bound %v", i+1, e, e.Load(), bound)
				}
				e.Acquire() // held
			}
			var loads []int64
			for _, e := range eps {
				loads = append(loads, e.Load())
				if e.Load() > tt.maxLoad {
					t.Errorf("%v holds %d connections, want at most %d", e, e.Load(), tt.maxLoad)
				}
			}
			if home.Load() != slices.Max(loads) {
				t.Errorf("the key's own endpoint holds %d, less than another: loads %v", home.Load(), loads)
			}
			used := 0
			for _, l := range loads {
				if l > 0 {
					used++
				}
			}
			if tt.factor >= 0 && used < 2 {
				t.Errorf("the heavy key did not spill: loads %v", loads)
			}
			t.Logf("loads %v", loads)
		})
	}
}

// An endpoint set aside gives its keys to the endpoints that have them
// when it is out of the set, and gets them back when its penalty ends.
func TestPickKeySetAside(t *testing.T) {
	const now = int64(time.Hour)
	keys := clientKeys(10000)
	eps := addrs(5, "")
	b := hashBalancer(t, 0, eps...)
	before := owners(b, keys, now)
	victim := b.Endpoints()[2]
	if !victim.Failed(now, accrual) {
		t.Fatal("not set aside")
	}
	during := owners(b, keys, now)
	absent := owners(hashBalancer(t, 0, without(eps, 2)...), keys, now)
	if !slices.Equal(during, absent) {
		t.Error("keys go elsewhere than they would with the endpoint out of the set")
	}
	if slices.Contains(during, victim.Addr) {
		t.Error("the endpoint set aside still gets keys")
	}
	if after := owners(b, keys, now+int64(accrual.Penalty)); !slices.Equal(after, before) {
		t.Error("keys did not come back at the end of the penalty")
	}
}

// A retry skips the endpoints tried, each to the next one on the ring, by
// address even when the endpoint tried was replaced since.
func TestPickKeyExclude(t *testing.T) {
	eps := addrs(5, "")
	b := hashBalancer(t, 0, eps...)
	rng := newRand()
	for _, key := range clientKeys(100) {
		var tried []*endpoint.Endpoint
		for range eps {
			e := b.PickKey(key, rng, 0, tried)
			if e == nil || excluded(e, tried) {
				t.Fatalf("key %x, tried %v: got %v", key, tried, e)
			}
			rest := slices.DeleteFunc(slices.Clone(eps), func(s string) bool {
				for _, x := range tried {
					if x.Addr.String() == s {
						return true
					}
				}
				return false
			})
			if want := b.Endpoints()[slices.Index(eps, e.Addr.String())]; owners(hashBalancer(t, 0, rest...), []uint64{key}, 0)[0] != want.Addr {
				t.Fatalf("key %x, tried %v: got %v, not the endpoint it has without them", key, tried, e)
			}
			tried = append(tried, e)
		}
		if e := b.PickKey(key, rng, 0, tried); e != nil {
			t.Fatalf("every endpoint tried, got %v", e)
		}
	}

	stale := b.PickKey(42, rng, 0, nil)
	b.Update(resolution(t, weighted("2", "2", "2", "2", "2")...))
	if e := b.PickKey(42, rng, 0, []*endpoint.Endpoint{stale}); e == nil || e.Addr == stale.Addr {
		t.Errorf("tried %v before its weight changed, got %v", stale, e)
	}
}

func TestPickKeyFallback(t *testing.T) {
	const now = int64(time.Hour)
	key := KeyOfString("k")
	// order returns the set's endpoints in the order key meets them.
	order := func(b *Balancer) []*endpoint.Endpoint {
		var seen []*endpoint.Endpoint
		for range b.Endpoints() {
			seen = append(seen, b.PickKey(key, newRand(), now, seen))
		}
		return seen
	}
	tests := []struct {
		name string
		eps  []string // nil: pending
		prep func(ring []*endpoint.Endpoint) (exclude []*endpoint.Endpoint)
		want int // index in the ring order; -1: nil
	}{
		{name: "pending", want: -1},
		{name: "empty set", eps: []string{}, want: -1},
		{name: "one endpoint, however loaded", eps: addrs(1, ""), prep: func(r []*endpoint.Endpoint) []*endpoint.Endpoint {
			load(r[0], 50)
			return nil
		}, want: 0},
		{name: "one endpoint set aside", eps: addrs(1, ""), prep: func(r []*endpoint.Endpoint) []*endpoint.Endpoint {
			r[0].Failed(now, accrual)
			return nil
		}, want: 0},
		{name: "one endpoint tried", eps: addrs(1, ""), prep: func(r []*endpoint.Endpoint) []*endpoint.Endpoint {
			return r[:1]
		}, want: -1},
		{name: "over the bound, others tried", eps: addrs(3, ""), prep: func(r []*endpoint.Endpoint) []*endpoint.Endpoint {
			load(r[0], 10)
			return r[1:]
		}, want: 0},
		{name: "over the bound, others set aside", eps: addrs(3, ""), prep: func(r []*endpoint.Endpoint) []*endpoint.Endpoint {
			load(r[1], 10)
			r[0].Failed(now, accrual)
			r[2].Failed(now, accrual)
			return nil
		}, want: 1},
		{name: "all set aside", eps: addrs(4, ""), prep: func(r []*endpoint.Endpoint) []*endpoint.Endpoint {
			for _, e := range r {
				e.Failed(now, accrual)
			}
			return r[:1]
		}, want: 1},
		{name: "set aside before over the bound", eps: addrs(3, ""), prep: func(r []*endpoint.Endpoint) []*endpoint.Endpoint {
			r[0].Failed(now, accrual)
			load(r[1], 10)
			return r[2:]
		}, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New("web", Options{Accrual: accrual, Policy: PolicyHash})
			var r []*endpoint.Endpoint
			if tt.eps != nil {
				b.Update(resolution(t, tt.eps...))
				r = order(b)
			}
			var exclude []*endpoint.Endpoint
			if tt.prep != nil {
				exclude = tt.prep(r)
			}
			got := b.PickKey(key, newRand(), now, exclude)
			var want *endpoint.Endpoint
			if tt.want >= 0 {
				want = r[tt.want]
			}
			if got != want {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

func load(e *endpoint.Endpoint, n int) {
	for range n {
		e.Acquire()
	}
}

func TestPickKeyP2C(t *testing.T) {
	b := New("web", Options{Accrual: accrual})
	b.Update(resolution(t, addrs(4, "")...))
	rng := newRand()
	got := map[*endpoint.Endpoint]int{}
	for range 1000 {
		got[b.PickKey(7, rng, 0, nil)]++
	}
	if len(got) != 4 {
		t.Errorf("one key under p2c went to %d endpoints of 4, want all", len(got))
	}
}

func TestRingSize(t *testing.T) {
	tests := []struct {
		name     string
		eps      []string
		min, max int
	}{
		{"one unit", addrs(10, ""), 1600, 1600},
		{"large units", addrs(10, "*10000"), 1600, 3200},
		{"small units", addrs(10, "*0.001"), 1600, 3200},
		{"capped", addrs(10000, ""), 10000, maxRingPoints},
		{"skewed", weighted("1e300", "1", "1e-300"), 3, 3 * 2 * pointsPerWeight},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := hashBalancer(t, 0, tt.eps...)
			r := b.snap.Load().ring
			if n := len(r.points); n < tt.min || n > tt.max {
				t.Errorf("ring of %d points, want %d to %d", n, tt.min, tt.max)
			}
			if !slices.IsSorted(r.points) {
				t.Error("ring not sorted")
			}
			points := make([]int, len(b.Endpoints()))
			for _, p := range r.points {
				points[p&r.mask]++
			}
			if i := slices.Index(points, 0); i >= 0 {
				t.Errorf("%v has no point", b.Endpoints()[i])
			}
		})
	}
}

func TestUpdateKeepsRing(t *testing.T) {
	b := hashBalancer(t, 0, addrs(3, "")...)
	r := b.snap.Load().ring
	b.Update(resolution(t, addrs(3, "")...))
	if b.snap.Load().ring != r {
		t.Error("the same set rebuilt the ring")
	}
	b.Update(resolution(t, addrs(2, "")...))
	if b.snap.Load().ring == r {
		t.Error("a new set kept the ring")
	}
	b.Update(interpreter.Resolution{State: interpreter.NotFound})
	if b.snap.Load().ring != nil {
		t.Error("a name not found has a ring")
	}
	if New("web", Options{}).snap.Load().ring != nil {
		t.Error("a pending name has a ring")
	}
	p := New("web", Options{Policy: PolicyP2C})
	p.Update(resolution(t, addrs(3, "")...))
	if p.snap.Load().ring != nil {
		t.Error("a p2c balancer built a ring")
	}
}

func TestKeys(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.1")
	if KeyOfAddr(v4) != KeyOfAddr(netip.MustParseAddr("::ffff:192.0.2.1")) {
		t.Error("IPv4 and IPv4-mapped keys differ")
	}
	distinct := []uint64{
		KeyOfAddr(v4),
		KeyOfAddr(netip.MustParseAddr("192.0.2.2")),
		KeyOfAddr(netip.MustParseAddr("2001:db8::1")),
		KeyOfAddr(netip.MustParseAddr("fe80::1")),
		KeyOfAddr(netip.MustParseAddr("fe80::1%eth0")),
		KeyOfAddr(netip.Addr{}),
		KeyOfString(""),
		KeyOfString("example.com"),
		KeyOfString("example.org"),
	}
	for i, k := range distinct {
		if j := slices.Index(distinct, k); j != i {
			t.Errorf("keys %d and %d are both %x", j, i, k)
		}
	}
	h := fnv.New64a()
	h.Write([]byte("example.com"))
	if KeyOfString("example.com") != mix(h.Sum64()) {
		t.Error("KeyOfString is not FNV-1a, mixed")
	}
	// Keys must not change from one release to the next: proxies side by
	// side, and one restarted, send a client where the others do.
	for _, tt := range []struct {
		name      string
		got, want uint64
	}{
		{"192.0.2.1", KeyOfAddr(v4), 0x6b390e5096f79c83},
		{"example.com", KeyOfString("example.com"), 0x4d07e1c6cc597ab7},
	} {
		if tt.got != tt.want {
			t.Errorf("key of %s = %#x, want %#x", tt.name, tt.got, tt.want)
		}
	}
}

func TestParsePolicy(t *testing.T) {
	for _, p := range []Policy{PolicyP2C, PolicyHash} {
		if got, err := ParsePolicy(p.String()); err != nil || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p.String(), got, err)
		}
	}
	if _, err := ParsePolicy("random"); err == nil {
		t.Error("ParsePolicy accepted random")
	}
	if s := Policy(9).String(); s != "unknown" {
		t.Errorf("Policy(9) is %q", s)
	}
}

func TestBalanceFactor(t *testing.T) {
	for _, tt := range []struct{ in, want float64 }{
		{0, 1.25}, {math.NaN(), 1.25}, {-1, math.Inf(1)}, {0.5, 1}, {1, 1}, {3, 3}, {math.Inf(1), math.Inf(1)},
	} {
		b := New("web", Options{HashBalanceFactor: tt.in})
		if got := b.balanceFactor(); got != tt.want {
			t.Errorf("HashBalanceFactor %v: factor %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestConcurrentUpdateAndPickKey(t *testing.T) {
	b := New("web", Options{Accrual: accrual, Policy: PolicyHash})
	sets := []interpreter.Resolution{
		resolution(t, addrs(3, "")...),
		resolution(t, addrs(10, "*2")...),
		{},
		resolution(t, addrs(1, "")...),
		resolution(t, weighted("1", "3", "5")...),
	}
	var wg sync.WaitGroup
	for u := range 2 {
		wg.Go(func() {
			for i := range 500 {
				b.Update(sets[(i+u)%len(sets)])
			}
		})
	}
	keys := clientKeys(64)
	for p := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 0))
			var held []*endpoint.Endpoint
			for i := range 2000 {
				if e := b.PickKey(keys[i%len(keys)], rng, int64(i), nil); e != nil {
					e.Acquire()
					held = append(held, e)
					if i%7 == 0 {
						e.Failed(int64(i), accrual)
					}
				}
				if len(held) > 20 {
					held[0].Release()
					held = held[1:]
				}
			}
			for _, e := range held {
				e.Release()
			}
		})
	}
	wg.Wait()
	for _, e := range b.Endpoints() {
		if e.Load() != 0 {
			t.Errorf("%v: load %d after every acquisition was released", e, e.Load())
		}
	}
}

func TestPickKeyDoesNotAllocate(t *testing.T) {
	for _, policy := range []Policy{PolicyP2C, PolicyHash} {
		t.Run(policy.String(), func(t *testing.T) {
			b := New("web", Options{Accrual: accrual, Policy: policy})
			b.Update(resolution(t, addrs(100, "")...))
			eps := b.Endpoints()
			for _, e := range eps[:60] {
				e.Failed(0, accrual)
			}
			for i, e := range eps {
				load(e, i%3) // some loaded, so that the bound is computed
			}
			exclude := eps[90:92]
			keys := clientKeys(1000)
			rng := newRand()
			i := 0
			if n := testing.AllocsPerRun(1000, func() {
				b.PickKey(keys[i%len(keys)], rng, 0, exclude)
				i++
			}); n != 0 {
				t.Errorf("PickKey allocates %v times per call", n)
			}
		})
	}
	zoned := netip.MustParseAddr("fe80::1%eth0")
	var sink uint64
	if n := testing.AllocsPerRun(1000, func() { sink += KeyOfAddr(zoned) ^ KeyOfString("example.com") }); n != 0 {
		t.Errorf("KeyOfAddr and KeyOfString allocate %v times per call", n)
	}
}

func BenchmarkPickKey(b *testing.B) {
	for _, size := range []int{10, 100} {
		for _, loaded := range []bool{false, true} {
			b.Run("endpoints="+strconv.Itoa(size)+"/loaded="+strconv.FormatBool(loaded), func(b *testing.B) {
				bal := New("web", Options{Accrual: accrual, Policy: PolicyHash})
				bal.Update(resolution(b, addrs(size, "")...))
				if loaded {
					for _, e := range bal.Endpoints() {
						load(e, 10)
					}
				}
				exclude := bal.Endpoints()[:1]
				keys := clientKeys(4096)
				rng := newRand()
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					if bal.PickKey(keys[i&4095], rng, 0, exclude) == nil {
						b.Fatal("no endpoint")
					}
					i++
				}
			})
		}
	}
}

// BenchmarkUpdateRing measures building a ring, which Update does when
// the set changes.
func BenchmarkUpdateRing(b *testing.B) {
	for _, size := range []int{10, 100, 1000} {
		b.Run("endpoints="+strconv.Itoa(size), func(b *testing.B) {
			bal := New("web", Options{Policy: PolicyHash})
			sets := []interpreter.Resolution{
				resolution(b, addrs(size, "")...),
				resolution(b, addrs(size-1, "")...),
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				bal.Update(sets[i%2])
				i++
			}
		})
	}
}
