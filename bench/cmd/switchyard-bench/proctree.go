package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// treeSample is a reading of a process and all its descendants.
type treeSample struct {
	pids     []int  // the root first, then descendants breadth-first
	cpuTicks uint64 // utime+stime summed over the tree
	fds      int    // entries of every /proc/PID/fd
	rssBytes int64  // VmRSS summed over the tree
}

func (s treeSample) cpuSeconds() float64 { return float64(s.cpuTicks) / clockTicksPerSecond }

// sampleTree reads the tree rooted at pid. Processes that exit while it
// reads are left out.
func sampleTree(root int) (treeSample, error) {
	pids, stats, err := processTree(root)
	if err != nil {
		return treeSample{}, err
	}
	s := treeSample{pids: pids}
	for _, pid := range pids {
		s.cpuTicks += stats[pid].cpuTicks
		n, err := countFds(pid)
		if err != nil {
			return s, err
		}
		s.fds += n
		b, err := os.ReadFile(procPath(pid, "status"))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return s, err
		}
		rss, err := parseVmRSS(string(b))
		if err != nil {
			return s, fmt.Errorf("pid %d: %w", pid, err)
		}
		s.rssBytes += rss
	}
	return s, nil
}

// processTree lists root and its descendants, with their stat lines
// parsed, from one pass over /proc.
func processTree(root int) ([]int, map[int]procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, nil, err
	}
	stats := map[int]procStat{}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(procPath(pid, "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		st, err := parseStat(string(b))
		if err != nil {
			return nil, nil, fmt.Errorf("pid %d: %w", pid, err)
		}
		stats[pid] = st
		children[st.ppid] = append(children[st.ppid], pid)
	}
	if _, ok := stats[root]; !ok {
		return nil, nil, fmt.Errorf("process %d not found in /proc", root)
	}
	tree := []int{root}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	return tree, stats, nil
}

// countFds counts the open descriptors of pid; 0 if it has exited.
func countFds(pid int) (int, error) {
	names, err := procDirNames(pid, "fd")
	return len(names), err
}

// countSockets counts the sockets among the descriptors of every process
// in the tree rooted at pid.
func countSockets(root int) (int, error) {
	pids, _, err := processTree(root)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, pid := range pids {
		names, err := procDirNames(pid, "fd")
		if err != nil {
			return 0, err
		}
		for _, name := range names {
			link, err := os.Readlink(procPath(pid, "fd/"+name))
			if err == nil && strings.HasPrefix(link, "socket:") {
				n++
			}
		}
	}
	return n, nil
}

// procDirNames lists the entries of the directory /proc/PID/name; none if
// pid has exited.
func procDirNames(pid int, name string) ([]string, error) {
	d, err := os.Open(procPath(pid, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return names, err
}

func procPath(pid int, name string) string {
	return "/proc/" + strconv.Itoa(pid) + "/" + name
}
