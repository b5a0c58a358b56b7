package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// system is how the bench looks at and changes the machine's software: a
// struct of functions so tests can stand in for it.
type system struct {
	lookPath func(file string) (string, error)
	euid     func() int
	// run runs a command with its output going to out.
	run func(ctx context.Context, out io.Writer, name string, args ...string) error
	// output runs a command and returns its stdout and stderr together.
	output func(name string, args ...string) (string, error)
	exists func(path string) bool
}

func hostSystem() system {
	return system{
		lookPath: exec.LookPath,
		euid:     os.Geteuid,
		run: func(ctx context.Context, out io.Writer, name string, args ...string) error {
			cmd := exec.CommandContext(ctx, name, args...)
			cmd.Stdout, cmd.Stderr = out, out
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			return cmd.Run()
		},
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

const iperfInstallHint = "switchyard-bench: iperf3 not found; install it, e.g. sudo apt-get install -y iperf3 (Debian/Ubuntu) or sudo dnf install -y iperf3 (Fedora)"

// ensureIperf3 installs iperf3 with apt-get when it is missing and the
// bench runs as root, and otherwise says what to install.
func (s system) ensureIperf3(ctx context.Context, progress io.Writer) error {
	if _, err := s.lookPath("iperf3"); err == nil {
		return nil
	}
	if _, err := s.lookPath("apt-get"); err != nil || s.euid() != 0 {
		return errors.New(iperfInstallHint)
	}
	fmt.Fprintln(progress, "switchyard-bench: iperf3 not found; installing it: apt-get install -y iperf3")
	if err := s.run(ctx, progress, "apt-get", "install", "-y", "iperf3"); err != nil {
		// A fresh system may have no package lists yet.
		fmt.Fprintln(progress, "switchyard-bench: retrying after apt-get update")
		if err := s.run(ctx, progress, "apt-get", "update"); err != nil {
			return fmt.Errorf("apt-get update: %w", err)
		}
		if err := s.run(ctx, progress, "apt-get", "install", "-y", "iperf3"); err != nil {
			return fmt.Errorf("apt-get install -y iperf3: %w", err)
		}
	}
	if _, err := s.lookPath("iperf3"); err != nil {
		return fmt.Errorf("iperf3 still not found after installing it: %w", err)
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
	so, err := nginxStreamModule(v, s.exists)
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
