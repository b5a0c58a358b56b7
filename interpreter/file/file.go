// Package file is the interpreter of kind "file": a name resolves to the
// endpoints listed in one file of a directory, in the format of namerd's
// io.l5d.fs namer, and follows the file as it changes.
//
// The name /svc/web reads <dir>/web. One goroutine per interpreter watches
// the directory through inotify (fsnotify), reads the files and calls the
// sinks; Resolve only registers a watch and wakes that goroutine, so the
// event loops that call Resolve never touch the disk.
package file

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/fsnotify/fsnotify"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Interpreter resolves names from the files of one directory.
type Interpreter struct {
	dir    string
	prefix string
	log    *slog.Logger
	stats  *interpreter.Stats
	fsw    *fsnotify.Watcher

	wake chan struct{} // capacity 1: a pending wake-up of the watcher
	done chan struct{} // closed by Close
	// wg counts the watcher goroutine, so that Close returns only once it
	// has exited.
	wg sync.WaitGroup

	mu     sync.Mutex
	closed bool
	live   map[*subscription]struct{} // subscriptions not stopped
	added  []*subscription            // new, for the watcher to take
	ended  []*subscription            // stopped, for the watcher to drop
}

var _ interpreter.Interpreter = (*Interpreter)(nil)

// subscription is one watch of a name.
type subscription struct {
	sink    interpreter.Sink
	file    string      // the file name within the directory
	stopped atomic.Bool // the watch was stopped: deliver nothing more

	answered bool // the sink has had an answer; the watcher's only
}

func newInterpreter(st *Settings, env interpreter.Env) (*Interpreter, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching %s: %w", st.Dir, err)
	}
	in := &Interpreter{
		dir:    st.Dir,
		prefix: st.Prefix,
		log:    env.Log,
		stats:  env.Stats,
		fsw:    fsw,
		wake:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		live:   make(map[*subscription]struct{}),
	}
	w := newWatcher(in)
	in.wg.Add(1)
	go w.run()
	return in, nil
}

// Resolve registers a watch of name and wakes the watcher, which reads the
// file and delivers the first answer. It does no I/O. A name that cannot
// map to a file (see Settings.CheckName) gets one Failed answer, delivered
// before Resolve returns.
func (in *Interpreter) Resolve(name string, sink interpreter.Sink) (stop func()) {
	file, err := fileName(in.prefix, name)
	if err != nil {
		in.stats.Errors.Add(1)
		sink.Update(interpreter.FailedWith(fmt.Errorf("file: %w", err)))
		return func() {}
	}
	s := &subscription{sink: sink, file: file}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.closed {
		return func() {}
	}
	in.live[s] = struct{}{}
	in.added = append(in.added, s)
	in.signal()
	return func() { in.end(s) }
}

// end stops s and hands it to the watcher to drop. Idempotent.
func (in *Interpreter) end(s *subscription) {
	if s.stopped.Swap(true) {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.live[s]; !ok {
		return // closed meanwhile
	}
	delete(in.live, s)
	in.ended = append(in.ended, s)
	in.signal()
}

// signal wakes the watcher; wake-ups coalesce.
func (in *Interpreter) signal() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// take returns the subscriptions added and ended since the last call.
func (in *Interpreter) take() (added, ended []*subscription) {
	in.mu.Lock()
	defer in.mu.Unlock()
	added, ended = in.added, in.ended
	in.added, in.ended = nil, nil
	return added, ended
}

// Close stops every watch and the watcher, and waits for them. No sink is
// called once it returns. Later calls do nothing.
func (in *Interpreter) Close() error {
	in.mu.Lock()
	if in.closed {
		in.mu.Unlock()
		in.wg.Wait()
		return nil
	}
	in.closed = true
	for s := range in.live {
		s.stopped.Store(true)
	}
	clear(in.live)
	in.added, in.ended = nil, nil
	in.mu.Unlock()
	close(in.done)
	in.wg.Wait()
	return nil
}
