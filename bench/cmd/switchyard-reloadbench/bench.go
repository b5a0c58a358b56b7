package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type peerResult struct {
	name, version string
	skipped       string // why it did not run
	failed        string // why it did not complete
	reloads       int    // reload signals sent
	signals       []time.Duration
	base, reload  phaseStats
	effect        string // whether the last change took effect, for the table
	effectOK      bool   // the final connection reached the last configured backend at once
	logReloads    int    // reloads the proxy logged; -1 if unknown
	how           string
	notes         []string
	samples       map[uint8]string
}

func (r *peerResult) note(format string, a ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, a...))
}

// freePort picks a loopback port nothing listens on now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// writeFileAtomic writes a file by renaming a complete one over it, so a
// reload never reads it half-written.
func writeFileAtomic(path, body string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// benchPeer runs the whole measurement against one proxy.
func benchPeer(ctx context.Context, p *peer, be *backends, o options) (res peerResult) {
	res = peerResult{name: p.name, version: p.version, logReloads: -1, how: p.how}
	if p.skip != "" {
		res.skipped = p.skip
		o.logf("%s: skipped: %s", p.name, p.skip)
		return res
	}
	dir, err := os.MkdirTemp(o.tmpRoot, "reloadbench-"+p.name+"-")
	if err != nil {
		res.failed = err.Error()
		return res
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	}
	port, err := freePort()
	if err != nil {
		res.failed = err.Error()
		return res
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port)
	conf := filepath.Join(dir, p.confName)
	configs := [2]string{p.config(dir, listen, be.addr[0]), p.config(dir, listen, be.addr[1])}

	// Validate both variants first, as a careful operator's reload would.
	if p.check != nil {
		for i, body := range configs {
			f := filepath.Join(dir, fmt.Sprintf("check-%c-%s", tags[i], p.confName))
			if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
				res.failed = err.Error()
				return res
			}
			argv := p.check(dir, f)
			if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
				res.failed = fmt.Sprintf("configuration check failed: %v: %s", err, firstLine(string(out)))
				return res
			}
			os.Remove(f)
		}
	}
	if err := writeFileAtomic(conf, configs[0]); err != nil {
		res.failed = err.Error()
		return res
	}
	logPath := filepath.Join(dir, "output.log")
	c, err := startChild(p.argv(dir, conf), dir, logPath)
	if err != nil {
		res.failed = err.Error()
		return res
	}
	o.logf("%s: started pid %d on %s (%s)", p.name, c.cmd.Process.Pid, listen, strings.Join(p.argv(dir, conf), " "))
	var pool *clientPool
	defer func() {
		if pool != nil {
			pool.stop()
		}
		// What the proxy logged up to now; its stop adds routine lines.
		files := append([]string{logPath}, prefixAll(dir, p.logs)...)
		sizes := make([]int64, len(files))
		for i, f := range files {
			if st, err := os.Stat(f); err == nil {
				sizes[i] = st.Size()
			}
		}
		for _, n := range c.stop(p.stopSig, o.stopTimeout, p.cleanExit) {
			res.note("stop: %s", n)
		}
		res.scanLogs(p, files, sizes)
		if o.keep {
			o.logf("%s: kept %s", p.name, dir)
		}
		o.logf("%s: stopped", p.name)
	}()

	// Wait until it accepts and forwards to A.
	ready := false
	for deadline := time.Now().Add(o.startTimeout); time.Now().Before(deadline); {
		if c.exited() {
			break
		}
		if tag, kind, _ := dialTag(listen, o.connTimeout); kind == kindOK && tag == 'A' {
			ready = true
			break
		}
		if !sleepCtx(ctx, 20*time.Millisecond) {
			res.failed = "interrupted"
			return res
		}
	}
	if !ready {
		res.failed = fmt.Sprintf("did not forward to A on %s within %v (exited: %v): %s", listen, o.startTimeout, c.exited(), tail(logPath, 1))
		return res
	}

	// Baseline, then the reload phase, as long as the reloads are
	// expected to take.
	t0 := time.Now()
	pool = startClients(o.clients, listen, t0, o.connTimeout)
	if !sleepCtx(ctx, o.warmup) {
		res.failed = "interrupted"
		return res
	}
	baseFrom := time.Since(t0)
	if !sleepCtx(ctx, time.Duration(o.reloads)*o.settle) {
		res.failed = "interrupted"
		return res
	}
	reloadFrom := time.Since(t0)
	o.logf("%s: baseline done; reloading %d times, every %v", p.name, o.reloads, o.settle)
	sent, cur := 0, 0
	for i := range o.reloads {
		next := 1 - cur
		if err := writeFileAtomic(conf, configs[next]); err != nil {
			res.note("reload %d: %v", i+1, err)
			break
		}
		if err := c.signal(p.reloadSig); err != nil {
			res.note("reload %d: %v: %v", i+1, p.reloadSig, err)
			break
		}
		sent, cur = sent+1, next
		res.signals = append(res.signals, time.Since(t0))
		if !sleepCtx(ctx, o.settle) {
			break
		}
	}
	reloadTo := time.Since(t0)
	res.reloads = sent
	recs, samples := pool.stop()
	pool = nil
	if ctx.Err() != nil {
		res.failed = "interrupted"
		return res
	}
	if c.exited() {
		res.note("exited during the run: %v; %s", c.cmd.ProcessState, tail(logPath, 1))
	}

	// Did the last change take effect?
	want := tags[cur]
	checkAt := time.Now()
	tag, kind, err := dialTag(listen, o.connTimeout)
	switch {
	case kind == kindOK && tag == want:
		res.effect, res.effectOK = "yes", true
	default:
		got := fmt.Sprintf("got %c", tag)
		if kind != kindOK {
			got = fmt.Sprintf("%s: %v", kindNames[kind], err)
		}
		res.effect = fmt.Sprintf("no (%s, want %c; still not %v later)", got, want, o.effectWait)
		for time.Since(checkAt) < o.effectWait && ctx.Err() == nil {
			sleepCtx(ctx, 20*time.Millisecond)
			if tag, kind, _ := dialTag(listen, o.connTimeout); kind == kindOK && tag == want {
				res.effect = fmt.Sprintf("no (%s, want %c); yes %d ms later", got, want, time.Since(checkAt).Milliseconds())
				break
			}
		}
	}

	// Let a reload still under way finish, so that the stop does not race
	// it (a stop signal during HAProxy's re-exec kills the master at once).
	sleepCtx(ctx, o.quiet)

	res.base = phase(recs, baseFrom, reloadFrom)
	res.reload = phase(recs, reloadFrom, reloadTo)
	res.samples = samples
	o.logf("%s: base served %d failed %d; reload served %d failed %d; last change: %s",
		p.name, res.base.served, res.base.failedTotal(), res.reload.served, res.reload.failedTotal(), res.effect)
	return res
}

