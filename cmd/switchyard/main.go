// Command switchyard runs the Switchyard TCP connection router.
//
//	switchyard -config FILE            run
//	switchyard -check -config FILE     validate the configuration and exit
//	switchyard -version                print the version
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard-proxy/switchyard/cmd/internal/systemd"
	"github.com/switchyard-proxy/switchyard/router"
)

// version is stamped by the Makefile (-ldflags "-X main.version=...").
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchyard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "path of the TOML configuration `file`")
	check := fs.Bool("check", false, "validate the configuration and exit: 0 if valid, 1 with the errors if not")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `file` (pprof format)")
	memProfile := fs.String("memprofile", "", "write a heap profile to `file` when stopping (pprof format)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "switchyard: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintf(stdout, "switchyard %s (%s %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "switchyard: %v\n", err)
		return 2
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "switchyard: -config is required")
		fs.Usage()
		return 2
	}
	cfg, err := router.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "switchyard: %v\n", err)
		return 1
	}
	if *check {
		fmt.Fprintf(stdout, "%s: configuration is valid\n", *configPath)
		return 0
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "switchyard: -cpuprofile: %v\n", err)
			return 1
		}
		defer stop()
	}
	access := func(w io.Writer) slog.Handler {
		if *logFormat == "json" {
			return slog.NewJSONHandler(w, nil)
		}
		return slog.NewTextHandler(w, nil)
	}
	code := serve(cfg, *configPath, log, router.Options{AccessHandler: access})
	if *memProfile != "" {
		if err := writeHeapProfile(*memProfile); err != nil {
			log.Error("cannot write the heap profile", "err", err)
			return 1
		}
	}
	return code
}

