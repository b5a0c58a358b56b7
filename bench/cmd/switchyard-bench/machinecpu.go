package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// The machine-wide CPU figures charge everything the machine did during a
// measurement (the load generator, the backend, the proxy, and the
// kernel's own threads and softirqs) to the work done. A proxy's own CPU
// (its process tree) misses what the kernel does for it elsewhere, which
// for a kernel-offloaded stream (offload = "sockmap") is nearly all of it;
// direct's machine figure is the cost of the load and backend alone, and a
// proxy's difference to it is the proxy's true cost.

// machineBusySeconds is the CPU time the whole machine has spent busy since
// boot: every field of /proc/stat's "cpu" line but idle, iowait and steal
// (time the hypervisor gave to other guests: not work of this machine's).
func machineBusySeconds() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineBusy(string(b))
}

// parseMachineBusy reads the busy time, in seconds, from /proc/stat's text.
// Guest time is already counted in user and nice, so it is not added again.
func parseMachineBusy(stat string) (float64, error) {
	line, _, _ := strings.Cut(stat, "\n")
	fields := strings.Fields(line)
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, errors.New(`/proc/stat: no "cpu" line first`)
	}
	const idle, iowait, steal, guest = 4, 5, 8, 9 // field indexes, fields[0] being "cpu"
	var busy uint64
	for i, f := range fields[1:] {
		i++
		if i >= guest {
			break
		}
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: cpu field %d: %w", i, err)
		}
		if i != idle && i != iowait && i != steal {
			busy += v
		}
	}
	return float64(busy) / clockTicksPerSecond, nil
}
