package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/switchyard-proxy/switchyard/bench/internal/nginxmod"
)

// system is how the bench looks at the machine's software: a struct of
// functions so tests can stand in for it.
type system struct {
	lookPath func(file string) (string, error)
	// output runs a command and returns its stdout and stderr together.
	output func(name string, args ...string) (string, error)
	exists func(path string) bool
}

func hostSystem() system {
	return system{
		lookPath: exec.LookPath,
		output: func(name string, args ...string) (string, error) {
			var b bytes.Buffer
			cmd := exec.Command(name, args...)
			cmd.Stdout, cmd.Stderr = &b, &b
			err := cmd.Run()
			return b.String(), err
		},
		exists: func(path string) bool { _, err := os.Stat(path); return err == nil },
	}
}

const iperfInstallHint = "switchyard-bench: iperf3 not found; install it (make bench does when run as root), e.g. sudo apt-get install -y iperf3 (Debian/Ubuntu) or sudo dnf install -y iperf3 (Fedora)"

// needIperf3 says what to install when iperf3 is missing. The bench
// installs nothing itself: the Makefile's iperf3, haproxy and nginx targets
// do.
func (s system) needIperf3() error {
	if _, err := s.lookPath("iperf3"); err != nil {
		return errors.New(iperfInstallHint)
	}
	return nil
}

// haproxy is the HAProxy target's proxy, or why it cannot run here.
func (s system) haproxy() (proxy, error) {
	if _, err := s.lookPath("haproxy"); err != nil {
		return nil, errors.New("haproxy not installed (apt-get install -y haproxy)")
	}
	return haproxyProxy{}, nil
}

// nginx is the nginx target's proxy, or why it cannot run here.
func (s system) nginx() (proxy, error) {
	if _, err := s.lookPath("nginx"); err != nil {
		return nil, errors.New("nginx not installed (apt-get install -y nginx libnginx-mod-stream)")
	}
	v, err := s.output("nginx", "-V")
	if err != nil {
		return nil, fmt.Errorf("nginx -V: %v: %s", err, strings.TrimSpace(v))
	}
	so, err := nginxmod.StreamModule(v, s.exists)
	if err != nil {
		return nil, err
	}
	return nginxProxy{loadModule: so}, nil
}

// versions describes the third-party programs the run uses, for the notes.
func (s system) versions(names []string) string {
	probes := map[string][]string{
		"iperf3":  {"iperf3", "-v"},
		"haproxy": {"haproxy", "-v"},
		"nginx":   {"nginx", "-v"},
	}
	var out []string
	for _, name := range names {
		argv, ok := probes[name]
		if !ok {
			continue
		}
		v, err := s.output(argv[0], argv[1:]...)
		if err != nil {
			continue
		}
		// HAProxy's line goes on with a date and a URL.
		line, _, _ := strings.Cut(firstLine(v), " - ")
		out = append(out, line)
	}
	return strings.Join(out, "; ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(line)
}
