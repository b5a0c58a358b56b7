package consul

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

// resolve starts a watch of name for the rest of the test.
func resolve(t *testing.T, in testInterp, name string) *kindtest.Recorder {
	t.Helper()
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(t.Context(), in, name, sink)
	return sink
}

func TestBlockingQueriesFollowChanges(t *testing.T) {
	f := startFakeConsul(t)
	f.set("web", instA.json())
	st := testSettings(f.url())
	in := newTestInterp(t, st)
	sink := resolve(t, in, "/svc/web")
	sink.ExpectBound(t, epA)

	first := f.next(t)
	if first.method != http.MethodGet || first.path != "/v1/health/service/web" || first.query.Get("passing") != "true" {
		t.Fatalf("first request %s %s?%s, want GET /v1/health/service/web?passing=true", first.method, first.path, first.query.Encode())
	}
	if first.query.Has("index") || first.query.Has("wait") {
		t.Fatalf("first request has index or wait (%s): it must not block", first.query.Encode())
	}
	blocking := f.next(t)
	if got, want := blocking.index(), strconv.FormatUint(f.serviceIndex("web"), 10); got != want {
		t.Fatalf("second request has index=%q, want the X-Consul-Index of the first answer, %s", got, want)
	}
	w, err := time.ParseDuration(blocking.query.Get("wait"))
	if err != nil || w > st.Wait || w < st.Wait-st.Wait/16-time.Millisecond {
		t.Fatalf("wait=%q, want a duration within [wait - wait/16, wait] (%s)", blocking.query.Get("wait"), st.Wait)
	}

	f.set("web", instA.json(), instB.json())
	sink.ExpectBound(t, epA, epB)
	f.set("web") // no passing instance left
	sink.ExpectNotFound(t)
	f.set("web", instB.json())
	sink.ExpectBound(t, epB)
	// A change elsewhere, or a write that changes nothing, is not delivered.
	f.set("other", instA.json())
	idx := f.set("web", instB.json())
	f.nextWithIndex(t, idx)
	in.Close()
	sink.ExpectEmpty(t)
	if u, e, r := in.stats.Updates.Load(), in.stats.Errors.Load(), in.stats.Reconnects.Load(); u != 4 || e != 0 || r != 0 {
		t.Fatalf("updates %d, errors %d, reconnects %d; want 4, 0, 0", u, e, r)
	}
	if in.stats.LastGood.Load() == 0 {
		t.Fatal("LastGood not set")
	}
}

func TestQueryParameters(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("  9f1c3b2a-token-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		edit      func(*Settings)
		dc, tag   string // "": absent
		token     string // "": no header
		queryKeys int
	}{
		{"none", func(*Settings) {}, "", "", "", 1},
		{"dc tag token", func(s *Settings) { s.Datacenter, s.Tag, s.Token = "eu-west_1", "primary", "s3cr3t" }, "eu-west_1", "primary", "s3cr3t", 3},
		{"tag to escape", func(s *Settings) { s.Tag = "a b&c=d/é" }, "", "a b&c=d/é", "", 2},
		{"token file", func(s *Settings) { s.TokenFile = tokenFile }, "", "", "9f1c3b2a-token-from-file", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFakeConsul(t)
			f.set("web-api.v2", instA.json())
			st := testSettings(f.url())
			tt.edit(&st)
			in := newTestInterp(t, st)
			sink := resolve(t, in, "/svc/web-api.v2")
			sink.ExpectBound(t, epA)
			for i, r := range []seenRequest{f.next(t), f.next(t)} {
				if r.path != "/v1/health/service/web-api.v2" {
					t.Errorf("request %d: path %s", i, r.path)
				}
				q := r.query
				if q.Get("passing") != "true" || q.Get("dc") != tt.dc || q.Get("tag") != tt.tag || q.Has("dc") != (tt.dc != "") || q.Has("tag") != (tt.tag != "") {
					t.Errorf("request %d: query %s, want passing=true, dc %q, tag %q", i, q.Encode(), tt.dc, tt.tag)
				}
				if n := len(q); i == 0 && n != tt.queryKeys || i == 1 && n != tt.queryKeys+2 {
					t.Errorf("request %d: query %s has unexpected keys", i, q.Encode())
				}
				if r.hasToken != (tt.token != "") || r.token != tt.token {
					t.Errorf("request %d: X-Consul-Token %q (sent %v), want %q", i, r.token, r.hasToken, tt.token)
				}
			}
		})
	}
}

