package kindtest

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"slices"
	"testing"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// fakeT is a testing.TB that records failures instead of failing, for
// checking what the helpers report.
type fakeT struct {
	testing.TB // nil: a method not overridden here panics
	errs       []string
	fatal      bool
	cleanups   []func()
}

func (f *fakeT) Helper()                        {}
func (f *fakeT) Cleanup(fn func())              { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) Error(args ...any)              { f.errs = append(f.errs, fmt.Sprint(args...)) }
func (f *fakeT) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }
func (f *fakeT) Fatalf(format string, a ...any) {
	f.Errorf(format, a...)
	f.fatal = true
	runtime.Goexit()
}

// run calls check with f on a goroutine of its own, as Fatalf ends it, and
// reports whether it failed.
func (f *fakeT) run(check func(t testing.TB)) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(f)
	}()
	<-done
	return f.fatal || len(f.errs) > 0
}

// end runs the cleanups, as the end of a test does.
func (f *fakeT) end() {
	for _, fn := range slices.Backward(f.cleanups) {
		fn()
	}
}

func ep(s string) interpreter.Endpoint {
	return interpreter.Endpoint{Addr: netip.MustParseAddrPort(s), Weight: 1}
}

func TestRecorder(t *testing.T) {
	a, b := ep("10.0.0.1:80"), ep("10.0.0.2:80")
	tests := []struct {
		name   string
		answer interpreter.Resolution
		check  func(t testing.TB, s *Recorder)
		fails  bool
	}{
		{"bound", interpreter.BoundTo([]interpreter.Endpoint{a, b}), func(t testing.TB, s *Recorder) { s.ExpectBound(t, a, b) }, false},
		{"bound in another order", interpreter.BoundTo([]interpreter.Endpoint{b, a}), func(t testing.TB, s *Recorder) { s.ExpectBound(t, a, b) }, true},
		{"bound to fewer", interpreter.BoundTo([]interpreter.Endpoint{a}), func(t testing.TB, s *Recorder) { s.ExpectBound(t, a, b) }, true},
		{"bound to the empty set", interpreter.BoundTo([]interpreter.Endpoint{}), func(t testing.TB, s *Recorder) { s.ExpectBound(t) }, false},
		{"bound to nil", interpreter.BoundTo(nil), func(t testing.TB, s *Recorder) { s.ExpectBound(t) }, true},
		{"not bound", interpreter.NotFoundAnswer(), func(t testing.TB, s *Recorder) { s.ExpectBound(t) }, true},
		{"not found", interpreter.NotFoundAnswer(), func(t testing.TB, s *Recorder) { s.ExpectNotFound(t) }, false},
		{"found", interpreter.BoundTo(nil), func(t testing.TB, s *Recorder) { s.ExpectNotFound(t) }, true},
		{"failed", interpreter.FailedWith(errors.New("dns: web: SERVFAIL")), func(t testing.TB, s *Recorder) {
			if err := s.ExpectFailed(t, "dns:", "SERVFAIL"); err == nil || err.Error() != "dns: web: SERVFAIL" {
				t.Errorf("ExpectFailed returned %v", err)
			}
		}, false},
		{"failed otherwise", interpreter.FailedWith(errors.New("dns: web: SERVFAIL")), func(t testing.TB, s *Recorder) { s.ExpectFailed(t, "NXDOMAIN") }, true},
		{"not failed", interpreter.BoundTo(nil), func(t testing.TB, s *Recorder) { s.ExpectFailed(t) }, true},
		{"not empty", interpreter.BoundTo(nil), func(t testing.TB, s *Recorder) { s.ExpectEmpty(t) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := new(fakeT)
			s := NewRecorder(ft, 1)
			s.Update(tt.answer)
			if failed := ft.run(func(t testing.TB) { tt.check(t, s) }); failed != tt.fails {
				t.Errorf("failed %v (%q), want %v", failed, ft.errs, tt.fails)
			}
			ft.errs = nil
			ft.end()
			if len(ft.errs) != 0 {
				t.Errorf("at the end: %q", ft.errs)
			}
		})
	}
}

func TestRecorderCopiesAndEmpties(t *testing.T) {
	a, b := ep("10.0.0.1:80"), ep("10.0.0.2:80")
	s := NewRecorder(t, 2)
	s.ExpectEmpty(t)
	eps := []interpreter.Endpoint{a}
	s.Update(interpreter.BoundTo(eps))
	eps[0] = b // the sink's caller may reuse its slice
	s.ExpectBound(t, a)
	s.ExpectEmpty(t)
}

func TestRecorderFlagsAtTheEnd(t *testing.T) {
	ft := new(fakeT)
	s := NewRecorder(ft, 1)
	s.Update(interpreter.NotFoundAnswer())
	s.Update(interpreter.NotFoundAnswer()) // beyond the capacity
	s.active.Add(1)                        // as if a call were under way
	s.Update(interpreter.NotFoundAnswer())
	if len(ft.errs) != 0 {
		t.Fatalf("reported before the end: %q", ft.errs)
	}
	ft.end()
	want := []string{"the sink was called concurrently", "the sink got more answers than it could record"}
	if !slices.Equal(ft.errs, want) {
		t.Errorf("at the end %q, want %q", ft.errs, want)
	}
}

func TestLogRecorder(t *testing.T) {
	l := new(LogRecorder)
	log := slog.New(l).With("name", "/svc/web").WithGroup("g")
	log.Warn("resolution failing", "err", "boom")
	log.Warn("resolution failing")
	log.Info("resolves again")
	log.Debug("answer")
	log.Log(t.Context(), slog.LevelWarn+1, "resolution failing")
	for _, c := range []struct {
		level slog.Level
		msg   string
		want  int
	}{
		{slog.LevelWarn, "resolution failing", 2},
		{slog.LevelWarn, "failing", 2},
		{slog.LevelWarn, "", 2},
		{slog.LevelInfo, "", 1},
		{slog.LevelInfo, "resolution failing", 0},
		{slog.LevelDebug, "answer", 1},
		{slog.LevelError, "", 0},
	} {
		if got := l.Count(c.level, c.msg); got != c.want {
			t.Errorf("Count(%v, %q) = %d, want %d", c.level, c.msg, got, c.want)
		}
	}
}
