package router

import "time"

// Defaults for keys a file leaves out. A key that is given keeps its value,
// even when it is zero: lifetime = "0s" means no lifetime limit.
const (
	defaultWorkers             = 0
	defaultPipeSize            = 1 << 20
	defaultMaxPipes            = 256
	defaultServerConnect       = 3 * time.Second
	defaultLifetime            = 0
	defaultIdleTimeout         = 5 * time.Minute
	defaultMaxConnections      = 0 // a share of the open-files limit
	defaultClientConnect       = time.Second
	defaultConnectAttempts     = 3
	defaultConsecutiveFailures = 5
	defaultPenalty             = 60 * time.Second
	defaultMaxWaiters          = 1000
	defaultBindIdle            = 10 * time.Minute
	defaultMaxNames            = 10000
	defaultDrainTimeout        = 30 * time.Second
	defaultAdminListen         = "127.0.0.1:9989"
	defaultHandshakeTimeout    = 5 * time.Second
	defaultBalancer            = "p2c"
	defaultHashKey             = "source_ip"
	defaultHashBalanceFactor   = 1.25
	// A stream is offloaded after as many batches as the offload's setup
	// costs in system calls, about 40 against 4 or 5 per batch: the ski
	// rental rule, which never pays more than twice the better choice.
	defaultOffloadAfter = 8
	maxOffloadAfter     = 10000
)

func (c *rawConfig) setDefaults() {
	orDefault(&c.workers, defaultWorkers)
	orDefault(&c.pipeSize, defaultPipeSize)
	orDefault(&c.maxPipes, defaultMaxPipes)
	orDefault(&c.drainTimeout, defaultDrainTimeout)
	orDefault(&c.adminListen, defaultAdminListen)
	orDefault(&c.pprof, false)
	orDefault(&c.access, false)
	orDefault(&c.accessPath, "")
	for _, r := range c.routers {
		for _, s := range r.servers {
			orDefault(&s.connectTimeout, defaultServerConnect)
			orDefault(&s.lifetime, defaultLifetime)
			orDefault(&s.idleTimeout, defaultIdleTimeout)
			orDefault(&s.maxConnections, defaultMaxConnections)
			orDefault(&s.handshakeTimeout, defaultHandshakeTimeout)
			orDefault(&s.sniDefault, "")
			orDefault(&s.proxyProtocol, "")
			orDefault(&s.offload, "")
			orDefault(&s.offloadAfter, defaultOffloadAfter)
		}
		orDefault(&r.sendProxy, "")
		orDefault(&r.balancer, defaultBalancer)
		orDefault(&r.hashKey, defaultHashKey)
		orDefault(&r.hashBalanceFactor, defaultHashBalanceFactor)
		orDefault(&r.connectTimeout, defaultClientConnect)
		orDefault(&r.connectAttempts, defaultConnectAttempts)
		orDefault(&r.maxWaiters, defaultMaxWaiters)
		orDefault(&r.bindIdle, defaultBindIdle)
		orDefault(&r.maxNames, defaultMaxNames)
		orDefault(&r.consecutiveFailures, defaultConsecutiveFailures)
		orDefault(&r.penalty, defaultPenalty)
	}
}

func orDefault[T any](p **T, v T) {
	if *p == nil {
		*p = &v
	}
}
