package file

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

const (
	// settle is how long a file must go without events before it is
	// read, so that a file being written is read once, when complete.
	settle = 75 * time.Millisecond
	// maxSettle bounds the wait for a file that never stops changing.
	maxSettle = 500 * time.Millisecond
	// rescanEvery is the period of the safety net: every file is read
	// again, and the directory watch set up again if it was lost, in case
	// inotify missed something (an overflow, a change behind a symlink).
	rescanEvery = 30 * time.Second
	// maxAttach bounds the tries to settle on a path to watch while the
	// directory tree keeps changing; the next event or rescan tries again.
	maxAttach = 8
)

// watcher is the state of the interpreter's goroutine, which alone reads
// the disk, sets inotify watches and calls sinks. Nothing else touches it.
type watcher struct {
	in *Interpreter
	// watched is the path inotify watches: the directory, or while it does
	// not exist its nearest existing ancestor, or "" when nothing could be
	// watched (then only the rescans notice changes).
	watched string
	// missing says the directory was last found missing (and that was
	// logged once).
	missing bool
	// hadDir says the directory was watched once, so that watching it
	// again counts as a reconnect.
	hadDir bool
	// attachErr is the error of the last failed inotify watch, logged
	// once; "" when the last one succeeded.
	attachErr string
	files     map[string]*fileState   // by file name; only files with subscriptions
	dirty     map[*fileState]struct{} // files with a re-read due
	all       burst                   // a re-read of every file, when due
}

// fileState is what the watcher knows of one file watched by name.
type fileState struct {
	name  string // the name watched, "/svc/web"
	path  string // the file, "<dir>/web"
	subs  []*subscription
	last  interpreter.Resolution // the last answer delivered
	known bool                   // last is set
	burst burst
}

// burst coalesces the events of one burst into one read: the read is due
// settle after the last event, and at most maxSettle after the first.
type burst struct{ first, due time.Time }

func (b *burst) event(now time.Time) {
	if b.due.IsZero() {
		b.first = now
	}
	b.due = now.Add(settle)
	if limit := b.first.Add(maxSettle); limit.Before(b.due) {
		b.due = limit
	}
}

func (b *burst) pending() bool { return !b.due.IsZero() }

func newWatcher(in *Interpreter) *watcher {
	return &watcher{
		in:    in,
		files: make(map[string]*fileState),
		dirty: make(map[*fileState]struct{}),
	}
}

// run is the watcher goroutine: it waits for new or ended subscriptions,
// inotify events, the end of an event burst and the rescan tick.
func (w *watcher) run() {
	defer w.in.wg.Done()
	defer w.in.fsw.Close()
	w.attach()
	rescan := time.NewTicker(rescanEvery)
	defer rescan.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	events, errs := w.in.fsw.Events, w.in.fsw.Errors
	for {
		timer.Stop()
		if due, ok := w.nextDue(); ok {
			timer.Reset(time.Until(due))
		}
		select {
		case <-w.in.done:
			return
		case <-w.in.wake:
			w.subscribe(w.in.take())
		case ev, ok := <-events:
			if !ok {
				events = nil
				w.in.log.Warn("file: inotify stopped; following changes only by rescans every "+rescanEvery.String(), "dir", w.in.dir)
				continue
			}
			w.event(ev, time.Now())
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			w.watchError(err)
		case <-timer.C:
			w.readDue(time.Now())
		case <-rescan.C:
			w.attach()
			w.readAll()
		}
	}
}