// scanLogs counts the proxy's own reload lines and keeps the first few
// lines that look like trouble, reading each file up to its size in sizes.
func (r *peerResult) scanLogs(p *peer, files []string, sizes []int64) {
	reloads, bad := 0, 0
	var shown []string
	for i, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(io.LimitReader(fh, sizes[i]))
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if p.reloadMarker != "" && strings.Contains(line, p.reloadMarker) {
				reloads++
			}
			if !containsAny(line, p.badMarkers) || containsAny(line, p.routine) {
				continue
			}
			bad++
			if len(shown) < 3 && !slices.Contains(shown, line) {
				shown = append(shown, line)
			}
		}
		fh.Close()
	}
	if p.reloadMarker != "" {
		r.logReloads = reloads
	}
	if bad > 0 {
		r.note("%d log line(s) at warning level or above, e.g. %s", bad, strings.Join(quoteAll(shown), "; "))
	}
}

func containsAny(s string, subs []string) bool {
	for _, m := range subs {
		if strings.Contains(s, m) {
			return true
		}
	}
	return false
}

func prefixAll(dir string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.Join(dir, n)
	}
	return out
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		out[i] = "`" + strings.ReplaceAll(s, "`", "'") + "`"
	}
	return out
}

// tail returns the last n lines of a file, joined by " | ".
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

// ---------------------------------------------------------------- report
