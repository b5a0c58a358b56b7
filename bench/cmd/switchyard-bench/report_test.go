package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
)

func TestWriteTable(t *testing.T) {
	targets := []string{"direct", "switchyard"}
	s := benchsummary.Summary{
		Commit: "ccd804c", Date: "2026-11-23T18:00:00Z", Host: benchsummary.Host{CPUs: 2, Kernel: "6.18.44"},
		Settings: benchsummary.Settings{Runs: 3, IperfSecs: 5, IdleN: 9800},
		Targets:  targets,
		Notes:    []string{"nginx skipped: nginx not installed"},
		Figures:  summarize(targets, testSamples),
	}
	var b bytes.Buffer
	writeTable(&b, s)
	for _, want := range []string{
		"| figure | direct | switchyard |\n|---|--:|--:|\n",
		"| Gb/s P1 fwd ↑ | 20.00 (19.00–21.00) | 10.00 (9.00–11.00) · 50% |",
		"| CPU s/GiB P1 fwd ↓ | – | 0.306 (0.300–0.312) |",
		"| RTT p50 µs ↓ | 30.0 | 50.0 · +20.0 |",
		"- nginx skipped: nginx not installed",
		"idle n=9800",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "| conn/s") {
		t.Errorf("table has a row for a figure nobody measured:\n%s", b.String())
	}
}

func TestWriteCSV(t *testing.T) {
	res := results{
		samples:  []sample{{1, "switchyard", "gbps_p1_rev", 20.5}},
		failures: []failure{{1, "direct", "P1 rev", errors.New("iperf3: the server is busy running a test. try again later")}},
	}
	var b bytes.Buffer
	if err := writeCSV(&b, res); err != nil {
		t.Fatal(err)
	}
	want := "round,target,figure,value,error\n" +
		"1,switchyard,gbps_p1_rev,20.5,\n" +
		"1,direct,P1 rev,,iperf3: the server is busy running a test. try again later\n"
	if b.String() != want {
		t.Fatalf("CSV:\n%s\nwant:\n%s", b.String(), want)
	}
}
