package netpoll

import "time"

var epoch = time.Now()

// Monotonic returns the time in nanoseconds since the process started, from
// the monotonic clock. It is the clock of every deadline in this package.
func Monotonic() int64 { return int64(time.Since(epoch)) }