func TestAddressesAndWeights(t *testing.T) {
	f := startFakeConsul(t)
	f.set("web",
		inst{id: "a", node: "n1", nodeAddr: "10.0.0.1", addr: "192.0.2.10", port: 80, weight: 5}.json(),             // service address
		inst{id: "b", node: "n2", nodeAddr: "10.0.0.2", addr: "", port: 81, noWeights: true}.json(),                 // node address, no Weights
		inst{id: "c", node: "n3", nodeAddr: "10.0.0.3", addr: "2001:db8::1", port: 443, weight: 0}.json(),           // IPv6, weight 0
		inst{id: "d", node: "n4", nodeAddr: "10.0.0.4", addr: "web-4.service.internal", port: 80, weight: 1}.json(), // host name
		inst{id: "e", node: "n5", nodeAddr: "node5.internal", addr: "", port: 80, weight: 1}.json(),                 // node host name
		inst{id: "f", node: "n6", nodeAddr: "10.0.0.6", addr: "", port: 0, weight: 1}.json(),                        // port 0
		inst{id: "g", node: "n7", nodeAddr: "10.0.0.7", addr: "", port: 80, weight: -2}.json(),                      // negative weight
	)
	in := newTestInterp(t, testSettings(f.url()))
	sink := resolve(t, in, "/svc/web")
	sink.ExpectBound(t, ep("10.0.0.2:81", 1), ep("192.0.2.10:80", 5), ep("[2001:db8::1]:443", 1))
	if got := in.stats.Errors.Load(); got != 4 {
		t.Errorf("errors %d, want 4 (one per instance left out)", got)
	}
	if got := in.logs.Count(slog.LevelWarn, "instances left out"); got != 1 {
		t.Errorf("%d warnings about instances left out, want 1", got)
	}
	// The same answer again (a write that changed nothing) is neither
	// delivered nor counted again.
	f.nextWithIndex(t, f.serviceIndex("web"))
	idx := f.set("web", f.entries("web")...)
	f.nextWithIndex(t, idx)
	if got := in.stats.Errors.Load(); got != 4 || in.logs.Count(slog.LevelWarn, "instances left out") != 1 {
		t.Errorf("after an unchanged answer: errors %d, want 4, and one warning", got)
	}
	in.Close()
	sink.ExpectEmpty(t)
}

func TestUnknownServiceIsNotFound(t *testing.T) {
	f := startFakeConsul(t)
	in := newTestInterp(t, testSettings(f.url()))
	sink := resolve(t, in, "/svc/nothing")
	sink.ExpectNotFound(t)
	f.set("nothing", instA.json())
	sink.ExpectBound(t, epA)
	if in.stats.Errors.Load() != 0 {
		t.Fatalf("errors %d, want 0", in.stats.Errors.Load())
	}
}

func TestIndexGoingBackwardsResets(t *testing.T) {
	f := startFakeConsul(t)
	f.setIndex("web", 100, instA.json())
	st := testSettings(f.url())
	st.Wait = 300 * time.Millisecond // the fake holds a query at a higher index until its wait ends, as Consul does
	in := newTestInterp(t, st)
	sink := resolve(t, in, "/svc/web")
	sink.ExpectBound(t, epA)
	f.nextWithIndex(t, 100)

	f.setIndex("web", 40, instB.json()) // a snapshot restored
	sink.ExpectBound(t, epB)
	r := f.next(t)
	for r.index() == "100" {
		r = f.next(t)
	}
	if r.query.Has("index") {
		t.Fatalf("after the index went backwards, a query with index=%s; want one without an index", r.index())
	}
	if r = f.next(t); r.index() != "40" {
		t.Fatalf("after the fresh fetch, a query with index=%q; want 40", r.index())
	}
	if got := in.logs.Count(slog.LevelInfo, "index went backwards"); got != 1 {
		t.Fatalf("%d logs of the reset, want 1", got)
	}
	f.set("web", instA.json(), instB.json())
	sink.ExpectBound(t, epA, epB)
}

func TestIndexZeroDoesNotSpin(t *testing.T) {
	f := startFakeConsul(t)
	// A buggy agent answering index 0 at once, every time.
	f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		writeHealth(w, 0, "["+instA.json()+"]")
		return true
	})
	in := newTestInterp(t, testSettings(f.url()))
	sink := resolve(t, in, "/svc/web")
	sink.ExpectBound(t, epA)
	if r := f.next(t); r.query.Has("index") {
		t.Fatalf("first query has index=%s", r.index())
	}
	for range 3 {
		if r := f.next(t); r.index() != "1" {
			t.Fatalf("after an answer with index 0, a query with index=%q; want 1", r.index())
		}
	}
}

