package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
)

const dotMissing = "install graphviz (apt-get install -y graphviz) for SVG call graphs"

// profileRun runs the one switchyard build with -cpuprofile and
// -memprofile under the throughput (P1 fwd, P4 rev), connection-rate and
// request/response loads, stops it with SIGTERM, which writes the profiles, and renders
// them as SVG call graphs when graphviz is installed.
func profileRun(ctx context.Context, b *bencher, stdout io.Writer) error {
	dir, err := filepath.Abs(b.o.profileDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	bld := b.o.builds[0]
	b.o.runs = 1 // for the progress lines
	cpu, heap := filepath.Join(dir, "cpu.pprof"), filepath.Join(dir, "heap.pprof")
	t := &target{name: bld.name, proxy: switchyardProxy{
		path: bld.path, workers: b.o.workers, pipeSize: b.o.pipeSize,
		extraArgs: []string{"-cpuprofile", cpu, "-memprofile", heap},
	}}
	fmt.Fprintf(b.progress, "profiling %s (%s) into %s\n", bld.name, bld.path, dir)
	if err := t.start(ctx, filepath.Join(b.dir, "profile"), b.be, 1000, b.nofile, false); err != nil {
		t.stop()
		return err
	}
	for _, st := range []step{
		{measurement: measureThroughput, tcase: cases[0]},
		{measurement: measureThroughput, tcase: cases[3]},
		{measurement: measureConnrate},
		{measurement: measureReqresp},
	} {
		if t.down == nil && ctx.Err() == nil {
			b.measure(ctx, 1, st, t)
		}
	}
	stopErr := t.stop()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("interrupted: %w", context.Cause(ctx))
	}
	if err := errors.Join(append(failureErrs(b.res.failures), stopErr)...); err != nil {
		return err
	}
	for _, p := range []string{cpu, heap} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("%s did not write its profile: %w", bld.name, err)
		}
		fmt.Fprintln(stdout, p)
	}
	return renderProfiles(ctx, bld.path, cpu, heap, stdout, b.progress)
}

// renderProfiles writes cpu.svg and heap.svg (allocated bytes) beside the
// profiles, if graphviz's dot is installed.
func renderProfiles(ctx context.Context, binary, cpu, heap string, stdout, progress io.Writer) error {
	if _, err := exec.LookPath("dot"); err != nil {
		fmt.Fprintln(progress, dotMissing)
		return nil
	}
	for _, r := range []struct {
		profile string
		extra   []string
	}{
		{cpu, nil},
		{heap, []string{"-sample_index=alloc_space"}},
	} {
		svg := r.profile[:len(r.profile)-len(filepath.Ext(r.profile))] + ".svg"
		args := append(append([]string{"tool", "pprof", "-svg"}, r.extra...), "-output", svg, binary, r.profile)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Stdout, cmd.Stderr = progress, progress
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go %v: %w", args, err)
		}
		fmt.Fprintln(stdout, svg)
	}
	return nil
}

func failureErrs(fs []failure) []error {
	var out []error
	for _, f := range fs {
		out = append(out, fmt.Errorf("%s, %s: %w", f.target, f.what, f.err))
	}
	return out
}
