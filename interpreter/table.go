package interpreter

import "time"

// Table is one TOML table of the configuration being decoded, as the
// router's decoder hands it to a Kind. Each accessor takes a key out of the
// table and returns nil when the key is absent or of the wrong type (the
// type error is already reported). Keys nobody took are reported as unknown
// once Decode returns, so a kind reads every key it knows, even when another
// key makes it meaningless.
type Table interface {
	// Path is the TOML path of the table (routers[0].interpreter).
	Path() string
	String(key string) *string
	Bool(key string) *bool
	Int(key string) *int64
	// Duration decodes a Go duration string ("500ms", "5m").
	Duration(key string) *time.Duration
	// Strings decodes an array of strings, with nil for each element of
	// another type; nil when the key is absent.
	Strings(key string) []*string
	// Table returns the sub-table at key; an absent one has no keys and
	// reports Present false.
	Table(key string) Table
	// Present reports whether the table is in the file.
	Present() bool
	// Keys returns the table's keys, sorted, for tables used as maps.
	Keys() []string
	// Problem reports what is wrong with key ("" for the table itself),
	// placed at the key's line and path.
	Problem(key string, format string, args ...any)
	// ProblemAt reports what is wrong with element i of the array at key.
	ProblemAt(key string, i int, format string, args ...any)
}

// Or returns *p, or def when p is nil: how a kind fills in a default.
func Or[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}

// CheckPositive reports key when d is not > 0, returning d.
func CheckPositive(t Table, key string, d time.Duration) time.Duration {
	if d <= 0 {
		t.Problem(key, "must be greater than 0, got %s", d)
	}
	return d
}

// CheckBackoff checks a backoff_min/backoff_max pair: both > 0, min <= max.
func CheckBackoff(t Table, lo, hi time.Duration) {
	CheckPositive(t, "backoff_min", lo)
	CheckPositive(t, "backoff_max", hi)
	if lo > 0 && hi > 0 && lo > hi {
		t.Problem("backoff_max", "must be at least backoff_min (%s), got %s", lo, hi)
	}
}
