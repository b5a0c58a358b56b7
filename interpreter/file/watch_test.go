package file

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

// wait bounds every wait for an answer.
const wait = 10 * time.Second

// sink is an interpreter.Sink that queues what it is given for the test.
type sink struct {
	ch       chan interpreter.Resolution
	overflow chan struct{} // closed when an answer did not fit
	once     sync.Once
	good     atomic.Uint64 // Bound and NotFound answers
	failed   atomic.Uint64 // Failed answers
}

func newSink() *sink {
	return &sink{ch: make(chan interpreter.Resolution, 64), overflow: make(chan struct{})}
}

func (s *sink) Update(r interpreter.Resolution) {
	if r.State == interpreter.Failed {
		s.failed.Add(1)
	} else {
		s.good.Add(1)
	}
	select {
	case s.ch <- r:
	default:
		s.once.Do(func() { close(s.overflow) })
	}
}

// next returns the next answer, failing the test if none comes in time.
func (s *sink) next(t *testing.T) interpreter.Resolution {
	t.Helper()
	select {
	case r := <-s.ch:
		return r
	case <-s.overflow:
		t.Fatal("more answers than the test expected")
	case <-time.After(wait):
		t.Fatalf("no answer within %s", wait)
	}
	panic("unreachable")
}

// none fails the test if an answer is queued.
func (s *sink) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-s.ch:
		t.Fatalf("unexpected answer %+v", r)
	default:
	}
}

// syncBuffer is a log destination the watcher and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type fixture struct {
	in    *Interpreter
	dir   string
	stats *interpreter.Stats
	log   *syncBuffer
}

// start runs a file interpreter on dir with prefix "/svc", closed when the
// test ends.
func start(t *testing.T, dir string) *fixture {
	t.Helper()
	fx := &fixture{dir: dir, stats: &interpreter.Stats{}, log: &syncBuffer{}}
	st := &Settings{Dir: dir, Prefix: "/svc"}
	env := interpreter.Env{
		Router: "test",
		Log:    slog.New(slog.NewTextHandler(fx.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Stats:  fx.stats,
	}
	in, err := st.New(env)
	if err != nil {
		t.Fatal(err)
	}
	fx.in = in.(*Interpreter)
	t.Cleanup(func() {
		if err := in.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() {
			t.Logf("interpreter log:\n%s", fx.log)
		}
	})
	return fx
}

// watch resolves /svc/<file> into a new sink until the test ends.
func (fx *fixture) watch(t *testing.T, file string) *sink {
	s := newSink()
	kindtest.ResolveUntil(t.Context(), fx.in, "/svc/"+file, s)
	return s
}

// put writes a file as editors and config managers do: a temporary file
// renamed over the name, so that no reader ever sees half of it.
func put(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func bound(eps ...interpreter.Endpoint) interpreter.Resolution {
	if eps == nil {
		eps = []interpreter.Endpoint{}
	}
	return interpreter.BoundTo(eps)
}

// same reports whether got is want; for a Failed want, whether got failed
// with an error containing every one of wantErr.
func same(got, want interpreter.Resolution, wantErr ...string) bool {
	if got.State != want.State {
		return false
	}
	switch got.State {
	case interpreter.Bound:
		return len(got.Endpoints) == len(want.Endpoints) &&
			(len(got.Endpoints) == 0 || reflect.DeepEqual(got.Endpoints, want.Endpoints))
	case interpreter.Failed:
		for _, s := range wantErr {
			if got.Err == nil || !strings.Contains(got.Err.Error(), s) {
				return false
			}
		}
	}
	return true
}

func expect(t *testing.T, s *sink, want interpreter.Resolution, wantErr ...string) {
	t.Helper()
	if got := s.next(t); !same(got, want, wantErr...) {
		t.Fatalf("got %s %v (err %v), want %s %v %q", got.State, got.Endpoints, got.Err, want.State, want.Endpoints, wantErr)
	}
}

// eventually waits for want, allowing other answers first: a file written
// in place may be read between its truncation and its write.
func eventually(t *testing.T, s *sink, want interpreter.Resolution) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case got := <-s.ch:
			if same(got, want) {
				return
			}
			t.Logf("passing answer %s %v %v", got.State, got.Endpoints, got.Err)
		case <-deadline:
			t.Fatalf("no answer %s %v within %s", want.State, want.Endpoints, wait)
		}
	}
}

