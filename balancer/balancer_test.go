package balancer

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/interpreter"
)

var accrual = endpoint.Accrual{ConsecutiveFailures: 1, Penalty: time.Second}

// resolution builds a resolution from "addr" and "addr*weight" strings.
func resolution(t testing.TB, eps ...string) interpreter.Resolution {
	t.Helper()
	var r interpreter.Resolution
	for _, s := range eps {
		e, err := interpreter.ParseEndpoint(s)
		if err != nil {
			t.Fatal(err)
		}
		r.Endpoints = append(r.Endpoints, e)
	}
	return r
}

// addrs returns n endpoints on distinct loopback addresses, each with the
// given weight suffix ("" or "*w").
func addrs(n int, weight string) []string {
	var s []string
	for i := range n {
		s = append(s, fmt.Sprintf("127.0.%d.%d:80%s", i/250, i%250+1, weight))
	}
	return s
}

func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// picks counts how often Pick returns each endpoint in n calls, without
// changing any load.
func picks(b *Balancer, n int, now int64, exclude ...*endpoint.Endpoint) map[*endpoint.Endpoint]int {
	rng := newRand()
	got := make(map[*endpoint.Endpoint]int)
	for range n {
		got[b.Pick(rng, now, exclude)]++
	}
	return got
}

func TestPickFollowsWeights(t *testing.T) {
	// Ten endpoints, alternately weighted 1 and 3, serving a stream of
	// connections of which the 200 most recent are open.
	b := New("web", Options{Accrual: accrual})
	var eps []string
	for i, a := range addrs(10, "") {
		eps = append(eps, a+[]string{"*1", "*3"}[i%2])
	}
	b.Update(resolution(t, eps...))
	rng := newRand()
	var open []*endpoint.Endpoint
	byWeight := map[float64]int{}
	for range 20000 {
		e := b.Pick(rng, 0, nil)
		e.Acquire()
		byWeight[e.Weight]++
		open = append(open, e)
		if len(open) > 200 {
			open[0].Release()
			open = open[1:]
		}
	}
	// Not quite 3: a pair of two weight-1 endpoints is always won by one
	// of them, so power of two choices gives the light ones a little more
	// than their share.
	if ratio := float64(byWeight[3]) / float64(byWeight[1]); ratio < 2.4 || ratio > 3.5 {
		t.Errorf("weight-3 endpoints took %d connections, weight-1 %d: ratio %.2f, want about 3", byWeight[3], byWeight[1], ratio)
	}
}

func TestPickEqualLoadPrefersWeight(t *testing.T) {
	b := New("web", Options{Accrual: accrual})
	b.Update(resolution(t, "127.0.0.1:80*1", "127.0.0.2:80*3"))
	eps := b.Endpoints()
	for _, e := range eps {
		for range 5 {
			e.Acquire()
		}
	}
	got := picks(b, 1000, 0)
	if got[eps[1]] != 1000 {
		t.Errorf("with equal load the weight-3 endpoint was picked %d times in 1000, want every time", got[eps[1]])
	}
}

func TestPickAvoidsLoad(t *testing.T) {
	b := New("web", Options{Accrual: accrual})
	b.Update(resolution(t, addrs(10, "")...))
	busy := b.Endpoints()[3]
	for range 100 {
		busy.Acquire()
	}
	if n := picks(b, 10000, 0)[busy]; n > 100 {
		t.Errorf("endpoint with load 100 among idle ones picked %d times in 10000", n)
	}
}

