package kindtest

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// LogRecorder is a slog.Handler that keeps every record, at every level, for
// a test to check what a kind logged and at which level (Count). Its zero
// value is ready to use, and it is safe for concurrent use. WithAttrs and
// WithGroup return the LogRecorder itself: the attributes and groups they
// add are dropped, and the records of every logger derived from it are
// kept together.
type LogRecorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

var _ slog.Handler = (*LogRecorder)(nil)

// Enabled reports true: every level is kept.
func (l *LogRecorder) Enabled(context.Context, slog.Level) bool { return true }

// WithAttrs returns l, dropping the attributes.
func (l *LogRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }

// WithGroup returns l, dropping the group.
func (l *LogRecorder) WithGroup(string) slog.Handler { return l }

// Handle keeps r.
func (l *LogRecorder) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	return nil
}

// Count returns how many records are at exactly level and have a message
// containing msg; an empty msg counts every record at level.
func (l *LogRecorder) Count(level slog.Level, msg string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.recs {
		if r.Level == level && strings.Contains(r.Message, msg) {
			n++
		}
	}
	return n
}