func TestFollowsFile(t *testing.T) {
	fx := start(t, t.TempDir())
	web := filepath.Join(fx.dir, "web")
	put(t, web, "10.0.0.1 80\n")
	s := fx.watch(t, "web")
	expect(t, s, bound(ep("10.0.0.1:80", 1)))

	steps := []struct {
		name    string
		do      func(t *testing.T)
		want    interpreter.Resolution
		wantErr []string
		// passing allows a NotFound answer first, for a file removed and
		// then created: the two are not one atomic change.
		passing bool
	}{
		{name: "rename over", do: func(t *testing.T) { put(t, web, "10.0.0.1 80\n10.0.0.2 80 * 2\n") },
			want: bound(ep("10.0.0.1:80", 1), ep("10.0.0.2:80", 2))},
		{name: "delete", do: func(t *testing.T) { rm(t, web) },
			want: interpreter.NotFoundAnswer()},
		{name: "create", do: func(t *testing.T) { put(t, web, "# one\n10.0.0.3 8080 # the new one\n") },
			want: bound(ep("10.0.0.3:8080", 1))},
		{name: "corrupt", do: func(t *testing.T) { put(t, web, "10.0.0.3 8080\n\nweb3.internal 8080\n") },
			want:    interpreter.FailedWith(nil),
			wantErr: []string{web, "line 3", `"web3.internal" is not an IP address (host names are not resolved)`}},
		{name: "fixed", do: func(t *testing.T) { put(t, web, "10.0.0.4 8080\n") },
			want: bound(ep("10.0.0.4:8080", 1))},
		{name: "ipv6 and weights", do: func(t *testing.T) { put(t, web, "2001:db8::1 443 * 0.5\n::1 443 * 3\n") },
			want: bound(ep("[2001:db8::1]:443", 0.5), ep("[::1]:443", 3))},
		{name: "emptied", do: func(t *testing.T) { put(t, web, "# drained\n") },
			want: bound()},
		{name: "too big", do: func(t *testing.T) { put(t, web, strings.Repeat("# padding\n", maxFileSize/10+1)) },
			want: interpreter.FailedWith(nil), wantErr: []string{web, "more than the 1048576 bytes"}},
		{name: "replaced by a directory", do: func(t *testing.T) { rm(t, web); mkdir(t, web) },
			want: interpreter.FailedWith(nil), wantErr: []string{web + " is a directory, not a regular file"}, passing: true},
		{name: "replaced by a fifo", do: func(t *testing.T) { rmAll(t, web); mkfifo(t, web) },
			want: interpreter.FailedWith(nil), wantErr: []string{web + " is a named pipe, not a regular file"}, passing: true},
		{name: "back", do: func(t *testing.T) { rm(t, web); put(t, web, "10.0.0.5 80\n") },
			want: bound(ep("10.0.0.5:80", 1)), passing: true},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			st.do(t)
			got := s.next(t)
			if st.passing && got.State == interpreter.NotFound {
				got = s.next(t)
			}
			if !same(got, st.want, st.wantErr...) {
				t.Fatalf("got %s %v (err %v), want %s %v %q", got.State, got.Endpoints, got.Err, st.want.State, st.want.Endpoints, st.wantErr)
			}
		})
		if !ok {
			return
		}
	}
	if log := fx.log.String(); !strings.Contains(log, "line 3") || !strings.Contains(log, web) || !strings.Contains(log, "level=WARN") {
		t.Errorf("the malformed line was not logged as a warning naming the file and line:\n%s", log)
	}
	if got, want := fx.stats.Errors.Load(), s.failed.Load(); got != want || want < 4 {
		t.Errorf("Stats.Errors = %d, want %d (one per failed answer, at least 4)", got, want)
	}
	if got, want := fx.stats.Updates.Load(), s.good.Load(); got != want || want < 8 {
		t.Errorf("Stats.Updates = %d, want %d (one per good answer, at least 8)", got, want)
	}
	if fx.stats.LastGood.Load() == 0 {
		t.Error("Stats.LastGood not set")
	}
}

