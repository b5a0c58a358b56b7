// Package interpreter resolves destination names to sets of weighted
// endpoints. An interpreter is a watch, not a lookup: Resolve starts
// delivering answers for a name to a Sink and keeps delivering changes until
// the watch is stopped. The binder calls Resolve when a name enters its
// cache, on the first connection that asks for it (again after the name was
// evicted); the name's balancer is the Sink.
//
// Resolve is called from an event loop and must not block: an interpreter
// that needs the network or the disk does that work on its own goroutines
// and calls the Sink from there. Every network request an interpreter makes
// has a timeout.
//
// Each kind of interpreter (static, namerd, file, dns) is a Kind: it decodes,
// defaults and validates its own configuration keys and builds itself. The
// router keeps the list of kinds; adding one is a new package and one line
// there.
package interpreter

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// Endpoint is one address a name resolves to, with its relative weight
// (1 when not given; always > 0).
type Endpoint struct {
	Addr   netip.AddrPort
	Weight float64
}

// State says what kind of answer a Resolution is.
type State uint8

const (
	// Bound: the name resolves to Endpoints. An empty set is a valid
	// answer: connections to the name fail fast.
	Bound State = iota
	// NotFound: the name does not exist (namerd's "neg", NXDOMAIN, a
	// missing file). Connections to it fail fast.
	NotFound
	// Failed: resolution failed (a resolver down, a malformed answer).
	// Err says why. The last Bound set, if any, stays in use.
	Failed
)

func (s State) String() string {
	switch s {
	case Bound:
		return "bound"
	case NotFound:
		return "not_found"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// Resolution is one answer about a name: the complete set of endpoints it
// resolves to at one moment, or that it does not exist, or why resolving it
// failed.
type Resolution struct {
	State     State
	Endpoints []Endpoint // Bound only
	Err       error      // Failed only
}

// BoundTo is a Bound answer with the given endpoints.
func BoundTo(eps []Endpoint) Resolution { return Resolution{State: Bound, Endpoints: eps} }

// NotFoundAnswer is the answer for a name that does not exist.
func NotFoundAnswer() Resolution { return Resolution{State: NotFound} }

// FailedWith is the answer for a resolution that failed with err.
func FailedWith(err error) Resolution {
	if err == nil {
		err = errors.New("resolution failed")
	}
	return Resolution{State: Failed, Err: err}
}

// Sink receives the answers of one watch. Update may be called from any
// goroutine, but the calls of one watch are never concurrent; it must not
// block for long and must not keep the slice it is given.
type Sink interface {
	Update(Resolution)
}

// Interpreter resolves names of one router.
type Interpreter interface {
	// Resolve starts a watch of name that feeds sink until stop is
	// called. It must not block: it is called on an event loop. stop
	// must not block either (it too may run on a loop), may be called
	// more than once and from any goroutine; soon after it the watch
	// stops calling sink (a call already under way may finish). Stopping
	// a watch starts no goroutine: a cache evicting ten thousand names at
	// once must not start ten thousand.
	Resolve(name string, sink Sink) (stop func())
	// Close stops every watch and background goroutine of the
	// interpreter and waits for them to end; no sink is called after it
	// returns. A Resolve after Close delivers nothing, or one Failed
	// answer.
	Close() error
}

// Reconfigurer is an Interpreter that can take new settings in place: its
// watches answer by them from then on, so that the names a reload keeps
// keep their balancers, with the endpoints that stay and their load. A
// reload asks CanTake while it builds, and calls Reconfigure once it has
// nothing left that can fail.
type Reconfigurer interface {
	Interpreter
	// CanTake reports whether the interpreter can take s in place.
	CanTake(s Settings) bool
	// Reconfigure switches to s, which CanTake accepted: every watch
	// whose answer changes gets the new one before it returns. It does
	// not block on anything but the sinks.
	Reconfigure(s Settings)
}

// Settings is one interpreter configuration, decoded, defaulted and
// validated by its Kind.
type Settings interface {
	// CheckName returns why name, a server's dst, can never resolve under
	// these settings (for instance a name outside a file interpreter's
	// prefix), or nil. The message names the problem, not the key.
	CheckName(name string) error
	// New builds and starts the interpreter.
	New(env Env) (Interpreter, error)
}

// Env is what an interpreter gets from the router that runs it.
type Env struct {
	Router string       // the router's label, for logs
	Log    *slog.Logger // never nil
	Stats  *Stats       // never nil; the interpreter counts into it
}

// Stats are an interpreter's counters, kept by the interpreter and read by
// whoever reports them. Safe for concurrent use.
type Stats struct {
	Updates    atomic.Uint64 // answers delivered to sinks (Bound or NotFound)
	Errors     atomic.Uint64 // failed requests or answers (Failed, or a retry)
	Reconnects atomic.Uint64 // watch streams or requests started again after an end or error
	LastGood   atomic.Int64  // wall-clock Unix nanoseconds of the last good answer; 0: none yet
}

// Kind is one kind of interpreter, as the [routers.interpreter] table's
// kind key names it.
type Kind struct {
	Name string
	// Decode reads the kind's keys of t (every key but "kind"), fills in
	// defaults and validates them, reporting each problem through t. The
	// Settings it returns are used only when no problem was reported.
	Decode func(t Table) Settings
}

// SameAnswer reports whether two answers say the same: the same state and
// the same endpoints, in the same order (kinds deliver their sets in a
// canonical order, so that an unchanged set compares equal).
func SameAnswer(a, b Resolution) bool {
	return a.State == b.State && slices.Equal(a.Endpoints, b.Endpoints)
}

// JoinErrors lists at most max errors on one line, for a log line or an
// answer's error, saying how many more there were.
func JoinErrors(errs []error, max int) string {
	var b strings.Builder
	for i, err := range errs {
		if i == max {
			fmt.Fprintf(&b, "; and %d more", len(errs)-max)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(err.Error())
	}
	return b.String()
}