func TestPickCandidates(t *testing.T) {
	const now = int64(time.Hour)
	tests := []struct {
		name     string
		size     int
		setAside []int // indexes set aside at now
		exclude  []int // indexes passed in exclude
		want     []int // indexes that may be picked (and all are, over many picks); nil: Pick returns nil
	}{
		{name: "one endpoint", size: 1, want: []int{0}},
		{name: "one endpoint excluded", size: 1, exclude: []int{0}},
		{name: "one endpoint set aside comes back", size: 1, setAside: []int{0}, want: []int{0}},
		{name: "all available", size: 5, want: []int{0, 1, 2, 3, 4}},
		{name: "set aside are skipped", size: 5, setAside: []int{1, 3}, want: []int{0, 2, 4}},
		{name: "one left available", size: 5, setAside: []int{0, 1, 2, 4}, want: []int{3}},
		{name: "all set aside come back", size: 4, setAside: []int{0, 1, 2, 3}, want: []int{0, 1, 2, 3}},
		{name: "exclude honoured", size: 5, exclude: []int{0, 4}, want: []int{1, 2, 3}},
		{name: "all but one excluded", size: 5, exclude: []int{0, 1, 2, 4}, want: []int{3}},
		{name: "all excluded", size: 3, exclude: []int{0, 1, 2}},
		{name: "excluded and set aside", size: 5, setAside: []int{2}, exclude: []int{0}, want: []int{1, 3, 4}},
		{name: "rest set aside come back", size: 5, setAside: []int{2, 3, 4}, exclude: []int{0, 1}, want: []int{2, 3, 4}},
		{name: "excluded stay out when all set aside", size: 4, setAside: []int{0, 1, 2, 3}, exclude: []int{1}, want: []int{0, 2, 3}},
		{name: "slow path: few available of many", size: 100, setAside: seq(2, 100), want: []int{0, 1}},
		{name: "slow path: many excluded", size: 100, exclude: seq(0, 97), want: []int{97, 98, 99}},
		{name: "slow path: all set aside", size: 100, setAside: seq(0, 100), want: seq(0, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New("web", Options{Accrual: accrual})
			b.Update(resolution(t, addrs(tt.size, "")...))
			eps := b.Endpoints()
			for _, i := range tt.setAside {
				if !eps[i].Failed(now-1, accrual) {
					t.Fatalf("could not set %v aside", eps[i])
				}
			}
			var exclude []*endpoint.Endpoint
			for _, i := range tt.exclude {
				exclude = append(exclude, eps[i])
			}
			got := picks(b, 200*(len(tt.want)+1), now, exclude...)
			var want map[*endpoint.Endpoint]bool
			if tt.want == nil {
				want = map[*endpoint.Endpoint]bool{nil: true}
			} else {
				want = map[*endpoint.Endpoint]bool{}
				for _, i := range tt.want {
					want[eps[i]] = true
				}
			}
			for e, n := range got {
				if !want[e] {
					t.Errorf("picked %v %d times; want only %v", e, n, tt.want)
				}
			}
			for e := range want {
				if got[e] == 0 {
					t.Errorf("never picked %v; want each of %v", e, tt.want)
				}
			}
		})
	}
}