func TestWriteInPlace(t *testing.T) {
	fx := start(t, t.TempDir())
	web := filepath.Join(fx.dir, "web")
	s := fx.watch(t, "web")
	expect(t, s, interpreter.NotFoundAnswer())
	for i := range 3 {
		content := fmt.Sprintf("10.0.0.%d 80\n10.0.1.%d 80 * 2\n", i+1, i+1)
		if err := os.WriteFile(web, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		eventually(t, s, bound(ep(fmt.Sprintf("10.0.0.%d:80", i+1), 1), ep(fmt.Sprintf("10.0.1.%d:80", i+1), 2)))
	}
}

// TestWriteSettles appends to a file line by line: the events of the
// writes make one burst, and the file is read once, complete.
func TestWriteSettles(t *testing.T) {
	fx := start(t, t.TempDir())
	s := fx.watch(t, "web")
	expect(t, s, interpreter.NotFoundAnswer())
	f, err := os.Create(filepath.Join(fx.dir, "web"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []interpreter.Endpoint
	for i := range 5 {
		if _, err := fmt.Fprintf(f, "10.0.0.%d 80\n", i+1); err != nil {
			t.Fatal(err)
		}
		want = append(want, ep(fmt.Sprintf("10.0.0.%d:80", i+1), 1))
	}
	expect(t, s, bound(want...))
}

func TestUnchangedNotDelivered(t *testing.T) {
	fx := start(t, t.TempDir())
	web, api := filepath.Join(fx.dir, "web"), filepath.Join(fx.dir, "api")
	put(t, web, "10.0.0.1 80\n")
	put(t, api, "10.0.0.2 80\n")
	sw, sa := fx.watch(t, "web"), fx.watch(t, "api")
	expect(t, sw, bound(ep("10.0.0.1:80", 1)))
	expect(t, sa, bound(ep("10.0.0.2:80", 1)))

	put(t, web, "# same endpoint, new comment\n10.0.0.1   80\n")
	put(t, api, "10.0.0.3 80\n")
	// web's events came first, so it was read before api was.
	expect(t, sa, bound(ep("10.0.0.3:80", 1)))
	sw.none(t)
}

func TestLateDirectory(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b", "svc")
	fx := start(t, dir)
	s := fx.watch(t, "web")
	expect(t, s, interpreter.NotFoundAnswer())

	steps := []struct {
		name string
		do   func(t *testing.T)
		want interpreter.Resolution
		// passing allows other answers first: the file may be read while
		// the directory is gone.
		passing bool
	}{
		{name: "created with a file", do: func(t *testing.T) { mkdir(t, dir); put(t, filepath.Join(dir, "web"), "10.0.0.1 80\n") },
			want: bound(ep("10.0.0.1:80", 1))},
		{name: "file changed", do: func(t *testing.T) { put(t, filepath.Join(dir, "web"), "10.0.0.2 80\n") },
			want: bound(ep("10.0.0.2:80", 1))},
		{name: "tree removed", do: func(t *testing.T) { rmAll(t, filepath.Join(root, "a")) },
			want: interpreter.NotFoundAnswer()},
		{name: "moved into place whole", do: func(t *testing.T) {
			staged := filepath.Join(root, "staged")
			mkdir(t, staged)
			put(t, filepath.Join(staged, "web"), "10.0.0.3 80\n")
			mkdir(t, filepath.Dir(dir))
			if err := os.Rename(staged, dir); err != nil {
				t.Fatal(err)
			}
		}, want: bound(ep("10.0.0.3:80", 1))},
		{name: "moved away", do: func(t *testing.T) {
			if err := os.Rename(dir, filepath.Join(root, "old")); err != nil {
				t.Fatal(err)
			}
		}, want: interpreter.NotFoundAnswer()},
		{name: "created again", do: func(t *testing.T) { mkdir(t, dir); put(t, filepath.Join(dir, "web"), "10.0.0.4 80\n") },
			want: bound(ep("10.0.0.4:80", 1))},
		{name: "removed and created again at once", do: func(t *testing.T) {
			rmAll(t, dir)
			mkdir(t, dir)
			put(t, filepath.Join(dir, "web"), "10.0.0.5 80\n")
		}, want: bound(ep("10.0.0.5:80", 1)), passing: true},
		{name: "changed in the new directory", do: func(t *testing.T) { put(t, filepath.Join(dir, "web"), "10.0.0.6 80\n") },
			want: bound(ep("10.0.0.6:80", 1))},
	}
	for _, st := range steps {
		ok := t.Run(st.name, func(t *testing.T) {
			st.do(t)
			if st.passing {
				eventually(t, s, st.want)
			} else {
				expect(t, s, st.want)
			}
		})
		if !ok {
			return
		}
	}
	// A name first watched once the directory is back.
	put(t, filepath.Join(dir, "api"), "10.0.0.9 80\n")
	expect(t, fx.watch(t, "api"), bound(ep("10.0.0.9:80", 1)))
	if !strings.Contains(fx.log.String(), "directory does not exist") {
		t.Errorf("the missing directory was not logged:\n%s", fx.log)
	}
	if fx.stats.Reconnects.Load() == 0 {
		t.Error("watching the directory again was not counted in Stats.Reconnects")
	}
}

// TestDirectoryRecreatedBeforeEvent drives the watcher by hand so that the
// directory is removed and created again before the watcher sees that it
// went: the new directory must be watched, though its path is the same.
func TestDirectoryRecreatedBeforeEvent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "svc")
	mkdir(t, dir)
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fsw.Close() })
	in := &Interpreter{dir: dir, prefix: "/svc", log: slog.New(slog.DiscardHandler), stats: &interpreter.Stats{}, fsw: fsw}
	w := newWatcher(in)
	w.attach()
	if w.watched != dir {
		t.Fatalf("watching %q, want %q", w.watched, dir)
	}
	rmAll(t, dir)
	mkdir(t, dir)
	// until the watcher has seen the directory go
	for ev := range events(t, fsw) {
		w.event(ev, time.Now())
		if ev.Name == dir && ev.Has(fsnotify.Remove) {
			break
		}
	}
	if w.watched != dir {
		t.Fatalf("watching %q, want %q", w.watched, dir)
	}
	web := filepath.Join(dir, "web")
	put(t, web, "10.0.0.1 80\n")
	for ev := range events(t, fsw) {
		if ev.Name == web {
			return
		}
	}
}

