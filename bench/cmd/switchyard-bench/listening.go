package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

// listeningPorts returns which of ports have a TCP socket listening on
// 127.0.0.1 or 0.0.0.0, from /proc/net/tcp. Unlike a probe connection this
// disturbs nobody: iperf3's server, for one, treats any connection as a
// test and is busy for a while after a probe.
func listeningPorts(ports []int) (map[int]bool, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	return parseListening(b, ports), nil
}

// parseListening scans a /proc/net/tcp table, whose lines read
// "sl local_address rem_address st ...", with addresses as hex
// IP:port (the IP in host byte order) and state 0A for LISTEN.
func parseListening(table []byte, ports []int) map[int]bool {
	want := map[string]int{}
	for _, p := range ports {
		want[fmt.Sprintf("0100007F:%04X", p)] = p
		want[fmt.Sprintf("00000000:%04X", p)] = p
	}
	found := map[int]bool{}
	sc := bufio.NewScanner(bytes.NewReader(table))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		if p, ok := want[f[1]]; ok {
			found[p] = true
		}
	}
	return found
}

// waitListening waits until every one of ports is listening, failing early
// if owner exits first.
func waitListening(ctx context.Context, owner *child, ports []int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		found, err := listeningPorts(ports)
		if err != nil {
			return err
		}
		if len(found) == len(ports) {
			return nil
		}
		if owner.exited() {
			return fmt.Errorf("%v before listening on %v\n%s", owner.waitErr(), ports, owner.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on all of %v after %v\n%s", owner.name, ports, timeout, owner.logTail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted: %w", context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}
