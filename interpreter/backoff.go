package interpreter

import (
	"math/rand/v2"
	"time"
)

// Backoff is a jittered exponential backoff between Min and Max: the n-th
// delay since the last Reset is drawn uniformly from [d/2, d], where d is
// Min doubled n times and capped at Max, so retries from many names spread
// out instead of arriving together. Not safe for concurrent use.
type Backoff struct {
	Min, Max time.Duration
	n        int
}

// Next returns the delay before the next retry.
func (b *Backoff) Next() time.Duration {
	d := b.Min
	for i := 0; i < b.n && d < b.Max; i++ {
		if d > b.Max/2 {
			d = b.Max // doubling would pass Max, or overflow
			break
		}
		d *= 2
	}
	d = min(d, b.Max)
	if b.n < 64 {
		b.n++
	}
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(d-half+1)
}

// Reset starts the sequence again from Min, after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Sleep waits for d or until done is closed, and reports whether the whole
// d passed.
func Sleep(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}
