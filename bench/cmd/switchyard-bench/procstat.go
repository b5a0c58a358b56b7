package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// clockTicksPerSecond is USER_HZ, the unit of /proc/PID/stat's times; it
// is 100 on every Linux architecture Go supports.
const clockTicksPerSecond = 100

// procStat is the part of a /proc/PID/stat line the bench reads.
type procStat struct {
	ppid     int
	cpuTicks uint64 // utime+stime, all threads, in clock ticks
}

// parseStat reads ppid (field 4) and utime+stime (fields 14 and 15) of a
// /proc/PID/stat line. The command name, field 2, is in parentheses and
// may itself hold spaces and parentheses, so fields are counted from the
// last ')'.
func parseStat(stat string) (procStat, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return procStat{}, errors.New("/proc stat: no ')' after the command name")
	}
	// After the ')' come fields 3 (state) onwards.
	fields := strings.Fields(stat[i+1:])
	const ppid, utime, stime = 4 - 3, 14 - 3, 15 - 3
	if len(fields) <= stime {
		return procStat{}, fmt.Errorf("/proc stat: %d fields after the command name, want at least %d", len(fields), stime+1)
	}
	p, err := strconv.Atoi(fields[ppid])
	if err != nil {
		return procStat{}, fmt.Errorf("/proc stat: ppid: %w", err)
	}
	u, err := strconv.ParseUint(fields[utime], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("/proc stat: utime: %w", err)
	}
	s, err := strconv.ParseUint(fields[stime], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("/proc stat: stime: %w", err)
	}
	return procStat{ppid: p, cpuTicks: u + s}, nil
}

// parseVmRSS returns VmRSS in bytes from a /proc/PID/status file, 0 if the
// process has none (a zombie).
func parseVmRSS(status string) (int64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("/proc status: unexpected VmRSS line %q", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc status: VmRSS: %w", err)
		}
		return kb << 10, nil
	}
	return 0, nil
}
