// Package destination is the interpreter kind "destination": it resolves
// names through linkerd2's Destination API, the gRPC service
// io.linkerd.proxy.destination.Destination that linkerd's control plane
// serves (linkerd-dst.linkerd.svc.cluster.local:8086). The router builds it
// from a [routers.interpreter] table with kind = "destination"; the binder
// calls Resolve once per destination name.
//
// A name /svc/<host>:<port> asks Destination.Get for the authority
// <host>:<port>, as in /svc/web.emojivoto.svc.cluster.local:8080, with
// scheme "k8s" and the configured context_token, as linkerd2-proxy does.
// The stream's updates build the name's set: add adds endpoints (or
// changes their weight; weight 0 counts as 1), remove takes them out,
// no_endpoints{exists: true} empties the set (a Bound answer with no
// endpoints: connections fail fast) and no_endpoints{exists: false} is
// NotFound until the next add. Updates may come redundant and in any
// order. Addresses that are not valid unicast IP addresses with a port
// 1-65535 are left out of an update, logged and counted as errors.
// Only Get is used: no service profiles, TLS identities or protocol hints.
//
// One gRPC connection per interpreter carries every name's stream. When a
// stream ends or fails, the name gets a Failed answer (the balancer keeps
// its last good set), and the stream is opened again after a jittered
// backoff; the set of the old stream stays in use until, and only until,
// the first update of the new one, which then applies to an empty set.
// The timeout bounds connecting (TCP, TLS, HTTP/2); a stream that is open
// but quiet is not timed out, since a name may not change for hours. TCP
// keepalive finds a dead server about a minute after its last byte.
//
// Each watched name costs one goroutine of its own and one of gRPC's (which
// watches the stream's context), about 10 KiB of stacks and 7 KiB of heap
// for its stream and state, and about 100 bytes per endpoint: some 17 KiB
// a name on top of its endpoints, 17 MiB for 1,000 names. How many streams
// the connection carries at once is bounded by the server's HTTP/2
// SETTINGS_MAX_CONCURRENT_STREAMS (unbounded for grpc-go servers by
// default); a stream beyond it waits for one to end. Stopping a watch
// cancels its stream's context: it neither blocks nor starts a goroutine.
//
// The .proto files in proto/ declare the part of the API used, with the
// field numbers of linkerd2-proxy-api; gen.sh (make proto) generates
// destpb/ from them, and the generated code is committed.
package destination
