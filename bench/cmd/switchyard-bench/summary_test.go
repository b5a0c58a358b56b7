package main

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

var testSamples = []sample{
	{1, "direct", "gbps_p1_fwd", 20},
	{1, "switchyard", "gbps_p1_fwd", 10},
	{1, "switchyard", "cpu_s_per_gib_p1_fwd", 0.31234},
	{1, "direct", "rtt_p50_us", 30},
	{1, "switchyard", "rtt_p50_us", 50},
	{2, "switchyard", "gbps_p1_fwd", 9},
	{2, "direct", "gbps_p1_fwd", 21},
	{2, "switchyard", "cpu_s_per_gib_p1_fwd", 0.3},
	{3, "direct", "gbps_p1_fwd", 19},
	{3, "switchyard", "gbps_p1_fwd", 11},
}

func TestSummarize(t *testing.T) {
	got := summarize([]string{"direct", "switchyard", "nginx"}, testSamples)
	var keys []string
	for _, f := range got {
		keys = append(keys, f.Figure+"/"+f.Target)
	}
	// Catalogue order, then target order; nothing for nginx, which has no sample.
	want := []string{"gbps_p1_fwd/direct", "gbps_p1_fwd/switchyard", "cpu_s_per_gib_p1_fwd/switchyard", "rtt_p50_us/direct", "rtt_p50_us/switchyard"}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("figures %v, want %v", keys, want)
	}
	sy := got[1]
	if !reflect.DeepEqual(sy.Values, []float64{10, 9, 11}) || sy.Median != 10 || sy.Min != 9 || sy.Max != 11 ||
		sy.Unit != "Gb/s" || sy.Better != "higher" {
		t.Errorf("switchyard gbps_p1_fwd = %+v", sy)
	}
	if cpu := got[2]; !reflect.DeepEqual(cpu.Values, []float64{0.31234, 0.3}) || cpu.Better != "lower" || cpu.Unit != "s/GiB" {
		t.Errorf("cpu figure = %+v", cpu)
	}
}

func TestSummaryJSON(t *testing.T) {
	date := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
	s := benchsummary.Summary{
		Commit:   "ccd804c",
		Date:     date.Format(time.RFC3339),
		Host:     benchsummary.Host{CPUs: 2, Kernel: "6.18.44", Go: "go1.26.8"},
		Settings: benchsummary.Settings{Runs: 3, IperfSecs: 5, ConnrateSecs: 5, ConnrateConcurrency: 50, RTTN: 20000, RTTSize: 64, IdleN: 9800},
		Targets:  []string{"direct", "switchyard"},
		Notes:    []string{},
		Figures:  summarize([]string{"direct", "switchyard"}, testSamples),
	}
	path, err := writeSummary(t.TempDir()+"/results", s, date.In(time.FixedZone("CET", 3600)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, "/results/ccd804c-20261123-180000.json") {
		t.Errorf("path %s, want results/ccd804c-20261123-180000.json", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var back benchsummary.Summary
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip:\n%+v\nwant\n%+v", back, s)
	}
	for _, want := range []string{
		`"commit": "ccd804c"`, `"date": "2026-11-23T18:00:00Z"`, `"cpus": 2`, `"kernel": "6.18.44"`, `"go": "go1.26.8"`,
		`"iperf_secs": 5`, `"connrate_concurrency": 50`, `"rtt_n": 20000`, `"rtt_size": 64`, `"idle_n": 9800`,
		`"notes": []`, `"target": "switchyard"`, `"figure": "gbps_p1_fwd"`, `"unit": "Gb/s"`, `"better": "higher"`,
		`"median": 10`, `"min": 9`, `"max": 11`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON lacks %s:\n%s", want, b)
		}
	}
}

func TestGitCommit(t *testing.T) {
	git := func(head, status string, err error) func(...string) (string, error) {
		return func(args ...string) (string, error) {
			if args[0] == "rev-parse" {
				return head, err
			}
			return status, nil
		}
	}
	tests := []struct {
		name string
		git  func(...string) (string, error)
		want string
	}{
		{"clean", git("ccd804c\n", "", nil), "ccd804c"},
		{"dirty", git("ccd804c\n", " M go.mod\n", nil), "ccd804c-dirty"},
		{"not a repository", git("", "", errors.New("exit status 128")), "unknown"},
	}
	for _, tt := range tests {
		if got := gitCommit(tt.git); got != tt.want {
			t.Errorf("%s: gitCommit = %q, want %q", tt.name, got, tt.want)
		}
	}
}
