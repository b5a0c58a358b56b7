package netpoll

import (
	"fmt"
	"testing"
)

// idleConn stands for a proxied connection with an idle timeout: the part of
// a router stream that keeps its deadline.
type idleConn struct {
	l          *Loop
	timer      Timer
	lastActive int64
	idle       int64
	expired    int
}

// OnTimer pushes the deadline out if the connection was active since it was
// set, as router streams do.
func (c *idleConn) OnTimer(now int64) {
	if now >= c.lastActive+c.idle {
		c.expired++
		return
	}
	c.l.Schedule(&c.timer, c.lastActive+c.idle, c)
}

// BenchmarkTimerReset measures the two ways of keeping idle deadlines among
// n scheduled timers. Each op is one batch of activity on one connection,
// round robin, so every connection is active once every n ops, and one tick
// of the loop's clock:
//
//   - move: the batch reschedules the connection's timer to now+idle, a heap
//     fix of an already-scheduled timer (the new deadline is the latest, so
//     the timer sinks to a leaf: O(log n)).
//   - idle: the batch only records its time; the timer fires at the old
//     deadline, sees the activity and schedules itself again (once every 8n
//     ticks per connection here, far more often than with real timeouts).
//
// The loop never runs: with no Run, the benchmark goroutine owns it and
// advances its clock by hand.
func BenchmarkTimerReset(b *testing.B) {
	for _, n := range []int{100, 10000} {
		b.Run(fmt.Sprintf("timers=%d/move", n), func(b *testing.B) {
			l, conns := idleConns(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.now++
				c := &conns[i]
				c.lastActive = l.now
				l.Schedule(&c.timer, l.now+c.idle, c)
				l.runTimers()
				if i++; i == n {
					i = 0
				}
			}
			checkNoneExpired(b, conns)
		})
		b.Run(fmt.Sprintf("timers=%d/idle", n), func(b *testing.B) {
			l, conns := idleConns(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.now++
				conns[i].lastActive = l.now
				l.runTimers()
				if i++; i == n {
					i = 0
				}
			}
			checkNoneExpired(b, conns)
		})
	}
}

// idleConns returns a loop that is never run and n connections whose
// deadlines are scheduled on it, staggered one tick apart.
func idleConns(b *testing.B, n int) (*Loop, []idleConn) {
	l, err := NewLoop(0)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]idleConn, n)
	b.Cleanup(func() {
		// Run only to release the loop's fds; the deadlines on the fake
		// clock must not fire against the real one.
		for i := range conns {
			l.Cancel(&conns[i].timer)
		}
		go l.Run()
		l.Stop()
		<-l.Done()
	})
	l.now = int64(n)
	for i := range conns {
		c := &conns[i]
		c.l, c.idle, c.lastActive = l, int64(8*n), int64(i)
		l.Schedule(&c.timer, c.lastActive+c.idle, c)
	}
	return l, conns
}

func checkNoneExpired(b *testing.B, conns []idleConn) {
	for i := range conns {
		if conns[i].expired != 0 {
			b.Fatalf("connection %d expired although active every %d ticks", i, len(conns))
		}
		if !conns[i].timer.Scheduled() {
			b.Fatalf("connection %d has no deadline", i)
		}
	}
}