func TestRateLimitWhenIndexStalls(t *testing.T) {
	f := startFakeConsul(t)
	// An agent that answers every query at once with the same index.
	f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		writeHealth(w, 7, "["+instA.json()+"]")
		return true
	})
	in := newTestInterp(t, testSettings(f.url()))
	const interval = 100 * time.Millisecond
	in.lim.interval = interval
	sink := resolve(t, in, "/svc/web")
	sink.ExpectBound(t, epA)
	const n = 8
	var at [n]time.Time
	for i := range n {
		r := f.next(t)
		at[i] = r.at
		if i > 0 && r.index() != "7" {
			t.Fatalf("query %d has index=%q, want 7", i, r.index())
		}
	}
	// A burst of two, then one per interval: query i starts at least
	// (i-1) intervals after the first. The slack covers the first query's
	// own latency, by which the server saw it late.
	const slack = 30 * time.Millisecond
	for i := 2; i < n; i++ {
		if d := at[i].Sub(at[0]); d < time.Duration(i-1)*interval-slack {
			t.Fatalf("query %d came %s after the first, want at least %s: the loop is not rate-limited", i, d, time.Duration(i-1)*interval-slack)
		}
	}
	if in.stats.Updates.Load() != 1 {
		t.Fatalf("updates %d, want 1: repeated answers are not delivered", in.stats.Updates.Load())
	}
}

func TestServerErrorsKeepLastSet(t *testing.T) {
	f := startFakeConsul(t)
	f.set("web", instA.json())
	var n atomic.Int64
	f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if i := n.Add(1); i >= 2 && i <= 4 { // the three queries after the first
			http.Error(w, "No cluster leader", http.StatusInternalServerError)
			return true
		}
		return false
	})
	in := newTestInterp(t, testSettings(f.url()))
	sink := resolve(t, in, "/svc/web")
	sink.ExpectBound(t, epA)
	for range 3 {
		sink.ExpectFailed(t, "consul: /svc/web: ", `HTTP 500 Internal Server Error: "No cluster leader"`)
	}
	// The retries kept the index: the next query blocks, and a change
	// ends it.
	var r seenRequest
	for range 5 {
		r = f.next(t)
	}
	if r.index() != strconv.FormatUint(f.serviceIndex("web"), 10) {
		t.Fatalf("the query after the errors has index=%q, want the last good one", r.index())
	}
	f.set("web", instA.json(), instB.json())
	sink.ExpectBound(t, epA, epB)
	if e, rc := in.stats.Errors.Load(), in.stats.Reconnects.Load(); e != 3 || rc != 3 {
		t.Fatalf("errors %d, reconnects %d; want 3 and 3", e, rc)
	}
	if w, i := in.logs.Count(slog.LevelWarn, "resolution failing"), in.logs.Count(slog.LevelInfo, "resolves again"); w != 1 || i != 1 {
		t.Fatalf("%d warnings and %d recoveries logged, want 1 and 1", w, i)
	}
}

