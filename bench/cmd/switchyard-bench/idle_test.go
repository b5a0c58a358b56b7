package main

import (
	"context"
	"testing"
)

func TestOpenIdle(t *testing.T) {
	e := startTestEcho(t)
	const n = 300
	s, err := openIdle(context.Background(), e.addr, idleConfig{N: n, Concurrency: 16})
	if err != nil {
		t.Fatal(err)
	}
	if s.established() != n || s.errors != 0 {
		t.Fatalf("established %d, errors %d (first: %v); want %d and 0", s.established(), s.errors, s.firstErr, n)
	}
	if got := e.active.Load(); got != n {
		t.Fatalf("server holds %d connections, want %d", got, n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.established() != 0 {
		t.Fatalf("%d connections left in the set after Close", s.established())
	}
	e.waitIdle(t)
	if got := e.accepted.Load(); got != n {
		t.Fatalf("server accepted %d connections, want %d", got, n)
	}
}

func TestOpenIdleRefused(t *testing.T) {
	s, err := openIdle(context.Background(), closedAddr(t), idleConfig{N: 5, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if s.established() != 0 || s.errors != 5 || s.firstErr == nil {
		t.Fatalf("established %d, errors %d, first %v; want 0, 5 and an error", s.established(), s.errors, s.firstErr)
	}
}
