package main

import (
	"os/exec"
	"strings"
	"testing"
)

// fakeSystem has the given programs installed.
type fakeSystem struct {
	installed map[string]bool
}

func (f *fakeSystem) system() system {
	return system{
		lookPath: func(name string) (string, error) {
			if f.installed[name] {
				return "/usr/bin/" + name, nil
			}
			return "", exec.ErrNotFound
		},
	}
}

// TestNeedIperf3: the bench installs nothing; without iperf3 it says what
// to install.
func TestNeedIperf3(t *testing.T) {
	if err := (&fakeSystem{installed: map[string]bool{"iperf3": true}}).system().needIperf3(); err != nil {
		t.Errorf("installed: %v", err)
	}
	err := (&fakeSystem{installed: map[string]bool{"apt-get": true}}).system().needIperf3()
	if err == nil || !strings.Contains(err.Error(), "sudo apt-get install -y iperf3") {
		t.Errorf("missing: %v, want the install hint", err)
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
