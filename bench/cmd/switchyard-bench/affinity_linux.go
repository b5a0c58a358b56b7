package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// errCannotPin marks a failure to move threads onto one CPU, as opposed to
// a failure of what runs there.
var errCannotPin = errors.New("cannot pin to one CPU")

// maxPinPasses bounds pinTrees' passes over threads that keep appearing.
const maxPinPasses = 10

// pinCPU is the CPU the 1-CPU RTT runs on: the first one this process may
// use, CPU 0 unless a cpuset says otherwise. With only one CPU to use,
// pinning would change nothing, so that is an error.
func pinCPU() (int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, os.NewSyscallError("sched_getaffinity", err)
	}
	if n := set.Count(); n < 2 {
		return 0, fmt.Errorf("only %d CPU to run on", n)
	}
	cpu := 0
	for !set.IsSet(cpu) {
		cpu++
	}
	return cpu, nil
}

// pinning is a set of process trees whose every thread was moved onto one
// CPU, with the masks the threads had before.
type pinning struct {
	roots []int
	saved map[int]unix.CPUSet // by thread ID
}

// pinTrees moves every thread of every process in the trees rooted at
// roots onto cpu. A thread started meanwhile inherits the mask of the
// thread that started it, which may not have moved yet, so it passes again
// until a pass finds no thread it has not moved. Its errors wrap
// errCannotPin; the threads already moved are then put back.
func pinTrees(cpu int, roots ...int) (*pinning, error) {
	p := &pinning{roots: roots, saved: make(map[int]unix.CPUSet)}
	var one unix.CPUSet
	one.Set(cpu)
	for range maxPinPasses {
		moved := 0
		err := p.eachThread(func(_, _, tid int) error {
			if _, ok := p.saved[tid]; ok {
				return nil
			}
			var old unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &old); err != nil {
				return threadGone(tid, "sched_getaffinity", err)
			}
			if err := unix.SchedSetaffinity(tid, &one); err != nil {
				return threadGone(tid, "sched_setaffinity", err)
			}
			p.saved[tid] = old
			moved++
			return nil
		})
		if err != nil {
			return nil, errors.Join(fmt.Errorf("%w: %w", errCannotPin, err), p.restore())
		}
		if moved == 0 {
			return p, nil
		}
	}
	err := fmt.Errorf("%w: threads of %v still appearing after %d passes", errCannotPin, roots, maxPinPasses)
	return nil, errors.Join(err, p.restore())
}

// restore puts every thread of the trees back on the mask it had. A thread
// or process born while pinned gets the mask its process, or else its
// tree's root, had; threads that have exited are passed over.
func (p *pinning) restore() error {
	var errs []error
	err := p.eachThread(func(root, pid, tid int) error {
		mask, ok := p.saved[tid]
		if !ok {
			mask, ok = p.saved[pid]
		}
		if !ok {
			mask, ok = p.saved[root]
		}
		if !ok {
			return nil // never moved, nor started by a thread that was
		}
		if err := unix.SchedSetaffinity(tid, &mask); err != nil {
			if err := threadGone(tid, "sched_setaffinity", err); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	return errors.Join(append(errs, err)...)
}

// eachThread calls fn with every thread of every process in p's trees.
func (p *pinning) eachThread(fn func(root, pid, tid int) error) error {
	for _, root := range p.roots {
		pids, _, err := processTree(root)
		if err != nil {
			return err
		}
		for _, pid := range pids {
			tids, err := threads(pid)
			if err != nil {
				return err
			}
			for _, tid := range tids {
				if err := fn(root, pid, tid); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// threads lists the thread IDs of pid; none if it has exited.
func threads(pid int) ([]int, error) {
	names, err := procDirNames(pid, "task")
	if err != nil {
		return nil, err
	}
	tids := make([]int, 0, len(names))
	for _, name := range names {
		if tid, err := strconv.Atoi(name); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// threadGone is nil when err says the thread has exited, which is no
// error here, else err naming the call and the thread.
func threadGone(tid int, call string, err error) error {
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	return fmt.Errorf("thread %d: %w", tid, os.NewSyscallError(call, err))
}

// onCPU runs f on a goroutine locked to an OS thread that is pinned to cpu
// for the call, and unpinned after. Should unpinning fail, the goroutine
// ends still locked, and the runtime ends the thread with it rather than
// hand a pinned thread to other goroutines.
func onCPU(cpu int, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		var old, one unix.CPUSet
		if err := unix.SchedGetaffinity(0, &old); err != nil {
			errc <- fmt.Errorf("%w: %w", errCannotPin, os.NewSyscallError("sched_getaffinity", err))
			return
		}
		one.Set(cpu)
		if err := unix.SchedSetaffinity(0, &one); err != nil {
			errc <- fmt.Errorf("%w: %w", errCannotPin, os.NewSyscallError("sched_setaffinity", err))
			return
		}
		err := f()
		if unix.SchedSetaffinity(0, &old) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}
