// Package router assembles Switchyard from its configuration and carries each
// connection through it. A Proxy owns the event loops (one worker per loop:
// the loop, its pipe pool, its random source). A Router is one [[routers]]
// section: its servers, its binder and interpreter, and its client settings.
// A stream is one proxied connection: accepted by a server, bound to a
// balancer by name, connected to an endpoint with retries under the
// connect deadlines, then pumped by a duplex until it ends with a reason.
package router
