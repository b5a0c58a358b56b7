package balancer

import (
	"math/rand/v2"

	"github.com/switchyard-proxy/switchyard/endpoint"
)

// attempts bounds the random draws Pick makes before it falls back to
// counting the candidates. With most endpoints available and few excluded,
// the first draw almost always lands.
const attempts = 4

// Pick chooses an endpoint for a new connection at time now by weighted power
// of two choices: it draws two distinct candidates at random and returns the
// one with the lower (Load()+1)/Weight, either on a tie.
//
// Candidates are the endpoints that are Available(now) and not in exclude
// (the endpoints this connection already tried). If every endpoint not
// excluded is set aside, they all become candidates again, since a connect
// that may fail is better than none. With one candidate Pick returns it;
// with none (no endpoints, a name not Bound, or all excluded) it
// returns nil.
//
// Pick takes no lock and does not allocate. rng belongs to the caller's
// event loop; it must not be shared between goroutines.
func (b *Balancer) Pick(rng *rand.Rand, now int64, exclude []*endpoint.Endpoint) *endpoint.Endpoint {
	eps := b.snap.Load().endpoints
	if len(eps) < 2 {
		if len(eps) == 1 && !excluded(eps[0], exclude) {
			return eps[0]
		}
		return nil
	}
	if e, ok := pickFast(rng, now, eps, exclude); ok {
		return e
	}
	return pickCounted(rng, now, eps, exclude)
}

// pickFast draws two distinct indexes until both land on available,
// non-excluded endpoints, giving up after a few misses. When it succeeds the
// pair is uniform over the available candidates, as pickCounted's is.
func pickFast(rng *rand.Rand, now int64, eps []*endpoint.Endpoint, exclude []*endpoint.Endpoint) (*endpoint.Endpoint, bool) {
	n := len(eps)
	i := -1
	for range attempts {
		if k := rng.IntN(n); candidate(eps[k], now, exclude) {
			i = k
			break
		}
	}
	if i < 0 {
		return nil, false
	}
	for range attempts {
		j := rng.IntN(n - 1)
		if j >= i {
			j++
		}
		if candidate(eps[j], now, exclude) {
			return lighter(eps[i], eps[j]), true
		}
	}
	return nil, false
}

// pickCounted counts the candidates, then picks two distinct ones by rank.
// It is Pick's slow path: many endpoints set aside or excluded.
func pickCounted(rng *rand.Rand, now int64, eps []*endpoint.Endpoint, exclude []*endpoint.Endpoint) *endpoint.Endpoint {
	open, available := 0, 0
	for _, e := range eps {
		if excluded(e, exclude) {
			continue
		}
		open++
		if e.Available(now) {
			available++
		}
	}
	all, k := false, available
	if available == 0 {
		all, k = true, open
	}
	switch k {
	case 0:
		return nil
	case 1:
		if e, _ := nth(eps, now, exclude, all, 0, 0); e != nil {
			return e
		}
	default:
		i := rng.IntN(k)
		j := rng.IntN(k - 1)
		if j >= i {
			j++
		}
		a, b := nth(eps, now, exclude, all, i, j)
		switch {
		case a != nil && b != nil:
			return lighter(a, b)
		case a != nil:
			return a
		case b != nil:
			return b
		}
	}
	// Endpoints were set aside between counting and ranking. The
	// non-excluded set cannot change under us, so pick from it instead.
	a, _ := nth(eps, now, exclude, true, 0, 0)
	return a
}

// nth returns the candidates of rank i and j (counting from 0, in slice
// order); all makes set-aside endpoints candidates too. A rank past the
// last candidate yields nil.
func nth(eps []*endpoint.Endpoint, now int64, exclude []*endpoint.Endpoint, all bool, i, j int) (a, b *endpoint.Endpoint) {
	rank := 0
	for _, e := range eps {
		if excluded(e, exclude) || !all && !e.Available(now) {
			continue
		}
		if rank == i {
			a = e
		}
		if rank == j {
			b = e
		}
		rank++
	}
	return a, b
}

// candidate reports whether e may be chosen on the fast path.
func candidate(e *endpoint.Endpoint, now int64, exclude []*endpoint.Endpoint) bool {
	return e.Available(now) && !excluded(e, exclude)
}

// excluded reports whether e is in exclude. Endpoints are compared by
// address, since an endpoint replaced by an Update after the caller tried it
// is still the same destination.
func excluded(e *endpoint.Endpoint, exclude []*endpoint.Endpoint) bool {
	for _, x := range exclude {
		if x == e || x.Addr == e.Addr {
			return true
		}
	}
	return false
}

// lighter returns whichever of a and b has the lower load per unit of
// weight, counting the connection about to be made; a on a tie.
func lighter(a, b *endpoint.Endpoint) *endpoint.Endpoint {
	if float64(b.Load()+1)/b.Weight < float64(a.Load()+1)/a.Weight {
		return b
	}
	return a
}
