package file

import (
	"reflect"
	"strings"
	"testing"

	"github.com/switchyard-proxy/switchyard/interpreter/kindtest"
)

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
			wantProblems: []string{`routers[0].interpreter.dir: expected a string, got integer 3`}},
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
			wantProblems: []string{`routers[0].interpreter.prefix: expected a string, got boolean true`}},
		{name: "every problem at once", in: map[string]any{"prefix": "svc", "names": map[string]any{}},
			wantProblems: []string{`dir: required`, `prefix: must start with "/"`, `names: unknown key`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := kindtest.NewTable(tt.in)
			got := Kind.Decode(tab)
			for _, key := range tab.Unknown() {
				tab.Problem(key, "unknown key") // as the router does after Decode
			}
			if len(tab.Problems) != len(tt.wantProblems) {
				t.Fatalf("problems %q, want %d containing %q", tab.Problems, len(tt.wantProblems), tt.wantProblems)
			}
			for i, p := range tab.Problems {
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