// subscribe adds the new subscriptions, reading each file they watch at
// once, and drops the ended ones.
func (w *watcher) subscribe(added, ended []*subscription) {
	fresh := make(map[*fileState]struct{})
	for _, s := range added {
		f := w.files[s.file]
		if f == nil {
			f = &fileState{name: w.in.prefix + "/" + s.file, path: filepath.Join(w.in.dir, s.file)}
			w.files[s.file] = f
		}
		f.subs = append(f.subs, s)
		fresh[f] = struct{}{}
	}
	for _, s := range ended {
		f := w.files[s.file]
		if f == nil {
			continue
		}
		f.subs = slices.DeleteFunc(f.subs, func(o *subscription) bool { return o == s })
		if len(f.subs) == 0 {
			delete(w.files, s.file)
			delete(w.dirty, f)
			delete(fresh, f)
		}
	}
	for f := range fresh {
		if _, settling := w.dirty[f]; !settling {
			w.read(f) // else the read when the file settles answers s
		}
	}
}

// event handles one inotify event on the watched path.
func (w *watcher) event(ev fsnotify.Event, now time.Time) {
	name, dir := filepath.Clean(ev.Name), w.in.dir
	if name == w.watched && (ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename)) {
		// The watched path itself went, and inotify dropped its watch.
		w.lose()
		w.reattach()
		return
	}
	if w.watched != dir {
		// Watching an ancestor: only a step towards the directory matters.
		if name == dir || strings.HasPrefix(dir, name+string(filepath.Separator)) {
			w.reattach()
		}
		return
	}
	if filepath.Dir(name) != dir {
		return
	}
	if f := w.files[filepath.Base(name)]; f != nil {
		f.burst.event(now)
		w.dirty[f] = struct{}{}
		return
	}
	// A symlink or directory came: watched files may be symlinks through
	// it, as in a Kubernetes ConfigMap volume, which renames a new
	// "..data" symlink over the old one. (Editors' temporary files, which
	// are regular files, do not cost a read of everything.)
	if ev.Has(fsnotify.Create) {
		if fi, err := os.Lstat(name); err == nil && fi.Mode()&(fs.ModeSymlink|fs.ModeDir) != 0 {
			w.all.event(now)
		}
	}
}

// watchError handles an error of the inotify watcher. Events may have been
// lost, so everything is looked at again.
func (w *watcher) watchError(err error) {
	w.in.stats.Errors.Add(1)
	w.in.stats.Reconnects.Add(1)
	if errors.Is(err, fsnotify.ErrEventOverflow) {
		w.in.log.Warn("file: inotify queue overflowed, reading every file again", "dir", w.in.dir)
	} else {
		w.in.log.Warn("file: inotify failed, reading every file again", "dir", w.in.dir, "err", err)
	}
	w.attach()
	w.readAll()
}

// lose forgets the inotify watch of the watched path, gone or suspect.
func (w *watcher) lose() {
	if w.watched != "" {
		_ = w.in.fsw.Remove(w.watched) // fails when inotify dropped it already
	}
	w.watched = ""
}

// reattach watches the path attach settles on and, when that is not the
// same as before, reads every file again: they came or went with the
// directory.
func (w *watcher) reattach() {
	before := w.watched
	w.attach()
	if w.watched != before {
		w.readAll()
	}
}

// attach watches the directory or, while it does not exist, its nearest
// existing ancestor, whose events say when to try again. It watches the
// ancestor first and looks again after, so that a directory created in
// between is not missed.
func (w *watcher) attach() {
	for range maxAttach {
		p := nearestDir(w.in.dir)
		if p == w.watched {
			return
		}
		w.lose()
		err := w.in.fsw.Add(p)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			continue // changed since: look again
		}
		if err != nil {
			w.in.stats.Errors.Add(1)
			if msg := err.Error(); msg != w.attachErr {
				w.attachErr = msg
				w.in.log.Warn("file: cannot watch the directory; following changes only by rescans every "+rescanEvery.String(),
					"dir", w.in.dir, "path", p, "err", err)
			}
			return
		}
		w.attachErr = ""
		w.watched = p
		w.noteAttached(p == w.in.dir)
	}
}

