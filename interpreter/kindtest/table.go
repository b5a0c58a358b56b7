// Package kindtest helps test interpreter kinds: Table is an
// interpreter.Table over a map, as the router's configuration decoder would
// hand a kind its table.
package kindtest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Table is an interpreter.Table over a map of decoded TOML values (string,
// int64, bool, float64, []any, map[string]any), as the router's decoder
// hands one to a kind: its path is routers[0].interpreter, an accessor
// reports a value of the wrong type as a problem and returns nil, and a
// sub-table taken with Table is a Table of its own under the key's path.
type Table struct {
	// Problems are the problems reported, in order, each "path: message",
	// the path as the router writes it: "routers[0].interpreter.key", and
	// "routers[0].interpreter.key[i]" for ProblemAt. A sub-table's
	// problems go to the Problems of the Table made with NewTable.
	Problems []string

	root     *Table
	key      string // the key of a sub-table in its parent
	path     string
	m        map[string]any // nil for an absent table
	taken    map[string]bool
	children []*Table // sub-tables taken with Table, in order
}

var _ interpreter.Table = (*Table)(nil)

// NewTable returns the table routers[0].interpreter holding m. A nil m is a
// table that is not in the file: Present reports false.
func NewTable(m map[string]any) *Table {
	t := newTable(nil, "routers[0].interpreter", m)
	t.root = t
	return t
}

func newTable(root *Table, path string, m map[string]any) *Table {
	return &Table{root: root, path: path, m: m, taken: make(map[string]bool)}
}

// Unknown returns the keys nobody took, sorted: those the router reports as
// "unknown key" once Decode returns. Those of a sub-table taken with Table
// are included as "sub.key". A test checks that it is empty to know that a
// kind reads every key it knows.
func (t *Table) Unknown() []string {
	var out []string
	for key := range t.m {
		if !t.taken[key] {
			out = append(out, key)
		}
	}
	for _, c := range t.children {
		for _, key := range c.Unknown() {
			out = append(out, c.key+"."+key)
		}
	}
	slices.Sort(out)
	return slices.Compact(out) // a sub-table taken twice
}

// take returns the value of key, marking the key as known.
func (t *Table) take(key string) (any, bool) {
	t.taken[key] = true
	v, ok := t.m[key]
	return v, ok
}

// Path returns the table's TOML path.
func (t *Table) Path() string { return t.path }

// String returns the string at key.
func (t *Table) String(key string) *string {
	return typed[string](t, key, "a string")
}

// Bool returns the boolean at key.
func (t *Table) Bool(key string) *bool {
	return typed[bool](t, key, "a boolean (true or false)")
}

// Int returns the integer (int64) at key.
func (t *Table) Int(key string) *int64 {
	return typed[int64](t, key, "an integer")
}

func typed[T any](t *Table, key, what string) *T {
	v, ok := t.take(key)
	if !ok {
		return nil
	}
	x, ok := v.(T)
	if !ok {
		t.Problem(key, "expected %s, got %s", what, describe(v))
		return nil
	}
	return &x
}

// Duration returns the Go duration string at key, parsed.
func (t *Table) Duration(key string) *time.Duration {
	s := typed[string](t, key, `a duration string such as "1s" or "500ms"`)
	if s == nil {
		return nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil {
		t.Problem(key, "bad duration %s: %v", strconv.Quote(*s), err)
		return nil
	}
	return &d
}

// Strings returns the array of strings at key ([]any, as TOML decodes it,
// or []string), with nil for each element of another type; nil when the key
// is absent, and empty when it is not an array.
func (t *Table) Strings(key string) []*string {
	v, ok := t.take(key)
	if !ok {
		return nil
	}
	var arr []any
	switch v := v.(type) {
	case []any:
		arr = v
	case []string:
		for _, s := range v {
			arr = append(arr, s)
		}
	default:
		t.Problem(key, "expected an array of strings, got %s", describe(v))
		return []*string{}
	}
	out := make([]*string, len(arr))
	for i, e := range arr {
		if s, ok := e.(string); ok {
			out[i] = &s
		} else {
			t.ProblemAt(key, i, "expected a string, got %s", describe(e))
		}
	}
	return out
}

// Table returns the sub-table at key; an absent one, or a value that is not
// a table (reported), has no keys and reports Present false.
func (t *Table) Table(key string) interpreter.Table {
	v, ok := t.take(key)
	m, isTable := v.(map[string]any)
	if ok && !isTable {
		t.Problem(key, "expected a table, got %s", describe(v))
	}
	c := newTable(t.root, joinKey(t.path, key), m)
	c.key = key
	t.children = append(t.children, c)
	return c
}

// Present reports whether the table is in the file.
func (t *Table) Present() bool { return t.m != nil }

// Keys returns the table's keys, sorted.
func (t *Table) Keys() []string { return slices.Sorted(maps.Keys(t.m)) }

// Problem records a problem with key, or with the table itself for "".
func (t *Table) Problem(key string, format string, args ...any) {
	path := t.path
	if key != "" {
		path = joinKey(path, key)
	}
	t.add(path, format, args...)
}

// ProblemAt records a problem with element i of the array at key.
func (t *Table) ProblemAt(key string, i int, format string, args ...any) {
	t.add(joinKey(t.path, key)+"["+strconv.Itoa(i)+"]", format, args...)
}

func (t *Table) add(path, format string, args ...any) {
	t.root.Problems = append(t.root.Problems, path+": "+fmt.Sprintf(format, args...))
}

// joinKey appends key to path as the router does, quoting a key that is not
// bare (letters, digits, "_" and "-").
func joinKey(path, key string) string {
	if !isBareKey(key) {
		key = strconv.Quote(key)
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func isBareKey(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range []byte(k) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// describe names the TOML type of a value, with the value, for type errors.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return "string " + strconv.Quote(v)
	case int64:
		return "integer " + strconv.FormatInt(v, 10)
	case float64:
		return "float " + strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return "boolean " + strconv.FormatBool(v)
	case map[string]any:
		return "a table"
	case []map[string]any, []any, []string:
		return "an array"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// ResolveUntil watches name with in into sink until ctx is done, as a
// binder evicting the name would stop it.
func ResolveUntil(ctx context.Context, in interpreter.Interpreter, name string, sink interpreter.Sink) {
	stop := in.Resolve(name, sink)
	if ctx.Err() != nil {
		stop()
		return
	}
	context.AfterFunc(ctx, stop)
}
