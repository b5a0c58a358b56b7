// Package consul is the interpreter kind "consul": it resolves names of the
// form /svc/<service> to the passing instances of a Consul service, and
// follows them with Consul's blocking queries on the health endpoint
// (GET /v1/health/service/<service>?passing=true&index=...&wait=...). The
// router builds it from a [routers.interpreter] table with kind = "consul";
// the binder calls Resolve once per destination name, and each watched name
// holds one long poll on its own goroutine.
//
// It speaks HTTP with net/http rather than Consul's official client
// (github.com/hashicorp/consul/api): that module pulls in a dozen other
// modules for the one endpoint used here, and its blocking-query support
// still leaves to the caller everything that takes care: resetting an index
// that goes backwards, never blocking on index 0, rate-limiting a loop whose
// index churns, jittering the wait, bounding a request that outlives its
// wait, backing off after errors and keeping the last good answer. Those
// are the bulk of this package either way.
//
// Consul's advice for blocking queries
// (https://developer.hashicorp.com/consul/api-docs/features/blocking) is
// followed: an index lower than the last one is reset to 0, which fetches
// afresh; an index below 1 after an answer is taken as 1, so that no query
// loops without blocking; every name's queries pass a token bucket (a burst
// of 2, then one a second), so that a result that churns degrades into
// polling instead of a busy loop (the first change after a quiet second is
// seen at once, later ones at most one a second); and the wait sent is cut by up to a
// sixteenth at random, on top of the up to wait/16 that Consul adds, so
// that names started together drift apart.
//
// Each blocking query holds an HTTP/1.1 connection for up to its wait, and
// a Consul agent accepts a bounded number of connections from one address
// (limits.http_max_conns_per_client, 200 by default). An interpreter keeps
// at most max_connections (default 64): three in four for blocking
// queries, the rest for the queries that do not block (a name's first, and
// those after a reset), so that a new name is answered at once however
// many names are watched. When more names are watched than there are
// blocking slots, the names take turns and the wait of each query shrinks
// in proportion, so that every name is asked again about once per wait: a
// change is then seen within a wait, not at once. Watch more names than
// that over https (HTTP/2: one connection carries every query), or raise
// max_connections as far as the agent's limit allows. Over https the client
// speaks HTTP/2 when the agent offers it, and the queries share one
// connection.
package consul
