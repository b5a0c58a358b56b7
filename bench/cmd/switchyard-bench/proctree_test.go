package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

func TestSampleTreeSelf(t *testing.T) {
	before, err := sampleTree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.pids[0] != os.Getpid() || before.fds == 0 || before.rssBytes == 0 {
		t.Fatalf("sample of this process = %+v; want it first, with fds and RSS", before)
	}
	const n = 5
	for i := range n {
		f, err := os.Create(filepath.Join(t.TempDir(), "f"+string(rune('a'+i))))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
	}
	after, err := sampleTree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.fds-before.fds < n {
		t.Errorf("fds went from %d to %d with %d more files open", before.fds, after.fds, n)
	}
	if after.cpuTicks < before.cpuTicks {
		t.Errorf("CPU ticks went back from %d to %d", before.cpuTicks, after.cpuTicks)
	}
}

func TestSampleTreeIncludesChildren(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal("cannot start sleep:", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	s, err := sampleTree(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.pids, cmd.Process.Pid) {
		t.Fatalf("tree %v lacks the child sleep %d", s.pids, cmd.Process.Pid)
	}
	child, err := sampleTree(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(child.pids) != 1 || child.rssBytes == 0 || child.fds == 0 {
		t.Fatalf("sample of sleep = %+v; want one process with RSS and fds", child)
	}
	if s.rssBytes < child.rssBytes {
		t.Errorf("tree RSS %d is less than the child's %d", s.rssBytes, child.rssBytes)
	}
}

func TestSampleTreeGone(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal("cannot run true:", err)
	}
	if _, err := sampleTree(cmd.Process.Pid); err == nil {
		t.Fatal("sampleTree of a reaped process succeeded")
	}
}

func TestCountSockets(t *testing.T) {
	before, err := countSockets(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	after, err := countSockets(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after != before+1 {
		t.Fatalf("sockets went from %d to %d with one listener more", before, after)
	}
}
