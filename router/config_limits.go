package router

import (
	"os"
	"runtime"
	"slices"

	"golang.org/x/sys/unix"
)

// descriptorMargin is what the process keeps for itself out of the
// open-files limit: epoll and eventfds, logs, the interpreters' sockets and
// files, the runtime.
const descriptorMargin = 64

// workers is the number of event loops the configuration asks for.
func (c *Config) workers() int {
	if c.Runtime.Workers > 0 {
		return c.Runtime.Workers
	}
	return runtime.NumCPU()
}

// pipeShare is the part of limit kept for splice pipes. Pipes are made
// only while bytes are in flight, and a connection without one copies
// through its loop's buffer instead: they get what the pools can hold, but
// never more than a quarter of the limit, so that a small limit still
// leaves room for connections.
func (c *Config) pipeShare(limit uint64) uint64 {
	return min(uint64(2*c.workers()*c.Runtime.MaxPipes), limit/4)
}

// DescriptorsNeeded is what the configuration can use at its bounds under
// limit: two sockets per connection, a listener per server and loop, the
// pipes' share and the margin. Servers whose max_connections is 0 count
// once FitOpenFiles has given them their share.
func (c *Config) DescriptorsNeeded(limit uint64) uint64 {
	w := c.workers()
	need := descriptorMargin + c.pipeShare(limit)
	for _, r := range c.Routers {
		for _, s := range r.Servers {
			need += uint64(2*s.MaxConnections + w)
		}
	}
	return need
}

// FitOpenFiles gives every server whose MaxConnections is 0 (the default:
// "as many as the open-files limit allows") an even share of what limit
// leaves after the pipes' share, the listeners, the margin and the servers
// with a bound of their own; at least 1 each. Servers with a bound keep it.
func (c *Config) FitOpenFiles(limit uint64) {
	w := c.workers()
	fixed := descriptorMargin + c.pipeShare(limit)
	auto := 0
	for _, r := range c.Routers {
		for _, s := range r.Servers {
			fixed += uint64(w)
			if s.MaxConnections == 0 {
				auto++
			} else {
				fixed += uint64(2 * s.MaxConnections)
			}
		}
	}
	if auto == 0 {
		return
	}
	share := 1
	if limit > fixed {
		share = max(1, int((limit-fixed)/2/uint64(auto)))
	}
	for i := range c.Routers {
		for j := range c.Routers[i].Servers {
			if s := &c.Routers[i].Servers[j]; s.MaxConnections == 0 {
				s.MaxConnections = share
			}
		}
	}
}

// openFilesLimit is the soft RLIMIT_NOFILE.
func openFilesLimit() (uint64, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, os.NewSyscallError("getrlimit", err)
	}
	return lim.Cur, nil
}

// fallbackOpenFiles is the limit assumed when it cannot be read: the usual
// soft default.
const fallbackOpenFiles = 1024

// withServersCopied returns a copy of c whose routers and servers may be
// changed without changing c's.
func (c *Config) withServersCopied() *Config {
	out := *c
	out.Routers = slices.Clone(c.Routers)
	for i := range out.Routers {
		out.Routers[i].Servers = slices.Clone(c.Routers[i].Servers)
	}
	return &out
}
