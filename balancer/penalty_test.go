package balancer

import (
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/endpoint"
	"github.com/switchyard-proxy/switchyard/netpoll"
)

// A balancer made with the zero Options keeps time as the loops do: an
// endpoint set aside on the loops' clock shows as set aside, and keeps its
// penalty while it is out of the set and when it comes back.
func TestPenaltyOutlivesRetirement(t *testing.T) {
	hour := endpoint.Accrual{ConsecutiveFailures: 1, Penalty: time.Hour}
	b := New("/svc/a", Options{Accrual: hour})
	b.Update(resolution(t, "127.0.0.1:1", "127.0.0.1:2"))
	e := b.Endpoints()[0]
	if !e.Failed(netpoll.Monotonic(), hour) {
		t.Fatal("not set aside")
	}
	for _, es := range b.Snapshot().Endpoints {
		if es.Addr == e.Addr && es.State != "set_aside" {
			t.Errorf("snapshot: %s is %s, want set_aside", es.Addr, es.State)
		}
	}
	b.Update(resolution(t, "127.0.0.1:2"))
	b.Update(resolution(t, "127.0.0.1:1", "127.0.0.1:2"))
	if back := b.Endpoints()[0]; back.Available(netpoll.Monotonic()) {
		t.Errorf("%s came back available: its penalty was forgotten while retired", back)
	}
}
