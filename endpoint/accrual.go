package endpoint

import (
	"math"
	"time"
)

// Accrual is the failure-accrual policy: after ConsecutiveFailures connect
// failures in a row an endpoint is set aside for Penalty.
// ConsecutiveFailures <= 0 disables accrual.
type Accrual struct {
	ConsecutiveFailures int
	Penalty             time.Duration
}

// Available reports whether the endpoint is not set aside at time now.
func (e *Endpoint) Available(now int64) bool {
	return now >= e.state.penaltyUntil.Load()
}

// Succeeded records a successful connect: the run of consecutive failures is
// over. It does not lift a penalty already in force.
func (e *Endpoint) Succeeded() {
	// Skip the store in the common case so that successful connects from
	// many loops do not fight over the cache line.
	if e.state.failures.Load() != 0 {
		e.state.failures.Store(0)
	}
}

// Failed records a failed connect at time now under policy a. The failure
// that completes a run of a.ConsecutiveFailures sets the endpoint aside until
// now+a.Penalty, starts a new run from zero, and is the only one for which
// Failed returns true, however many loops fail at once.
func (e *Endpoint) Failed(now int64, a Accrual) bool {
	if a.ConsecutiveFailures <= 0 {
		return false
	}
	limit := int32(min(a.ConsecutiveFailures, math.MaxInt32))
	for {
		n := e.state.failures.Load()
		if n+1 < limit {
			if e.state.failures.CompareAndSwap(n, n+1) {
				return false
			}
			continue
		}
		if e.state.failures.CompareAndSwap(n, 0) {
			e.state.penaltyUntil.Store(addSaturating(now, int64(max(a.Penalty, 0))))
			return true
		}
	}
}

// addSaturating returns a+b for b >= 0, clamped at math.MaxInt64.
func addSaturating(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
