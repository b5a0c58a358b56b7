package router

import (
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/switchyard-proxy/switchyard/server"
)

// BenchmarkUpdateToConnection measures how long traffic takes to follow a
// discovery update, through each interpreter kind. Each op makes one
// update that moves the name from backend a to backend b, or back, then
// dials the proxy in a tight loop, one short request per connection, until
// a connection reaches the new backend: ns/op is the time from the update
// to the first connection that follows it, dials/op how many connections
// that took (each a round trip through the proxy, so also the resolution
// of the measure).
//
//   - namerd: the fixture writes the new answer to the open watch stream.
//   - file: the service file is replaced (written aside, renamed over it);
//     the interpreter reads a file once its events settle (75 ms).
//   - destination: the fixture sends the add and the remove of the change
//     on the open Get stream.
//   - consul: the fixture answers the blocking query waiting for a change;
//     each op waits a second first (timer stopped) for the name's query
//     rate limit, as changes a second apart are.
//   - dns: the fixture's record changes; the interpreter asks again only
//     when the TTL (1 s, which ttl_min allows) runs out, and each op starts
//     just after the lookup that ended the one before: ns/op is about 1 s.
//
// As dns takes a second an op, run it with a small count:
//
//	go test -run '^$' -bench UpdateToConnection -benchtime 5x ./router/
//
// Clients close with a reset, so that the dials leave no socket in
// TIME_WAIT. An op that has not seen the new backend within 10 s fails.
func BenchmarkUpdateToConnection(b *testing.B) {
	b.Run("namerd", func(b *testing.B) {
		be := startBothNamed(b)
		f := startNamerdFixture(b)
		f.set(namerdBound(be[0].addr))
		p := startProxy(b, f.config())
		benchmarkFollow(b, p, func(to int) { f.set(namerdBound(be[to].addr)) })
	})
	b.Run("file", func(b *testing.B) {
		be := startBothNamed(b)
		dir := b.TempDir()
		replaceFile(b, dir, "test", serviceLine(be[0].addr))
		p := startProxy(b, discoveryConfig("file", fileSettings(dir)))
		benchmarkFollow(b, p, func(to int) { replaceFile(b, dir, "test", serviceLine(be[to].addr)) })
	})
	b.Run("destination", func(b *testing.B) {
		be := startBothNamed(b)
		f := startDstFixture(b, be[0].addr)
		p := startProxy(b, f.config())
		benchmarkFollow(b, p, func(to int) { f.setEndpoints(be[to].addr) })
	})
	b.Run("consul", func(b *testing.B) {
		be := startBothNamed(b)
		f := startConsulFixture(b, be[0].addr)
		p := startProxy(b, f.config())
		benchmarkFollow(b, p, func(to int) {
			// Each name's queries pass a token bucket (one a second
			// after a burst of two): measure a change after a quiet
			// second, as most are, not the bucket's rate.
			b.StopTimer()
			time.Sleep(1100 * time.Millisecond)
			b.StartTimer()
			f.setEndpoints(be[to].addr)
		})
	})
	b.Run("dns", func(b *testing.B) {
		_, _, port := startSamePortBackends(b)
		f := startDNSFixture(b)
		ips := [2]string{"127.0.0.1", "127.0.0.2"}
		f.set(mdns.RcodeSuccess, ips[0])
		p := startProxy(b, f.config(port))
		benchmarkFollow(b, p, func(to int) { f.set(mdns.RcodeSuccess, ips[to]) })
	})
}

// startBothNamed starts backends "a" and "b" on 127.0.0.1.
func startBothNamed(b *testing.B) [2]*backend {
	return [2]*backend{startNamedBackend(b, "a"), startNamedBackend(b, "b")}
}

// benchmarkFollow runs the ops of BenchmarkUpdateToConnection against the
// proxy p, whose name is bound to "a": move(i) makes the update
// that moves the name to backend i, 0 for "a" and 1 for "b".
func benchmarkFollow(b *testing.B, p *testProxy, move func(to int)) {
	addr := p.addr
	names := [2]string{"a", "b"}
	expectRoute(b, addr, names[0], 1)
	dials, to := 0, 1
	for b.Loop() {
		move(to)
		n, err := askUntil(addr, names[to], time.Now().Add(e2eWait))
		dials += n
		if err != nil {
			b.Fatal(err)
		}
		to = 1 - to
	}
	b.ReportMetric(float64(dials)/float64(b.N), "dials/op")
	// Every update moves the name from one good set to another: no
	// connection may fail on the way.
	st := p.srv.Stats()
	for _, r := range []server.Reason{server.ReasonNoEndpoints, server.ReasonConnectFailed, server.ReasonConnectTimeout} {
		if n := st.Ended[r]; n != 0 {
			b.Errorf("%d connections ended with %s", n, r)
		}
	}
}
