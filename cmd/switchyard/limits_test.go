package main

import (
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// max_connections = 0 under an ordinary small limit (1024, as in many
// containers and CI runners) with 4 event loops and the stock max_pipes
// serves clients side by side: the pipes the pools could hold are not all
// kept from connections.
func TestStockLimitsUnder1024ServeClientsTogether(t *testing.T) {
	config := strings.Replace(forwardConfig(echoBackend(t), ""), "workers = 1", "workers = 4", 1)
	c, servers := startChild(t, []string{"prlimit", "--nofile=1024:1024"}, config)
	first, err := net.Dial("tcp", servers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	if err := roundTrip(first, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	second, err := net.Dial("tcp", servers[0])
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if err := roundTrip(second, 2*time.Second); err != nil {
		t.Errorf("a second client while one is open, under a 1024 open-files limit: %v", err)
	}
	first.Close()
	second.Close()
	_ = c.cmd.Process.Signal(syscall.SIGINT)
	for range c.lines {
	}
	if err := <-c.wait; err != nil {
		t.Fatalf("exit: %v", err)
	}
}