func serve(cfg *router.Config, path string, log *slog.Logger, opt router.Options) int {
	soft, hard, err := raiseOpenFiles()
	if err != nil {
		log.Warn("cannot raise the open-files limit", "soft", soft, "hard", hard, "err", err)
	}
	fitOpenFiles(cfg, soft, log)
	if err := inheritSockets(cfg, log); err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	notify, err := systemd.NewNotifier()
	if err != nil {
		log.Warn("cannot notify systemd", "err", err)
	}
	defer notify.Close()
	watchdog, watching, err := systemd.WatchdogInterval()
	if err != nil {
		log.Warn("systemd's watchdog is set but unusable: no pings will be sent", "err", err)
	}
	// Subscribe before starting so a signal during start-up is not lost.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	p, err := router.StartWith(cfg, log, opt)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	sv := &service{p: p, path: path, log: log, notify: notify, soft: soft}
	sv.src = &adminSource{proxy: p, shutdown: make(chan struct{}, 1), reloads: make(chan chan reloadResult)}
	sv.metrics = metricsHandler(p)
	if err := sv.startAdmin(cfg.Admin); err != nil {
		log.Error("start failed", "err", err)
		_ = p.Stop()
		return 1
	}
	defer sv.closeAdmin()
	sv.src.ready.Store(true)
	log.Info("started", "version", version, "config", path, "workers", p.Workers(), "servers", sv.listening())
	if err := notify.Ready(sv.status()); err != nil {
		log.Warn("cannot notify systemd", "err", err)
	}
	watch := newResourceWatch(p)
	tick := time.NewTicker(resourceWatchInterval)
	defer tick.Stop()
	stopPings, pingsDone := make(chan struct{}), make(chan struct{})
	if watching {
		go pingWatchdog(p, notify, watchdog, log, stopPings, pingsDone)
	} else {
		close(pingsDone)
	}
wait:
	for {
		select {
		case <-tick.C:
			watch.report(log)
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				_, after := sv.reload("SIGHUP")
				after()
				continue
			}
			sv.stopping("stopping on "+sig.String(), "signal", sig.String())
			drain(p, p.Config().Admin.DrainTimeout, sigs, log)
			break wait
		case reply := <-sv.src.reloads:
			res, after := sv.reload("POST /reload")
			reply <- res
			after()
		case <-sv.src.shutdown:
			sv.stopping("stopping on POST /shutdown", "request", "POST /shutdown")
			drain(p, p.Config().Admin.DrainTimeout, sigs, log)
			break wait
		}
	}
	close(stopPings)
	<-pingsDone
	sv.closeAdmin() // before the loops go: a scrape asks them for their pipes
	err = p.Stop()
	for _, r := range p.Routers() {
		for _, s := range r.Servers() {
			st := s.Stats()
			log.Info("server stopped", "router", r.Label(), "listen", s.Addr(), "accepted", st.Accepted,
				"accept_errors", st.AcceptErrors, "resource_waits", st.ResourceWaits,
				"connect_failures", failureSummary(st), "bytes_up", st.BytesUp, "bytes_down", st.BytesDown,
				"ended", endedSummary(st))
		}
	}
	if err != nil {
		log.Error("stopped with errors", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// fitOpenFiles gives max_connections = 0 its share of the open-files limit
// and warns when the configuration can use more descriptors than it.
func fitOpenFiles(cfg *router.Config, soft uint64, log *slog.Logger) {
	if soft == 0 {
		return
	}
	cfg.FitOpenFiles(soft)
	if need := cfg.DescriptorsNeeded(soft); need > soft {
		log.Warn("the open-files limit is below what the configuration can use: "+
			"accepting will pause when descriptors run out",
			"limit", soft, "needed", need, "hint", "raise LimitNOFILE or lower max_connections / max_pipes")
	}
}

func failureSummary(st router.ServerStats) map[string]uint64 {
	out := map[string]uint64{}
	for f, n := range st.ConnectFailures {
		if n > 0 {
			out[router.ConnectFailureName(f)] = n
		}
	}
	return out
}

func endedSummary(st router.ServerStats) map[string]uint64 {
	out := map[string]uint64{}
	for r, n := range st.Ended {
		if n > 0 {
			out[router.ReasonName(r)] = n
		}
	}
	return out
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, errors.New(`-log-format: want "text" or "json", got "` + format + `"`)
}

// raiseOpenFiles raises the soft open-files limit to the hard limit: every
// proxied connection needs two descriptors.
func raiseOpenFiles() (soft, hard uint64, err error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, 0, os.NewSyscallError("getrlimit", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			return lim.Cur, lim.Max, os.NewSyscallError("setrlimit", err)
		}
	}
	return lim.Cur, lim.Max, nil
}

// inheritSockets hands each server the listening socket systemd passed for
// its address, if any (socket activation: LISTEN_FDS), and closes those no
// server listens on.
func inheritSockets(cfg *router.Config, log *slog.Logger) error {
	inherited, err := systemd.Listeners()
	if err != nil {
		return err
	}
	used := map[int]bool{}
	for i := range cfg.Routers {
		for j := range cfg.Routers[i].Servers {
			s := &cfg.Routers[i].Servers[j]
			l, ok := systemd.Match(inherited, s.Listen, s.SystemdSocket)
			if !ok || used[l.FD] {
				if s.SystemdSocket != "" && len(inherited) > 0 {
					log.Warn("no socket from systemd for this server: binding its listen address",
						"router", cfg.Routers[i].Label, "listen", s.Listen, "systemd_socket", s.SystemdSocket)
				}
				continue
			}
			used[l.FD] = true
			s.Inherited = l.FD
			log.Info("listening on a socket from systemd", "router", cfg.Routers[i].Label, "listen", s.Listen, "fd", l.FD, "name", l.Name)
		}
	}
	for _, l := range inherited {
		if !used[l.FD] {
			log.Warn("closing a socket from systemd that no server listens on", "addr", l.Addr, "fd", l.FD, "name", l.Name)
			unix.Close(l.FD)
		}
	}
	return nil
}

// drainPoll is how often a drain looks whether the last connection ended.
const drainPoll = 50 * time.Millisecond

// drain closes the listeners, so that new connections are refused, and
// waits for the open ones to end: at most timeout, and until a second stop
// signal. Stop closes what is left.
func drain(p *router.Proxy, timeout time.Duration, sigs <-chan os.Signal, log *slog.Logger) {
	p.Shut()
	open := p.Open()
	if open == 0 || timeout <= 0 {
		return
	}
	log.Info("draining: listeners closed, waiting for open connections to end", "open", open, "drain_timeout", timeout)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(drainPoll)
	defer poll.Stop()
	for {
		select {
		case <-poll.C:
			if p.Open() == 0 {
				log.Info("drained: every connection ended")
				return
			}
		case <-deadline.C:
			log.Warn("drain_timeout passed: closing the connections left", "open", p.Open())
			return
		case sig := <-sigs:
			if sig != syscall.SIGHUP {
				log.Warn("second signal: closing the connections left", "signal", sig.String(), "open", p.Open())
				return
			}
		}
	}
}

// pingWatchdog tells systemd WATCHDOG=1 every interval while every event
// loop answers a ping: a wedged loop stops the pings, and systemd restarts
// the process. It runs on its own goroutine, so that a slow ping never
// holds up a signal.
func pingWatchdog(p *router.Proxy, notify *systemd.Notifier, interval time.Duration, log *slog.Logger, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := p.Ping(interval / 2); err != nil {
				log.Error("watchdog ping withheld", "err", err)
				continue
			}
			if err := notify.Watchdog(); err != nil {
				log.Warn("cannot notify systemd", "err", err)
			}
		}
	}
}

// metricsHandler serves the proxy's metrics with Go's and the process's,
// as Prometheus text or OpenMetrics, whichever the scraper asks for.
func metricsHandler(p *router.Proxy) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collector(version), collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true})
}
