package router

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
	"github.com/switchyard-proxy/switchyard/interpreter/consul"
	"github.com/switchyard-proxy/switchyard/interpreter/destination"
	"github.com/switchyard-proxy/switchyard/interpreter/dns"
	"github.com/switchyard-proxy/switchyard/interpreter/file"
	"github.com/switchyard-proxy/switchyard/interpreter/namerd"
)

// kinds are the interpreter kinds a configuration may name. A new kind is
// one line here.
var kinds = []interpreter.Kind{
	interpreter.StaticKind,
	namerd.Kind,
	file.Kind,
	dns.Kind,
	destination.Kind,
	consul.Kind,
}

func findKind(name string) (interpreter.Kind, bool) {
	for _, k := range kinds {
		if k.Name == name {
			return k, true
		}
	}
	return interpreter.Kind{}, false
}

func kindNames() string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = `"` + k.Name + `"`
	}
	return strings.Join(names, ", ")
}

// kindTable is the view of a table that an interpreter kind decodes.
type kindTable struct{ t *table }

var _ interpreter.Table = kindTable{}

func (k kindTable) Path() string                       { return k.t.path }
func (k kindTable) String(key string) *string          { return k.t.string(key) }
func (k kindTable) Bool(key string) *bool              { return k.t.bool(key) }
func (k kindTable) Int(key string) *int64              { return k.t.int(key) }
func (k kindTable) Duration(key string) *time.Duration { return k.t.duration(key) }
func (k kindTable) Strings(key string) []*string       { return k.t.strings(key) }
func (k kindTable) Table(key string) interpreter.Table { return kindTable{k.t.table(key)} }
func (k kindTable) Present() bool                      { return k.t.m != nil }
func (k kindTable) Keys() []string                     { return slices.Sorted(maps.Keys(k.t.m)) }

func (k kindTable) Problem(key string, format string, args ...any) {
	path := k.t.path
	if key != "" {
		path = joinKey(path, key)
	}
	k.t.p.add(path, format, args...)
}

func (k kindTable) ProblemAt(key string, i int, format string, args ...any) {
	k.t.p.add(indexPath(joinKey(k.t.path, key), i), format, args...)
}
