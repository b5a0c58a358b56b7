package kindtest

import (
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Wait is how long Recorder.Next waits for an answer before it fails the
// test.
const Wait = 10 * time.Second

// Recorder is an interpreter.Sink that records the answers of a watch, for
// a test to take in order with Next or check with the Expect methods. When
// the test ends, it reports as test errors two faults that Update cannot
// report itself, not being on the test's goroutine: calls of Update that
// ran concurrently (the calls of one watch never may), and answers beyond
// its capacity, which it drops.
type Recorder struct {
	ch         chan interpreter.Resolution
	active     atomic.Int32
	concurrent atomic.Bool
	overflow   atomic.Bool
}

var _ interpreter.Sink = (*Recorder)(nil)

// NewRecorder returns a Recorder that holds up to capacity answers not yet
// taken, checked when t ends. A small capacity also catches a kind that
// delivers more answers than the test expects.
func NewRecorder(t testing.TB, capacity int) *Recorder {
	s := &Recorder{ch: make(chan interpreter.Resolution, capacity)}
	t.Cleanup(func() {
		if s.concurrent.Load() {
			t.Error("the sink was called concurrently")
		}
		if s.overflow.Load() {
			t.Error("the sink got more answers than it could record")
		}
	})
	return s
}

// Update records r, with a copy of its endpoints: a sink must not keep the
// slice it is given. The copy is nil where r's is, and empty where r's is.
func (s *Recorder) Update(r interpreter.Resolution) {
	if s.active.Add(1) != 1 {
		s.concurrent.Store(true)
	}
	defer s.active.Add(-1)
	r.Endpoints = slices.Clone(r.Endpoints)
	select {
	case s.ch <- r:
	default:
		s.overflow.Store(true)
	}
}

// Next returns the next answer, waiting for it up to Wait; after that it
// fails the test.
func (s *Recorder) Next(t testing.TB) interpreter.Resolution {
	t.Helper()
	select {
	case r := <-s.ch:
		return r
	case <-time.After(Wait):
		t.Fatalf("no answer within %s", Wait)
		return interpreter.Resolution{}
	}
}

// ExpectBound checks that the next answer is Bound to exactly eps, in
// order. With no eps it wants the empty set as a non-nil, empty slice: a
// Bound answer whose Endpoints are nil does not match.
func (s *Recorder) ExpectBound(t testing.TB, eps ...interpreter.Endpoint) {
	t.Helper()
	r := s.Next(t)
	if eps == nil {
		eps = []interpreter.Endpoint{}
	}
	if r.State != interpreter.Bound || !reflect.DeepEqual(r.Endpoints, eps) {
		t.Fatalf("got %v %v (%v), want bound %v", r.State, r.Endpoints, r.Err, eps)
	}
}

// ExpectNotFound checks that the next answer is NotFound.
func (s *Recorder) ExpectNotFound(t testing.TB) {
	t.Helper()
	if r := s.Next(t); r.State != interpreter.NotFound {
		t.Fatalf("got %v %v (%v), want not_found", r.State, r.Endpoints, r.Err)
	}
}

// ExpectFailed checks that the next answer is Failed with an error
// containing each of subs, and returns the error.
func (s *Recorder) ExpectFailed(t testing.TB, subs ...string) error {
	t.Helper()
	r := s.Next(t)
	if r.State != interpreter.Failed || r.Err == nil {
		t.Fatalf("got %v %v (%v), want failed", r.State, r.Endpoints, r.Err)
	}
	for _, sub := range subs {
		if !strings.Contains(r.Err.Error(), sub) {
			t.Fatalf("error %q, want it to contain %q", r.Err, sub)
		}
	}
	return r.Err
}

// ExpectEmpty checks that no answer is waiting to be taken: nothing was
// delivered since the last one taken. It does not wait; called after the
// interpreter's Close, which waits for every goroutine that could deliver,
// it shows that nothing more was delivered at all.
func (s *Recorder) ExpectEmpty(t testing.TB) {
	t.Helper()
	select {
	case r := <-s.ch:
		t.Fatalf("unexpected answer %v %v (%v)", r.State, r.Endpoints, r.Err)
	default:
	}
}
