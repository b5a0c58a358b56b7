package main

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestRotate(t *testing.T) {
	targets := []string{"direct", "switchyard", "haproxy", "nginx"}
	orig := slices.Clone(targets)
	firsts := map[string]int{}
	for round := 0; round < len(targets); round++ {
		order := rotate(targets, round)
		firsts[order[0]]++
		sorted := slices.Sorted(slices.Values(order))
		if !slices.Equal(sorted, slices.Sorted(slices.Values(orig))) {
			t.Fatalf("round %d order %v is not a permutation of %v", round, order, orig)
		}
		if order[(len(order)-round)%len(order)] != "direct" {
			t.Fatalf("round %d order %v: not a rotation", round, order)
		}
	}
	for _, name := range targets {
		if firsts[name] != 1 {
			t.Errorf("%s came first %d times in %d rounds, want once", name, firsts[name], len(targets))
		}
	}
	if !slices.Equal(targets, orig) {
		t.Errorf("rotate modified its input: %v", targets)
	}
	if got := rotate(targets, 5); !slices.Equal(got, []string{"switchyard", "haproxy", "nginx", "direct"}) {
		t.Errorf("rotate by 5 = %v", got)
	}
	if got := rotate([]string(nil), 3); got != nil {
		t.Errorf("rotate(nil) = %v", got)
	}
}

// checkWithTool has the real program check a generated configuration,
// when it is installed.
func checkWithTool(t *testing.T, name string, argv func(dir string) []string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		return
	}
	a := argv(t.TempDir())
	if out, err := exec.Command(a[0], a[1:]...).CombinedOutput(); err != nil {
		t.Errorf("%s rejects the configuration: %v\n%s", strings.Join(a, " "), err, out)
	}
}
