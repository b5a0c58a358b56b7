package main

import (
	"strings"
	"syscall"
	"testing"
)

func TestIdleCap(t *testing.T) {
	tests := []struct {
		limit      uint64
		fdsPerConn int
		want       int
	}{
		{20000, 2, 9800},
		{20000, 3, 6500},
		{1024, 2, 300},
		{1048576, 2, 524000},
		{400, 2, 0},
		{100, 2, 0},
	}
	for _, tt := range tests {
		if got := idleCap(tt.limit, tt.fdsPerConn); got != tt.want {
			t.Errorf("idleCap(%d, %d) = %d, want %d", tt.limit, tt.fdsPerConn, got, tt.want)
		}
	}
}

func TestIdleNote(t *testing.T) {
	if n := idleNote(500, 500, 20000, 3); n != "" {
		t.Errorf("uncapped run has a note: %q", n)
	}
	n := idleNote(10000, 6500, 20000, 3)
	for _, want := range []string{"10000 to 6500", "RLIMIT_NOFILE is 20000", "3 fds per connection"} {
		if !strings.Contains(n, want) {
			t.Errorf("note %q lacks %q", n, want)
		}
	}
}

func TestRaiseOpenFiles(t *testing.T) {
	got, err := raiseOpenFiles()
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if got != lim.Cur || lim.Cur != lim.Max {
		t.Fatalf("raiseOpenFiles = %d; limit now %d of %d", got, lim.Cur, lim.Max)
	}
}
