package main

import (
	"io"
	"slices"
	"testing"
)

func noEnv(string) string { return "" }

func TestParseFlagsDefaults(t *testing.T) {
	o, err := parseFlags(nil, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.builds, []build{{"switchyard", "bin/switchyard"}}) {
		t.Errorf("builds = %v", o.builds)
	}
	if !slices.Equal(o.targets, []string{"direct", "switchyard", "haproxy", "nginx"}) {
		t.Errorf("targets = %v", o.targets)
	}
	if !slices.Equal(o.only, measurements) {
		t.Errorf("only = %v", o.only)
	}
	if o.runs != 3 || o.secs != 5 || o.connrateSecs != 5 || o.connrateC != 50 || o.reqrespSecs != 5 || o.rttN != 20000 ||
		o.rttSize != 64 || o.idleN != 10000 || o.outDir != "bench/results" || o.echoSet {
		t.Errorf("defaults = %+v", o)
	}
}

func TestParseFlags(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "BENCH_RUNS" {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name    string
		args    []string
		env     func(string) string
		builds  []build
		targets []string
		only    []string
		runs    int
		wantErr bool
	}{
		{name: "bare path, as make bench passes it", args: []string{"-switchyard", "bin/x"},
			builds: []build{{"switchyard", "bin/x"}}, targets: []string{"direct", "switchyard", "haproxy", "nginx"}},
		{name: "two builds: switchyard means both", args: []string{"-switchyard", "old=/tmp/old", "-switchyard", "new=bin/switchyard", "-targets", "switchyard,direct"},
			builds: []build{{"old", "/tmp/old"}, {"new", "bin/switchyard"}}, targets: []string{"direct", "old", "new"}},
		{name: "a build by name", args: []string{"-switchyard", "bin/switchyard", "-switchyard", "new=bin/new", "-targets", "new"},
			targets: []string{"new"}},
		{name: "measurements in run order", args: []string{"-only", "idle, rtt"}, only: []string{"rtt", "idle"}},
		{name: "BENCH_RUNS", env: env("5"), runs: 5},
		{name: "-runs beats BENCH_RUNS", args: []string{"-runs", "2"}, env: env("5"), runs: 2},
		{name: "bad BENCH_RUNS", env: env("many"), wantErr: true},
		{name: "unknown target", args: []string{"-targets", "envoy"}, wantErr: true},
		{name: "unknown measurement", args: []string{"-only", "latency"}, wantErr: true},
		{name: "two builds named alike", args: []string{"-switchyard", "a", "-switchyard", "b"}, wantErr: true},
		{name: "build named like a built-in", args: []string{"-switchyard", "nginx=bin/x"}, wantErr: true},
		{name: "bad name", args: []string{"-switchyard", "a b=bin/x"}, wantErr: true},
		{name: "profile needs one build", args: []string{"-profile-dir", "p", "-switchyard", "a=x", "-switchyard", "b=y"}, wantErr: true},
		{name: "bad numbers", args: []string{"-secs", "0", "-idle-n", "-1"}, wantErr: true},
		{name: "argument", args: []string{"extra"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := tt.env
			if getenv == nil {
				getenv = noEnv
			}
			o, err := parseFlags(tt.args, getenv, io.Discard)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseFlags(%q) = %+v, want an error", tt.args, o)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.builds != nil && !slices.Equal(o.builds, tt.builds) {
				t.Errorf("builds = %v, want %v", o.builds, tt.builds)
			}
			if tt.targets != nil && !slices.Equal(o.targets, tt.targets) {
				t.Errorf("targets = %v, want %v", o.targets, tt.targets)
			}
			if tt.only != nil && !slices.Equal(o.only, tt.only) {
				t.Errorf("only = %v, want %v", o.only, tt.only)
			}
			if tt.runs != 0 && o.runs != tt.runs {
				t.Errorf("runs = %d, want %d", o.runs, tt.runs)
			}
		})
	}
}
