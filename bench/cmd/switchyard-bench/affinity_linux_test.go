package main

import (
	"errors"
	"io"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testCPU is the CPU tests pin to; they skip where pinning means nothing.
func testCPU(t *testing.T) (cpu int, all unix.CPUSet) {
	t.Helper()
	cpu, err := pinCPU()
	if err != nil {
		t.Skip(err)
	}
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	return cpu, all
}

func affinity(t *testing.T, tid int) unix.CPUSet {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(tid, &set); err != nil {
		t.Fatalf("thread %d: %v", tid, err)
	}
	return set
}

// treeMasks is the mask of every thread in the tree rooted at root.
func treeMasks(t *testing.T, root int) map[int]unix.CPUSet {
	t.Helper()
	p := &pinning{roots: []int{root}}
	masks := map[int]unix.CPUSet{}
	err := p.eachThread(func(_, _, tid int) error {
		masks[tid] = affinity(t, tid)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return masks
}

// TestPinTreesRestores pins a shell and restores it, with a child it
// starts while pinned, which inherits the pinned mask and must lose it too.
func TestPinTreesRestores(t *testing.T) {
	cpu, all := testCPU(t)
	var one unix.CPUSet
	one.Set(cpu)
	cmd := exec.Command("sh", "-c", "read x; sleep 60 & wait")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		t.Fatal("cannot start sh:", err)
	}
	t.Cleanup(func() {
		unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
		cmd.Wait()
	})
	root := cmd.Process.Pid

	p, err := pinTrees(cpu, root)
	if err != nil {
		t.Fatal(err)
	}
	for tid, m := range treeMasks(t, root) {
		if m != one {
			t.Errorf("pinned: thread %d may run on %d CPUs, want only CPU %d", tid, m.Count(), cpu)
		}
	}
	io.WriteString(stdin, "go\n")
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); len(pids) < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("sh did not start sleep")
		}
		if pids, _, err = processTree(root); err != nil {
			t.Fatal(err)
		}
	}
	if m := affinity(t, pids[1]); m != one {
		t.Fatalf("a child started while pinned may run on %d CPUs; want it pinned like its parent", m.Count())
	}

	if err := p.restore(); err != nil {
		t.Fatal(err)
	}
	masks := treeMasks(t, root)
	if len(masks) < 2 {
		t.Fatalf("tree shrank to %d threads", len(masks))
	}
	for tid, m := range masks {
		if m != all {
			t.Errorf("restored: thread %d may run on %d CPUs, want the %d it had", tid, m.Count(), all.Count())
		}
	}
}

func TestPinTreesGone(t *testing.T) {
	cpu, _ := testCPU(t)
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal("cannot run true:", err)
	}
	if _, err := pinTrees(cpu, cmd.Process.Pid); !errors.Is(err, errCannotPin) {
		t.Fatalf("pinning a reaped process: %v, want errCannotPin", err)
	}
}

func TestOnCPU(t *testing.T) {
	cpu, all := testCPU(t)
	var one, inside unix.CPUSet
	one.Set(cpu)
	var tid int
	want := errors.New("from f")
	err := onCPU(cpu, func() error {
		tid = unix.Gettid()
		if err := unix.SchedGetaffinity(0, &inside); err != nil {
			return err
		}
		return want
	})
	if err != want {
		t.Fatalf("onCPU returned %v, want f's error", err)
	}
	if inside != one {
		t.Errorf("f ran on a thread that may use %d CPUs, want only CPU %d", inside.Count(), cpu)
	}
	var after unix.CPUSet
	switch err := unix.SchedGetaffinity(tid, &after); {
	case errors.Is(err, unix.ESRCH):
		// The runtime ended the thread; nothing is left pinned.
	case err != nil:
		t.Fatal(err)
	case after != all:
		t.Errorf("after onCPU, its thread may use %d CPUs, want the %d it had", after.Count(), all.Count())
	}
}

func TestPinCPU(t *testing.T) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatal(err)
	}
	cpu, err := pinCPU()
	if set.Count() < 2 {
		if err == nil {
			t.Fatalf("pinCPU = %d with one CPU to run on, want an error", cpu)
		}
		return
	}
	if err != nil || !set.IsSet(cpu) {
		t.Fatalf("pinCPU = %d, %v; want a CPU of %v", cpu, err, set)
	}
	if set.IsSet(0) && cpu != 0 {
		t.Errorf("pinCPU = %d, want CPU 0", cpu)
	}
}
