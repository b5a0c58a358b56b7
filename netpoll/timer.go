package netpoll

// TimerHandler is called on the loop when a timer expires.
type TimerHandler interface {
	OnTimer(now int64)
}

// Timer is a deadline on one loop. The zero value is an unscheduled timer;
// it must be scheduled, rescheduled and stopped only on its loop's goroutine
// and never copied while scheduled. Scheduling costs O(log n) in the number
// of timers of the loop; callers that move a deadline on every byte batch
// (idle timeouts) should record the activity instead and let the timer
// handler push the deadline out when it fires.
type Timer struct {
	when int64 // monotonic nanoseconds
	idx  int   // position in the loop's heap + 1; 0 when not scheduled
	h    TimerHandler
}

// Scheduled reports whether t is waiting to fire.
func (t *Timer) Scheduled() bool { return t.idx != 0 }

// When returns the deadline t is scheduled for, valid while Scheduled.
func (t *Timer) When() int64 { return t.when }

// timerHeap is a binary min-heap of timers ordered by when.
type timerHeap []*Timer

func (h *timerHeap) push(t *Timer) {
	*h = append(*h, t)
	t.idx = len(*h)
	h.up(len(*h) - 1)
}

func (h *timerHeap) remove(t *Timer) {
	i := t.idx - 1
	last := len(*h) - 1
	if i != last {
		h.swap(i, last)
	}
	(*h)[last] = nil
	*h = (*h)[:last]
	t.idx = 0
	if i != last {
		h.fix(i)
	}
}

func (h timerHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h timerHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx = i + 1
	h[j].idx = j + 1
}

func (h timerHeap) up(j int) {
	for j > 0 {
		i := (j - 1) / 2
		if h[i].when <= h[j].when {
			break
		}
		h.swap(i, j)
		j = i
	}
}

func (h timerHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		j := l
		if r := l + 1; r < n && h[r].when < h[l].when {
			j = r
		}
		if h[j].when >= h[i].when {
			break
		}
		h.swap(i, j)
		i = j
	}
	return i > i0
}