// noteAttached logs and counts the directory being found or found
// missing: a warning once when it goes missing, a note when it is back.
func (w *watcher) noteAttached(found bool) {
	switch {
	case found && w.hadDir:
		w.in.stats.Reconnects.Add(1)
		if w.missing {
			w.in.log.Info("file: directory is back, watching it again", "dir", w.in.dir)
		}
	case found && w.missing:
		w.in.log.Info("file: directory exists now, watching it", "dir", w.in.dir)
	case found:
		w.in.log.Debug("file: watching the directory", "dir", w.in.dir)
	case !w.missing:
		w.in.log.Warn("file: directory does not exist; its names are not found until it does",
			"dir", w.in.dir, "watching", w.watched)
	}
	w.missing = !found
	w.hadDir = w.hadDir || found
}

// nearestDir returns dir if it is a directory, else its nearest ancestor
// that is.
func nearestDir(dir string) string {
	for p := dir; ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		if filepath.Dir(p) == p {
			return p
		}
	}
}

// nextDue returns when the next read is due, if any is.
func (w *watcher) nextDue() (time.Time, bool) {
	due := w.all.due
	for f := range w.dirty {
		if due.IsZero() || f.burst.due.Before(due) {
			due = f.burst.due
		}
	}
	return due, !due.IsZero()
}

// readDue reads the files whose bursts have settled by now, in the order
// their reads fell due, then every other file if that is due.
func (w *watcher) readDue(now time.Time) {
	var due []*fileState
	for f := range w.dirty {
		if !f.burst.due.After(now) {
			due = append(due, f)
		}
	}
	slices.SortFunc(due, func(a, b *fileState) int { return a.burst.due.Compare(b.burst.due) })
	for _, f := range due {
		w.read(f)
	}
	if w.all.pending() && !w.all.due.After(now) {
		w.readAll()
	}
}

// readAll reads every watched file but those being written, whose read
// is due when they settle.
func (w *watcher) readAll() {
	w.all = burst{}
	for _, f := range w.files {
		if _, settling := w.dirty[f]; !settling {
			w.read(f)
		}
	}
}

// read reads f and delivers the answer: to every subscription when it
// differs from the last one, else only to those that have had none.
func (w *watcher) read(f *fileState) {
	delete(w.dirty, f)
	f.burst = burst{}
	res := readFile(f.path)
	changed := !f.known || !sameAnswer(f.last, res)
	if changed {
		w.logChange(f, res)
	}
	f.last, f.known = res, true
	for _, s := range f.subs {
		if s.stopped.Load() || (s.answered && !changed) {
			continue
		}
		s.answered = true
		w.deliver(s, res)
	}
}

func (w *watcher) deliver(s *subscription, res interpreter.Resolution) {
	st := w.in.stats
	if res.State == interpreter.Failed {
		st.Errors.Add(1)
	} else {
		st.Updates.Add(1)
		st.LastGood.Store(time.Now().UnixNano())
	}
	res.Endpoints = slices.Clone(res.Endpoints)
	s.sink.Update(res)
}

// logChange logs a file's new answer: a warning when it starts failing or
// fails differently, a note when it recovers, details at debug level.
func (w *watcher) logChange(f *fileState, res interpreter.Resolution) {
	log := w.in.log
	wasFailing := f.known && f.last.State == interpreter.Failed
	switch {
	case res.State == interpreter.Failed:
		log.Warn("file: cannot resolve name; its last good endpoints, if any, stay in use", "name", f.name, "err", res.Err)
	case wasFailing:
		log.Info("file: name resolves again", "name", f.name, "state", res.State, "endpoints", len(res.Endpoints))
	default:
		log.Debug("file: answer", "name", f.name, "state", res.State, "endpoints", len(res.Endpoints))
	}
}

// sameAnswer reports whether a and b say the same thing.
func sameAnswer(a, b interpreter.Resolution) bool {
	if a.State != b.State {
		return false
	}
	switch a.State {
	case interpreter.Bound:
		return slices.Equal(a.Endpoints, b.Endpoints)
	case interpreter.Failed:
		return a.Err.Error() == b.Err.Error()
	}
	return true
}
