package interpreter

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	tests := []struct {
		name     string
		min, max time.Duration
	}{
		{"usual", 100 * time.Millisecond, 10 * time.Second},
		{"equal", time.Second, time.Second},
		// Doubling past math.MaxInt64 must not wrap to a negative delay.
		{"huge max", 100 * time.Millisecond, 2562047 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := Backoff{Min: tt.min, Max: tt.max}
			prevCap := time.Duration(0)
			for i := range 100 {
				d := b.Next()
				if d < tt.min/2 || d > tt.max {
					t.Fatalf("retry %d: %v, want within [%v, %v]", i+1, d, tt.min/2, tt.max)
				}
				prevCap = max(prevCap, d)
			}
			if prevCap < tt.max/2 {
				t.Errorf("the delays never reached half of max: largest %v", prevCap)
			}
			b.Reset()
			if d := b.Next(); d > tt.min {
				t.Errorf("after Reset: %v, want at most min %v", d, tt.min)
			}
		})
	}
}
