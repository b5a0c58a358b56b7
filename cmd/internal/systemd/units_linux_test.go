package systemd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// installedBinary is where switchyard.service expects the binary.
const installedBinary = "/usr/local/bin/switchyard"

var unitFiles = []string{"switchyard.service", "switchyard.socket"}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is needed to verify dist/systemd (%v): apt-get install -y systemd", err)
	}
	return path
}

// copyUnits writes the units into dir, with ExecStart pointing at an
// executable there: verify fails a unit whose binary does not exist, and
// the test must not depend on an installed Switchyard.
func copyUnits(t *testing.T, dir string, edit func(name, text string) string) []string {
	t.Helper()
	bin := filepath.Join(dir, "switchyard")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, name := range unitFiles {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "dist", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if name == "switchyard.service" {
			if !strings.Contains(text, "ExecStart="+installedBinary+" ") {
				t.Fatalf("%s: ExecStart does not start %s", name, installedBinary)
			}
			text = strings.ReplaceAll(text, installedBinary, bin)
		}
		if edit != nil {
			text = edit(name, text)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

// verify runs systemd-analyze verify and returns what it reports about
// the units in dir. It exits non-zero on errors but only warns about an
// unknown key or a value it cannot parse, so every line that names one of
// our files counts too; lines about other units (the host's own, which a
// container may have half-installed) do not.
func verify(analyze, dir string, paths []string) error {
	cmd := exec.Command(analyze, "verify", "--man=no", "--recursive-errors=no")
	cmd.Args = append(cmd.Args, paths...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return err
	}
	var ours []string
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, dir) || strings.Contains(line, "switchyard.") {
			ours = append(ours, strings.TrimSpace(line))
		}
	}
	switch {
	case err != nil:
		return fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out)
	case len(ours) > 0:
		return fmt.Errorf("%s:\n%s", strings.Join(cmd.Args, " "), strings.Join(ours, "\n"))
	}
	return nil
}

func TestUnitFilesVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	dir := t.TempDir()
	if err := verify(analyze, dir, copyUnits(t, dir, nil)); err != nil {
		t.Error(err)
	}
}

// The check above passes only if verify would have said something: a
// misspelt key and a bad value, which systemd ignores with a warning, and
// a missing binary, which is an error, are all caught.
func TestUnitFilesVerifyCatchesMistakes(t *testing.T) {
	analyze := systemdAnalyze(t)
	for _, c := range []struct {
		name, old, new, want string
	}{
		{"misspelt key", "\nLimitNOFILE=", "\nLimitNOFLIE=", "Unknown key"},
		{"bad value", "\nTimeoutStopSec=45s", "\nTimeoutStopSec=forty", "forty"},
		{"bad socket value", "\nBacklog=4096", "\nBacklog=many", "many"},
		{"missing binary", "ExecStart=", "ExecStart=/nonexistent", "nonexistent"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			edited := false
			paths := copyUnits(t, dir, func(name, text string) string {
				if strings.Contains(text, c.old) {
					edited = true
				}
				return strings.Replace(text, c.old, c.new, 1)
			})
			if !edited {
				t.Fatalf("no unit contains %q", c.old)
			}
			err := verify(analyze, dir, paths)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("verify said %v, want a report containing %q", err, c.want)
			}
		})
	}
}