func seq(from, to int) []int {
	var s []int
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func TestPickBeforeAndAfterEmpty(t *testing.T) {
	b := New("web", Options{Accrual: accrual})
	rng := newRand()
	if b.Resolved() || b.Endpoints() != nil || b.Pick(rng, 0, nil) != nil {
		t.Fatalf("new balancer: Resolved %v, Endpoints %v, Pick not nil", b.Resolved(), b.Endpoints())
	}
	b.Update(interpreter.Resolution{})
	if !b.Resolved() || len(b.Endpoints()) != 0 || b.Pick(rng, 0, nil) != nil {
		t.Fatalf("after an empty update: Resolved %v, Endpoints %v, Pick not nil", b.Resolved(), b.Endpoints())
	}
}

func TestUpdatePreservesEndpoints(t *testing.T) {
	b := New("web", Options{Accrual: accrual})
	if b.Name() != "web" {
		t.Fatalf("Name %q", b.Name())
	}
	b.Update(resolution(t, "10.0.0.1:80", "10.0.0.2:80*2", "10.0.0.3:80"))
	before := b.Endpoints()
	kept, reweighted, dropped := before[0], before[1], before[2]
	kept.Acquire()
	reweighted.Acquire()
	reweighted.Acquire()
	kept.Failed(0, accrual)

	b.Update(resolution(t, "10.0.0.4:80", "10.0.0.2:80*5", "[::ffff:10.0.0.1]:80"))
	after := b.Endpoints()
	if got := names(after); !slices.Equal(got, []string{"10.0.0.4:80", "10.0.0.2:80*5", "10.0.0.1:80"}) {
		t.Fatalf("after update: %v", got)
	}
	if after[2] != kept {
		t.Errorf("10.0.0.1:80 (given as IPv4-mapped) got a new endpoint")
	}
	if kept.Load() != 1 || kept.Available(0) {
		t.Errorf("kept endpoint lost its state: load %d, available %v", kept.Load(), kept.Available(0))
	}
	if after[1] == reweighted || after[1].Load() != 2 {
		t.Errorf("reweighted endpoint: same pointer %v, load %d, want a new endpoint with load 2", after[1] == reweighted, after[1].Load())
	}
	reweighted.Release()
	if after[1].Load() != 1 {
		t.Errorf("release through the old endpoint left the new one at load %d, want 1", after[1].Load())
	}
	if after[0].Load() != 0 || !after[0].Available(0) {
		t.Errorf("new endpoint is not fresh")
	}
	if slices.Contains(after, dropped) {
		t.Errorf("dropped endpoint still present")
	}
	if before[2] != dropped {
		t.Errorf("Update modified the previous snapshot")
	}
}

func TestUpdateCleansResolution(t *testing.T) {
	b := New("web", Options{Accrual: accrual})
	r := resolution(t, "10.0.0.1:80", "10.0.0.2:80*2", "10.0.0.1:80*0.5", "[::ffff:10.0.0.2]:80")
	r.Endpoints = append(r.Endpoints,
		interpreter.Endpoint{Addr: netip.MustParseAddrPort("10.0.0.3:80"), Weight: 0},
		interpreter.Endpoint{Addr: netip.MustParseAddrPort("10.0.0.4:80"), Weight: -1},
		interpreter.Endpoint{Weight: 1},
	)
	b.Update(r)
	if got := names(b.Endpoints()); !slices.Equal(got, []string{"10.0.0.1:80*1.5", "10.0.0.2:80*3"}) {
		t.Errorf("Endpoints after update = %v", got)
	}
}

func names(eps []*endpoint.Endpoint) []string {
	var s []string
	for _, e := range eps {
		s = append(s, e.String())
	}
	return s
}

func TestConcurrentUpdateAndPick(t *testing.T) {
	b := New("web", Options{Accrual: accrual})
	sets := []interpreter.Resolution{
		resolution(t, addrs(3, "")...),
		resolution(t, addrs(10, "*2")...),
		{},
		resolution(t, addrs(1, "")...),
	}
	var wg sync.WaitGroup
	for u := range 2 {
		wg.Go(func() {
			for i := range 500 {
				b.Update(sets[(i+u)%len(sets)])
			}
		})
	}
	for p := range 4 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(p), 0))
			for i := range 2000 {
				if e := b.Pick(rng, int64(i), nil); e != nil {
					e.Acquire()
					if i%7 == 0 {
						e.Failed(int64(i), accrual)
					}
					e.Release()
				}
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

func TestPickDoesNotAllocate(t *testing.T) {
	b := New("web", Options{Accrual: accrual})
	b.Update(resolution(t, addrs(100, "")...))
	eps := b.Endpoints()
	for _, e := range eps[:90] {
		e.Failed(0, accrual) // forces the counting path now and then
	}
	exclude := eps[90:92]
	rng := newRand()
	if n := testing.AllocsPerRun(1000, func() { b.Pick(rng, 0, exclude) }); n != 0 {
		t.Errorf("Pick allocates %v times per call", n)
	}
}

func BenchmarkPick(b *testing.B) {
	for _, size := range []int{2, 10, 100} {
		b.Run(fmt.Sprintf("endpoints=%d", size), func(b *testing.B) {
			bal := New("web", Options{Accrual: accrual})
			bal.Update(resolution(b, addrs(size, "")...))
			exclude := bal.Endpoints()[:1]
			rng := newRand()
			b.ReportAllocs()
			for b.Loop() {
				if bal.Pick(rng, 0, exclude) == nil {
					b.Fatal("no endpoint")
				}
			}
		})
	}
}
