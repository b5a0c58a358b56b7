package balancer

import "net/netip"

// Snapshot is a read-only view of a balancer for the admin endpoint.
type Snapshot struct {
	Name      string             `json:"name"`
	State     string             `json:"state"`
	Waiters   int                `json:"waiters"`
	Answers   uint64             `json:"answers"`
	Failures  uint64             `json:"failures"`
	LastError string             `json:"last_error,omitempty"`
	Endpoints []EndpointSnapshot `json:"endpoints"`
}

// EndpointSnapshot is one endpoint of a Snapshot: in the set (available or
// set_aside) or retired from it.
type EndpointSnapshot struct {
	Addr   netip.AddrPort `json:"addr"`
	Weight float64        `json:"weight"`
	State  string         `json:"state"`
	Load   int64          `json:"load"` // open and pending connections
}

// Snapshot returns the balancer's state at one moment. Safe from any
// goroutine.
func (b *Balancer) Snapshot() Snapshot {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.opt.Clock()
	s := b.snap.Load()
	out := Snapshot{
		Name:      b.name,
		State:     s.state.String(),
		Waiters:   b.Waiters(),
		Answers:   b.answers,
		Failures:  b.failures,
		Endpoints: make([]EndpointSnapshot, 0, len(s.endpoints)+len(b.retired)),
	}
	if b.lastErr != nil {
		out.LastError = b.lastErr.Error()
	}
	for _, e := range s.endpoints {
		st := "available"
		if !e.Available(now) {
			st = "set_aside"
		}
		out.Endpoints = append(out.Endpoints, EndpointSnapshot{Addr: e.Addr, Weight: e.Weight, State: st, Load: e.Load()})
	}
	for _, e := range b.retired {
		if e.Load() == 0 && e.Available(now) {
			continue // drained: forgotten at the next Update
		}
		out.Endpoints = append(out.Endpoints, EndpointSnapshot{Addr: e.Addr, Weight: e.Weight, State: "retired", Load: e.Load()})
	}
	return out
}
