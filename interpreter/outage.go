package interpreter

import "log/slog"

// Outage logs the failures of one name's watch as an operator wants them:
// the first failure of a run at Warn, the ones after it at Debug, and the
// recovery at Info. The zero value is a watch that is not failing. It is
// owned by the watch's goroutine.
type Outage struct{ failing bool }

// Failed logs err, a failure of the watch of kind (the interpreter kind,
// as messages begin), with attrs (slog's key-value pairs) after it.
func (o *Outage) Failed(log *slog.Logger, kind string, err error, attrs ...any) {
	args := append([]any{"error", err}, attrs...)
	if !o.failing {
		o.failing = true
		log.Warn(kind+": resolution failing; the last good answer stays in use until it recovers", args...)
		return
	}
	log.Debug(kind+": resolution still failing", args...)
}

// Failing reports whether the last answer was a failure.
func (o *Outage) Failing() bool { return o.failing }

// Answered logs the recovery when res, a good answer, ends a failure.
func (o *Outage) Answered(log *slog.Logger, kind string, res Resolution) {
	if o.failing {
		o.failing = false
		log.Info(kind+": name resolves again", "state", res.State, "endpoints", len(res.Endpoints))
	}
}
