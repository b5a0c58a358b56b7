// Package netpoll is Switchyard's reactor: a set of event loops, each a
// goroutine that takes events from its own epoll instance (edge-triggered)
// and runs the handlers of the file descriptors it owns, its timers and the
// tasks other goroutines post to it. A loop with nothing to do parks in the
// Go runtime's netpoller, which watches the loop's epoll descriptor, so it
// holds no P while it waits and needs no GOMAXPROCS of its own.
//
// Ownership is the rule that keeps the data path free of locks: a Loop owns
// every fd registered on it, every Timer scheduled on it and whatever its
// handlers hold (pipes, buffers). Only the loop's own goroutine touches them.
// Other goroutines reach a loop only through Post, which queues a task and
// wakes the loop through an eventfd; many posts before the loop wakes cost
// one eventfd write.
//
// A registration is tagged with a generation number carried in the epoll
// event, so an event queued for an fd that has since been closed, and whose
// number the kernel has handed out again, is recognised as stale and dropped
// instead of reaching the connection that now owns the number.
package netpoll
