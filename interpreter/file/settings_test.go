package file

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// fakeTable is an interpreter.Table over a map, recording the problems
// reported and the keys taken, as the router's decoder does.
type fakeTable struct {
	m        map[string]any
	taken    map[string]bool
	problems []string
}

var _ interpreter.Table = (*fakeTable)(nil)

func newFakeTable(m map[string]any) *fakeTable {
	return &fakeTable{m: m, taken: make(map[string]bool)}
}

func (f *fakeTable) Path() string { return "routers[0].interpreter" }

func take[T any](f *fakeTable, key, what string) *T {
	v, ok := f.m[key]
	if !ok {
		return nil
	}
	f.taken[key] = true
	t, ok := v.(T)
	if !ok {
		f.Problem(key, "must be %s", what)
		return nil
	}
	return &t
}

func (f *fakeTable) String(key string) *string { return take[string](f, key, "a string") }
func (f *fakeTable) Bool(key string) *bool     { return take[bool](f, key, "a boolean") }
func (f *fakeTable) Int(key string) *int64     { return take[int64](f, key, "an integer") }

func (f *fakeTable) Duration(key string) *time.Duration {
	s := f.String(key)
	if s == nil {
		return nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil {
		f.Problem(key, "%v", err)
		return nil
	}
	return &d
}

func (f *fakeTable) Strings(key string) []*string {
	list := take[[]string](f, key, "an array of strings")
	if list == nil {
		return nil
	}
	out := make([]*string, len(*list))
	for i := range *list {
		out[i] = &(*list)[i]
	}
	return out
}

func (f *fakeTable) Table(key string) interpreter.Table {
	sub := take[map[string]any](f, key, "a table")
	if sub == nil {
		return newFakeTable(nil)
	}
	return newFakeTable(*sub)
}

func (f *fakeTable) Present() bool  { return f.m != nil }
func (f *fakeTable) Keys() []string { return slices.Sorted(maps.Keys(f.m)) }
func (f *fakeTable) path(key string) string {
	if key == "" {
		return f.Path()
	}
	return f.Path() + "." + key
}

func (f *fakeTable) Problem(key string, format string, args ...any) {
	f.problems = append(f.problems, f.path(key)+": "+fmt.Sprintf(format, args...))
}

func (f *fakeTable) ProblemAt(key string, i int, format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf("%s[%d]: ", f.path(key), i)+fmt.Sprintf(format, args...))
}

// done reports the keys nobody took, as the router does after Decode.
func (f *fakeTable) done() {
	for _, k := range f.Keys() {
		if !f.taken[k] {
			f.Problem(k, "unknown key")
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want *Settings // nil: Decode returns no settings
		// wantProblems are substrings of the problems, one each, in order.
		wantProblems []string
	}{
		{name: "defaults", in: map[string]any{"dir": "/etc/switchyard/svc"},
			want: &Settings{Dir: "/etc/switchyard/svc", Prefix: "/svc"}},
		{name: "every key", in: map[string]any{"dir": "/srv/disco", "prefix": "/#/io.l5d.fs"},
			want: &Settings{Dir: "/srv/disco", Prefix: "/#/io.l5d.fs"}},
		{name: "dir cleaned", in: map[string]any{"dir": "/srv//disco/./x/../"},
			want: &Settings{Dir: "/srv/disco", Prefix: "/svc"}},
		{name: "relative dir", in: map[string]any{"dir": "disco/"},
			want: &Settings{Dir: "disco", Prefix: "/svc"}},
		{name: "deep prefix", in: map[string]any{"dir": "/d", "prefix": "/a/b/c"},
			want: &Settings{Dir: "/d", Prefix: "/a/b/c"}},

		{name: "dir missing", in: map[string]any{},
			want:         &Settings{Prefix: "/svc"},
			wantProblems: []string{`routers[0].interpreter.dir: required for kind "file"`}},
		{name: "dir empty", in: map[string]any{"dir": ""},
			want:         &Settings{Prefix: "/svc"},
			wantProblems: []string{`routers[0].interpreter.dir: must not be empty`}},
		{name: "dir not a string", in: map[string]any{"dir": int64(3)},
			want:         &Settings{Prefix: "/svc"},
			wantProblems: []string{`routers[0].interpreter.dir: must be a string`}},
		{name: "dir with nul", in: map[string]any{"dir": "/srv\x00"},
			want:         &Settings{Prefix: "/svc"},
			wantProblems: []string{`dir: must not contain a NUL byte`}},
		{name: "prefix relative", in: map[string]any{"dir": "/d", "prefix": "svc"},
			wantProblems: []string{`routers[0].interpreter.prefix: must start with "/", got "svc"`}},
		{name: "prefix empty", in: map[string]any{"dir": "/d", "prefix": ""},
			wantProblems: []string{`prefix: must start with "/", got ""`}},
		{name: "prefix trailing slash", in: map[string]any{"dir": "/d", "prefix": "/svc/"},
			wantProblems: []string{`prefix: must not end with "/", got "/svc/"`}},
		{name: "prefix root", in: map[string]any{"dir": "/d", "prefix": "/"},
			wantProblems: []string{`prefix: must not end with "/", got "/"`}},
		{name: "prefix empty segment", in: map[string]any{"dir": "/d", "prefix": "/a//b"},
			wantProblems: []string{`prefix: must not contain an empty segment ("//"), got "/a//b"`}},
		{name: "prefix not a string", in: map[string]any{"dir": "/d", "prefix": true},
			want:         &Settings{Dir: "/d", Prefix: "/svc"},
			wantProblems: []string{`prefix: must be a string`}},
		{name: "every problem at once", in: map[string]any{"prefix": "svc", "names": map[string]any{}},
			wantProblems: []string{`dir: required`, `prefix: must start with "/"`, `names: unknown key`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newFakeTable(tt.in)
			got := Kind.Decode(tab)
			tab.done()
			if len(tab.problems) != len(tt.wantProblems) {
				t.Fatalf("problems %q, want %d containing %q", tab.problems, len(tt.wantProblems), tt.wantProblems)
			}
			for i, p := range tab.problems {
				if !strings.Contains(p, tt.wantProblems[i]) {
					t.Errorf("problem %d is %q, want it to contain %q", i, p, tt.wantProblems[i])
				}
			}
			if tt.want == nil {
				if got != nil {
					t.Errorf("Decode = %#v, want no settings", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestCheckName(t *testing.T) {
	st := &Settings{Dir: "/srv/disco", Prefix: "/svc"}
	tests := []struct {
		name    string
		wantErr string // "" means the name is fine
	}{
		{name: "/svc/web"},
		{name: "/svc/default"},
		{name: "/svc", wantErr: `"/svc" is not under the prefix "/svc"`},
		{name: "/svc/", wantErr: `nothing follows the prefix`},
		{name: "/http/web", wantErr: `"/http/web" is not under the prefix "/svc"`},
		{name: "/svc/web/v2", wantErr: `"web/v2" has more than one segment`},
		{name: "/svc/..", wantErr: `".." is not a file name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.CheckName(tt.name)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckName(%q) = %v, want nil", tt.name, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("CheckName(%q) = %v, want an error containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}