func TestBadResponses(t *testing.T) {
	entry := instA.json()
	tests := []struct {
		name    string
		respond func(w http.ResponseWriter)
		want    string
	}{
		{"500", func(w http.ResponseWriter) { http.Error(w, "rpc error", http.StatusInternalServerError) }, `HTTP 500 Internal Server Error: "rpc error"`},
		{"403", func(w http.ResponseWriter) { http.Error(w, "ACL not found", http.StatusForbidden) }, `HTTP 403 Forbidden: "ACL not found"`},
		{"429", func(w http.ResponseWriter) {
			http.Error(w, "Your IP is issuing too many concurrent connections, please rate limit your calls", http.StatusTooManyRequests)
		}, "HTTP 429 Too Many Requests"},
		{"404 empty", func(w http.ResponseWriter) { w.WriteHeader(http.StatusNotFound) }, "HTTP 404 Not Found"},
		{"redirect", func(w http.ResponseWriter) {
			w.Header().Set("Location", "http://192.0.2.1/")
			w.WriteHeader(http.StatusFound)
		}, "HTTP 302 Found"},
		{"no index", func(w http.ResponseWriter) { w.Write([]byte("[" + entry + "]")) }, "no X-Consul-Index header"},
		{"bad index", func(w http.ResponseWriter) {
			w.Header().Set("X-Consul-Index", "12a")
			w.Write([]byte("[" + entry + "]"))
		}, `X-Consul-Index "12a", not an unsigned integer`},
		{"not json", func(w http.ResponseWriter) { writeHealth(w, 9, "<html>") }, "not valid JSON"},
		{"object", func(w http.ResponseWriter) { writeHealth(w, 9, `{"Node":{}}`) }, "not a JSON array"},
		{"cut", func(w http.ResponseWriter) { writeHealth(w, 9, "["+entry[:40]) }, "ended early"},
		{"empty", func(w http.ResponseWriter) { writeHealth(w, 9, "") }, "response body is empty"},
		{"trailing", func(w http.ResponseWriter) { writeHealth(w, 9, "[] []") }, "data after its JSON array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFakeConsul(t)
			f.set("web", instA.json())
			var n atomic.Int64
			f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if n.Add(1) == 2 {
					tt.respond(w)
					return true
				}
				return false
			})
			in := newTestInterp(t, testSettings(f.url()))
			sink := resolve(t, in, "/svc/web")
			sink.ExpectBound(t, epA)
			sink.ExpectFailed(t, "consul: /svc/web: ", tt.want)
			f.set("web", instB.json())
			sink.ExpectBound(t, epB)
			if e, rc := in.stats.Errors.Load(), in.stats.Reconnects.Load(); e != 1 || rc != 1 {
				t.Fatalf("errors %d, reconnects %d; want 1 and 1", e, rc)
			}
		})
	}
}

func TestUnusableInstancesFailWithoutRetrying(t *testing.T) {
	f := startFakeConsul(t)
	f.set("web", inst{id: "x", node: "n1", nodeAddr: "10.0.0.1", addr: "x.internal", port: 80, weight: 1}.json())
	in := newTestInterp(t, testSettings(f.url()))
	sink := resolve(t, in, "/svc/web")
	sink.ExpectFailed(t, "no instance of 1 can be used", `instance "x" on node "n1": service address "x.internal" is not an IP address`)
	// Consul answered: the next query blocks on the new index, no retry.
	f.nextWithIndex(t, f.serviceIndex("web"))
	f.set("web", instA.json())
	sink.ExpectBound(t, epA)
	if in.stats.Reconnects.Load() != 0 {
		t.Fatalf("reconnects %d, want 0", in.stats.Reconnects.Load())
	}
}

func TestSlowAnswersTimeOut(t *testing.T) {
	tests := []struct {
		name     string
		blocking bool // hold the blocking queries, else the first
		want     string
	}{
		{"blocking query", true, "no answer within"},
		{"first query", false, "no answer within the timeout (250ms)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFakeConsul(t)
			f.set("web", instA.json())
			var held atomic.Int64
			f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Query().Has("index") == tt.blocking && held.Add(1) <= 2 {
					<-r.Context().Done() // past wait + timeout: the client gives up
					return true
				}
				return false
			})
			st := testSettings(f.url())
			st.Wait, st.Timeout = 100*time.Millisecond, 250*time.Millisecond
			in := newTestInterp(t, st)
			sink := resolve(t, in, "/svc/web")
			if tt.blocking {
				sink.ExpectBound(t, epA)
			}
			sink.ExpectFailed(t, tt.want)
			sink.ExpectFailed(t, tt.want)
			// Recovered: the set is delivered again after the failures.
			sink.ExpectBound(t, epA)
			if e, rc := in.stats.Errors.Load(), in.stats.Reconnects.Load(); e != 2 || rc != 2 {
				t.Fatalf("errors %d, reconnects %d; want 2 and 2", e, rc)
			}
		})
	}
}

func TestAgentDown(t *testing.T) {
	f := startFakeConsul(t)
	f.set("web", instA.json())
	st := testSettings(f.url())
	f.srv.Close() // nothing listens any more
	in := newTestInterp(t, st)
	sink := resolve(t, in, "/svc/web")
	sink.ExpectFailed(t, "consul: /svc/web:", "connection refused")
	sink.ExpectFailed(t, "connection refused")
	if in.stats.LastGood.Load() != 0 {
		t.Fatal("LastGood set without a good answer")
	}
}

