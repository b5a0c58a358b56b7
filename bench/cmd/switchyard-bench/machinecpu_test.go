package main

import (
	"math"
	"testing"
)

func TestParseMachineBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseMachineBusy("cpu  100 2 30 5000 7 1 4 3 50 6\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := float64(100+2+30+1+4) / clockTicksPerSecond; math.Abs(got-want) > 1e-9 {
		t.Errorf("busy %v s, want %v", got, want)
	}
	for _, bad := range []string{"", "intr 1 2\n", "cpu 1 x 3 4\n", "cpu 1 2\n"} {
		if _, err := parseMachineBusy(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The real /proc/stat parses and the machine's busy time does not go
// backwards.
func TestMachineBusySeconds(t *testing.T) {
	a, err := machineBusySeconds()
	if err != nil {
		t.Fatal(err)
	}
	x := 0
	for i := 0; i < 1e7; i++ {
		x += i
	}
	_ = x
	b, err := machineBusySeconds()
	if err != nil {
		t.Fatal(err)
	}
	if a <= 0 || b < a {
		t.Errorf("busy %v then %v", a, b)
	}
}

func FuzzParseMachineBusy(f *testing.F) {
	f.Add("cpu  100 2 30 5000 7 1 4 3 50 6\n")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := parseMachineBusy(s); err == nil && (v < 0 || math.IsNaN(v)) {
			t.Fatalf("%q: %v", s, v)
		}
	})
}