// events yields the events of fsw, failing the test if none comes in time.
func events(t *testing.T, fsw *fsnotify.Watcher) func(yield func(fsnotify.Event) bool) {
	return func(yield func(fsnotify.Event) bool) {
		for {
			select {
			case ev := <-fsw.Events:
				if !yield(ev) {
					return
				}
			case err := <-fsw.Errors:
				t.Fatalf("fsnotify: %v", err)
			case <-time.After(wait):
				t.Fatalf("no event within %s", wait)
			}
		}
	}
}

func TestBurst(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name   string
		events []int // milliseconds after t0
		want   int   // when the read is due
	}{
		{name: "one event", events: []int{0}, want: 75},
		{name: "events close together slide", events: []int{0, 50, 100}, want: 175},
		{name: "a long burst is cut", events: []int{0, 70, 140, 210, 280, 350, 420, 490}, want: 500},
		{name: "events at once", events: []int{10, 10, 10}, want: 85},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b burst
			for _, ms := range tt.events {
				b.event(at(ms))
			}
			if !b.pending() || !b.due.Equal(at(tt.want)) {
				t.Errorf("due %v after t0, want %dms", b.due.Sub(t0), tt.want)
			}
		})
	}
}

// TestSymlinkSwap follows a file that is a symlink through another entry
// of the directory, swapped atomically as a Kubernetes ConfigMap volume
// does with "..data".
func TestSymlinkSwap(t *testing.T) {
	fx := start(t, t.TempDir())
	for _, v := range []string{"v1", "v2"} {
		mkdir(t, filepath.Join(fx.dir, ".."+v))
	}
	put(t, filepath.Join(fx.dir, "..v1", "web"), "10.0.0.1 80\n")
	put(t, filepath.Join(fx.dir, "..v2", "web"), "10.0.0.2 80\n")
	symlink(t, "..v1", filepath.Join(fx.dir, "..data"))
	symlink(t, filepath.Join("..data", "web"), filepath.Join(fx.dir, "web"))

	s := fx.watch(t, "web")
	expect(t, s, bound(ep("10.0.0.1:80", 1)))
	symlink(t, "..v2", filepath.Join(fx.dir, "..data_tmp"))
	if err := os.Rename(filepath.Join(fx.dir, "..data_tmp"), filepath.Join(fx.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	expect(t, s, bound(ep("10.0.0.2:80", 1)))
}

func TestManyNames(t *testing.T) {
	fx := start(t, t.TempDir())
	const n = 200
	for i := range n {
		if i%2 == 0 {
			put(t, filepath.Join(fx.dir, fmt.Sprint("s", i)), fmt.Sprintf("10.0.%d.%d 80\n", i/256, i%256))
		}
	}
	before := runtime.NumGoroutine()
	sinks := make([]*sink, n)
	for i := range sinks {
		sinks[i] = fx.watch(t, fmt.Sprint("s", i))
	}
	addr := func(i, port int) string { return fmt.Sprintf("10.0.%d.%d:%d", i/256, i%256, port) }
	for i, s := range sinks {
		if i%2 == 0 {
			expect(t, s, bound(ep(addr(i, 80), 1)))
		} else {
			expect(t, s, interpreter.NotFoundAnswer())
		}
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("goroutines went from %d to %d watching %d names", before, after, n)
	}
	for i := range n {
		put(t, filepath.Join(fx.dir, fmt.Sprint("s", i)), fmt.Sprintf("10.0.%d.%d 81\n", i/256, i%256))
	}
	for i, s := range sinks {
		expect(t, s, bound(ep(addr(i, 81), 1)))
	}
}

func TestSameNameWatchedTwice(t *testing.T) {
	fx := start(t, t.TempDir())
	web := filepath.Join(fx.dir, "web")
	put(t, web, "10.0.0.1 80\n")
	ctx1, cancel1 := context.WithCancel(t.Context())
	s1, s2 := newSink(), newSink()
	kindtest.ResolveUntil(ctx1, fx.in, "/svc/web", s1)
	kindtest.ResolveUntil(t.Context(), fx.in, "/svc/web", s2)
	expect(t, s1, bound(ep("10.0.0.1:80", 1)))
	expect(t, s2, bound(ep("10.0.0.1:80", 1)))

	// The old watch ends as a new one of the same name starts: the new one
	// gets the current answer although the file has not changed.
	cancel1()
	s3 := fx.watch(t, "web")
	expect(t, s3, bound(ep("10.0.0.1:80", 1)))
	s2.none(t)

	put(t, web, "10.0.0.2 80\n")
	expect(t, s2, bound(ep("10.0.0.2:80", 1)))
	expect(t, s3, bound(ep("10.0.0.2:80", 1)))
	s1.none(t)
}

func TestCancelStopsDelivery(t *testing.T) {
	fx := start(t, t.TempDir())
	web := filepath.Join(fx.dir, "web")
	put(t, web, "10.0.0.1 80\n")

	done, cancelDone := context.WithCancel(t.Context())
	cancelDone()
	early := newSink()
	kindtest.ResolveUntil(done, fx.in, "/svc/web", early)

	ctx, cancel := context.WithCancel(t.Context())
	s := newSink()
	kindtest.ResolveUntil(ctx, fx.in, "/svc/web", s)
	witness := fx.watch(t, "web")
	expect(t, s, bound(ep("10.0.0.1:80", 1)))
	expect(t, witness, bound(ep("10.0.0.1:80", 1)))

	cancel()
	put(t, web, "10.0.0.2 80\n")
	expect(t, witness, bound(ep("10.0.0.2:80", 1)))
	s.none(t)
	// early's resolve was stopped as soon as it began: the first answer
	// may have reached it before the stop, the change after it never.
	for {
		select {
		case r := <-early.ch:
			if !same(r, bound(ep("10.0.0.1:80", 1))) {
				t.Fatalf("answer %+v after the resolve was stopped", r)
			}
			continue
		default:
		}
		break
	}
}

func TestBadName(t *testing.T) {
	fx := start(t, t.TempDir())
	tests := []struct{ name, wantErr string }{
		{"/other/web", `file: "/other/web" is not under the prefix "/svc"`},
		{"/svc/a/b", `file: "/svc/a/b" does not name a file`},
		{"/svc/..", `".." is not a file name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSink()
			kindtest.ResolveUntil(t.Context(), fx.in, tt.name, s)
			select {
			case got := <-s.ch:
				if !same(got, interpreter.FailedWith(nil), tt.wantErr) {
					t.Fatalf("got %s %v (err %v), want failed with %q", got.State, got.Endpoints, got.Err, tt.wantErr)
				}
			default:
				t.Fatal("no answer when Resolve returned: a bad name needs no lookup")
			}
		})
	}
}

func TestCloseWaits(t *testing.T) {
	dir := t.TempDir()
	put(t, filepath.Join(dir, "web"), "10.0.0.1 80\n")
	before := runtime.NumGoroutine()

	st := &Settings{Dir: dir, Prefix: "/svc"}
	env := interpreter.Env{Router: "test", Log: slog.New(slog.DiscardHandler), Stats: &interpreter.Stats{}}
	in, err := st.New(env)
	if err != nil {
		t.Fatal(err)
	}
	var sinks []*sink
	for i := range 20 {
		ctx, cancel := context.WithCancel(t.Context())
		t.Cleanup(cancel)
		s := newSink()
		kindtest.ResolveUntil(ctx, in, "/svc/web", s)
		sinks = append(sinks, s)
		if i%3 == 0 {
			cancel() // some end before Close, their AfterFuncs running
		}
	}
	for i, s := range sinks {
		if i%3 != 0 {
			expect(t, s, bound(ep("10.0.0.1:80", 1)))
		}
	}
	if err := in.Close(); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	put(t, filepath.Join(dir, "web"), "10.0.0.2 80\n")
	kindtest.ResolveUntil(t.Context(), in, "/svc/web", sinks[1])
	deadline := time.Now().Add(wait)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond) // goroutines exit after their last Done
	}
	for i, s := range sinks {
		if i%3 != 0 {
			s.none(t)
		}
	}
}

func rm(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}

func rmAll(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}