func TestTokenFileReadAgainWhenDenied(t *testing.T) {
	f := startFakeConsul(t)
	f.set("web", instA.json())
	f.setIntercept(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Header.Get("X-Consul-Token") != "new-token" {
			http.Error(w, "ACL not found", http.StatusForbidden)
			return true
		}
		return false
	})
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("old-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := testSettings(f.url())
	st.TokenFile = file
	in := newTestInterp(t, st)
	if err := os.WriteFile(file, []byte("new-token\n"), 0o600); err != nil { // rotated
		t.Fatal(err)
	}
	sink := resolve(t, in, "/svc/web")
	sink.ExpectFailed(t, "HTTP 403")
	for r := sink.Next(t); r.State != interpreter.Bound; r = sink.Next(t) {
		if r.State != interpreter.Failed {
			t.Fatalf("got %v, want failures then bound", r.State)
		}
	}
	if in.logs.Count(slog.LevelInfo, "read a new token") != 1 {
		t.Fatal("the new token was not logged")
	}
	if first := f.next(t); first.token != "old-token" {
		t.Fatalf("first query sent token %q, want the old one", first.token)
	}
}

func TestHTTP2OverTLS(t *testing.T) {
	f := startFake(t, true)
	f.set("web", instA.json())
	in := newTestInterp(t, testSettings(f.url()))
	in.client.Transport.(*http.Transport).TLSClientConfig = f.srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	resolve(t, in, "/svc/web").ExpectBound(t, epA)
	for i := range 5 {
		resolve(t, in, "/svc/s"+strconv.Itoa(i)).ExpectNotFound(t)
	}
	waitFor(t, "six blocking queries under way", func() bool { return f.inFlight.Load() == 6 })
	if r := f.next(t); r.proto != 2 {
		t.Fatalf("HTTP/%d, want HTTP/2", r.proto)
	}
	if c := f.conns.Load(); c != 1 {
		t.Fatalf("%d connections for six names over HTTP/2, want 1", c)
	}
}

func TestStopEndsTheQuery(t *testing.T) {
	f := startFakeConsul(t)
	f.set("a", instA.json())
	f.set("b", instB.json())
	in := newTestInterp(t, testSettings(f.url()))
	ctxA, stopA := context.WithCancel(context.Background())
	sinkA, sinkB := kindtest.NewRecorder(t, sinkCap), kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(ctxA, in, "/svc/a", sinkA)
	kindtest.ResolveUntil(context.Background(), in, "/svc/b", sinkB)
	sinkA.ExpectBound(t, epA)
	sinkB.ExpectBound(t, epB)
	waitFor(t, "both blocking queries under way", func() bool { return f.inFlight.Load() == 2 })

	stopA()
	stopA() // again: harmless
	waitFor(t, "the stopped watch's query and goroutine end", func() bool {
		return f.inFlight.Load() == 1 && watchGoroutines() == 1 && in.active.Load() == 1
	})
	f.set("a", instA.json(), instB.json())
	f.set("b", instA.json(), instB.json())
	sinkB.ExpectBound(t, epA, epB)
	in.Close()
	sinkA.ExpectEmpty(t)
	sinkB.ExpectEmpty(t)
	// Close has waited for them; they may still be returning.
	waitFor(t, "no watch goroutine after Close", func() bool { return watchGoroutines() == 0 })
}

func TestResolveInvalidNameOrClosed(t *testing.T) {
	f := startFakeConsul(t)
	in := newTestInterp(t, testSettings(f.url()))
	sink := kindtest.NewRecorder(t, sinkCap)
	kindtest.ResolveUntil(t.Context(), in, "/web", sink)
	sink.ExpectFailed(t, `consul: "/web" is not a Consul service name: names take the form /svc/<service>`)
	kindtest.ResolveUntil(t.Context(), in, "/svc/a b", sink)
	sink.ExpectFailed(t, `contains ' '`)
	in.Close()
	kindtest.ResolveUntil(t.Context(), in, "/svc/web", sink)
	sink.ExpectFailed(t, "consul: interpreter closed")
	if len(f.reqs) != 0 {
		t.Fatal("a request was sent")
	}
}

func TestBackoffResetsAfterGoodAnswer(t *testing.T) {
	in := newTestInterp(t, testSettings("http://127.0.0.1:1"))
	w := in.newNameWatch("/svc/web", "web", kindtest.NewRecorder(t, sinkCap))
	defer w.release()
	w.backoff = interpreter.Backoff{Min: time.Second, Max: time.Hour}
	for range 20 {
		w.backoff.Next()
	}
	if err := w.handle(answer{res: interpreter.NotFoundAnswer()}); err != nil {
		t.Fatal(err)
	}
	if d := w.backoff.Next(); d > time.Second {
		t.Fatalf("backoff after a good answer %s, want at most backoff_min", d)
	}
}
