package main

import (
	"context"
	"testing"
	"time"
)

func TestConnrate(t *testing.T) {
	e := startTestEcho(t)
	r, err := connrate(context.Background(), e.addr, connrateConfig{Concurrency: 4, Duration: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Conns == 0 || r.Errors != 0 {
		t.Fatalf("conns %d, errors %d (first: %v); want some conns and no errors", r.Conns, r.Errors, r.FirstErr)
	}
	if got := e.accepted.Load(); got != int64(r.Conns) {
		t.Errorf("server accepted %d connections, connrate counted %d", got, r.Conns)
	}
	if r.P50 <= 0 || r.P50 > r.P99 {
		t.Errorf("p50 %v, p99 %v: want 0 < p50 <= p99", r.P50, r.P99)
	}
	if r.Elapsed < 300*time.Millisecond || r.perSecond() <= 0 {
		t.Errorf("elapsed %v, %f conn/s", r.Elapsed, r.perSecond())
	}
	e.waitIdle(t)
}

func TestConnrateRefused(t *testing.T) {
	r, err := connrate(context.Background(), closedAddr(t), connrateConfig{Concurrency: 2, Duration: 50 * time.Millisecond})
	if err == nil || r.Conns != 0 || r.Errors == 0 || r.FirstErr == nil {
		t.Fatalf("connrate to a closed port = %+v, %v; want an error and only failed connections", r, err)
	}
}

func TestConnrateInterrupted(t *testing.T) {
	e := startTestEcho(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := connrate(ctx, e.addr, connrateConfig{Duration: time.Hour}); err == nil {
		t.Fatal("connrate with a cancelled context succeeded")
	}
}
