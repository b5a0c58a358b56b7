package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "plots")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-out", out, samplePath}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	for _, w := range []string{"| gbps_p1_fwd ", " head/base ", "1.131 | better ", "0.942 | worse ", "within spread"} {
		if !strings.Contains(stdout.String(), w) {
			t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
		}
	}
	md, err := os.ReadFile(filepath.Join(out, "compare.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"# Switchyard bench ccd804c", "2 CPU(s), Linux 6.18.44, go1.26.8", "| gbps_p1_fwd ", "nginx skipped", "![summary](summary.png)"} {
		if !strings.Contains(string(md), w) {
			t.Errorf("compare.md lacks %q:\n%s", w, md)
		}
	}
	checkPNG(t, filepath.Join(out, "summary.png"), 1000, 600)
	checkPNG(t, filepath.Join(out, "rtt_p999_us.png"), 600, 400)
}

func TestRunFlagsPickPair(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-base", "haproxy", "-head", "head", "-out", t.TempDir(), samplePath}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), " head/haproxy ") {
		t.Errorf("no head/haproxy column:\n%s", stdout.String())
	}
}

func TestRunErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badJSON := write("bad.json", `{"commit": "x",`)
	noFigures := write("empty.json", strings.Replace(minimal, "%s", "", 1))
	missing := filepath.Join(dir, "nope.json")
	out := filepath.Join(dir, "out")
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"missing file", []string{"-out", out, missing}, 1, []string{"switchyard-benchplot: open " + missing, "no such file"}},
		{"bad JSON", []string{"-out", out, badJSON}, 1, []string{badJSON + ": bad JSON: unexpected EOF"}},
		{"empty figures", []string{"-out", out, noFigures}, 1, []string{noFigures + ": figures: empty"}},
		{"unknown -base", []string{"-base", "mian", "-out", out, samplePath}, 1, []string{`-base: target "mian" is not in the summary; it has direct, base, head, haproxy, nginx`}},
		{"-out is a file", []string{"-out", badJSON, samplePath}, 1, []string{badJSON}},
		{"no -out", []string{samplePath}, 2, []string{"-out: required", "usage:"}},
		{"no summary", []string{"-out", out}, 2, []string{"missing SUMMARY.json", "usage:"}},
		{"two summaries", []string{"-out", out, samplePath, samplePath}, 2, []string{"unexpected argument"}},
		{"unknown flag", []string{"-bsae", "x", "-out", out, samplePath}, 2, []string{"flag provided but not defined: -bsae"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tt.args, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout on error: %s", stdout.String())
			}
		})
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("bad input created %s (err %v)", out, err)
	}
}
