package main

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// fakeSystem has the given programs installed; running apt-get install
// installs what it names.
type fakeSystem struct {
	installed map[string]bool
	euid      int
	ran       [][]string
	failFirst bool // the first apt-get install fails, as without package lists
}

func (f *fakeSystem) system() system {
	return system{
		lookPath: func(name string) (string, error) {
			if f.installed[name] {
				return "/usr/bin/" + name, nil
			}
			return "", exec.ErrNotFound
		},
		euid: func() int { return f.euid },
		run: func(_ context.Context, _ io.Writer, name string, args ...string) error {
			f.ran = append(f.ran, append([]string{name}, args...))
			if name == "apt-get" && args[0] == "install" {
				if f.failFirst {
					f.failFirst = false
					return errors.New("exit status 100")
				}
				f.installed[args[len(args)-1]] = true
			}
			return nil
		},
	}
}

func TestEnsureIperf3(t *testing.T) {
	install := []string{"apt-get", "install", "-y", "iperf3"}
	tests := []struct {
		name      string
		fake      fakeSystem
		wantRan   [][]string
		wantErr   string
		wantPrint string
	}{
		{name: "installed", fake: fakeSystem{installed: map[string]bool{"iperf3": true}}},
		{name: "root with apt", fake: fakeSystem{installed: map[string]bool{"apt-get": true}},
			wantRan: [][]string{install}, wantPrint: "installing it: apt-get install -y iperf3"},
		{name: "root with apt, no package lists", fake: fakeSystem{installed: map[string]bool{"apt-get": true}, failFirst: true},
			wantRan: [][]string{install, {"apt-get", "update"}, install}},
		{name: "not root", fake: fakeSystem{installed: map[string]bool{"apt-get": true}, euid: 1000},
			wantErr: "sudo apt-get install -y iperf3"},
		{name: "root without apt", fake: fakeSystem{installed: map[string]bool{}},
			wantErr: "install it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			err := tt.fake.system().ensureIperf3(context.Background(), &out)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tt.fake.ran, tt.wantRan) {
				t.Errorf("ran %q, want %q", tt.fake.ran, tt.wantRan)
			}
			if !strings.Contains(out.String(), tt.wantPrint) {
				t.Errorf("printed %q, want %q", out.String(), tt.wantPrint)
			}
		})
	}
}

func TestOptionalProxiesMissing(t *testing.T) {
	sys := (&fakeSystem{installed: map[string]bool{}}).system()
	if _, err := sys.haproxy(); err == nil || !strings.Contains(err.Error(), "apt-get install -y haproxy") {
		t.Errorf("haproxy missing: %v", err)
	}
	if _, err := sys.nginx(); err == nil || !strings.Contains(err.Error(), "libnginx-mod-stream") {
		t.Errorf("nginx missing: %v", err)
	}
}
