package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/hashicorp/go-multierror"

	"github.com/switchyard-proxy/switchyard/admin"
	"github.com/switchyard-proxy/switchyard/cmd/internal/systemd"
	"github.com/switchyard-proxy/switchyard/router"
)

// service is a running switchyard serve: the proxy and what surrounds it
// (admin endpoint, systemd), and what a reload changes of them. Its
// methods run on serve's goroutine.
type service struct {
	p       *router.Proxy
	path    string
	log     *slog.Logger
	notify  *systemd.Notifier
	soft    uint64 // the open-files limit
	src     *adminSource
	metrics http.Handler
	adm     *admin.Server // nil when [admin] listen = ""
	admCfg  router.AdminConfig
}

// reloadResult is what POST /reload answers.
type reloadResult struct {
	generation uint64
	err        error
}

// reload reads the configuration file again and has the proxy take it.
// On any error nothing changes, and every problem is logged. after does
// what must wait until a POST /reload has its answer: closing the admin
// endpoint that request came through, when the reload moved it.
func (sv *service) reload(trigger string) (res reloadResult, after func()) {
	after = func() {}
	if err := sv.notify.Reloading("reloading " + sv.path); err != nil {
		sv.log.Warn("cannot notify systemd", "err", err)
	}
	defer func() {
		if err := sv.notify.Ready(sv.status()); err != nil {
			sv.log.Warn("cannot notify systemd", "err", err)
		}
	}()
	fail := func(err error) (reloadResult, func()) {
		var problems *multierror.Error
		if errors.As(err, &problems) {
			for _, e := range problems.Errors {
				sv.log.Error("configuration error", "err", e)
			}
		} else {
			sv.log.Error("configuration error", "err", err)
		}
		sv.log.Error("reload failed: keeping the running configuration", "config", sv.path, "trigger", trigger,
			"generation", sv.p.Generation())
		return reloadResult{err: err}, func() {}
	}
	cfg, err := router.Load(sv.path)
	if err != nil {
		sv.p.ReloadFailed()
		return fail(err)
	}
	fitOpenFiles(cfg, sv.soft, sv.log)
	// A new admin endpoint starts before the proxy takes the
	// configuration, so that a failure to bind it changes nothing.
	oldAdm, oldCfg, moved := sv.adm, sv.admCfg, cfg.Admin.Listen != sv.admCfg.Listen || cfg.Admin.Pprof != sv.admCfg.Pprof
	if moved && cfg.Admin.Listen != sv.admCfg.Listen {
		if err := sv.startAdmin(cfg.Admin); err != nil {
			sv.p.ReloadFailed()
			return fail(err)
		}
	}
	notes, err := sv.p.Reload(cfg)
	if err != nil {
		if sv.adm != oldAdm {
			sv.closeAdmin()
			sv.adm, sv.admCfg = oldAdm, oldCfg
		}
		return fail(err)
	}
	for _, n := range notes {
		sv.log.Warn("configuration change not applied", "change", n)
	}
	if moved {
		after = func() { sv.moveAdmin(oldAdm, cfg.Admin) }
	}
	sv.admCfg.DrainTimeout = cfg.Admin.DrainTimeout
	sv.log.Info("reloaded", "generation", sv.p.Generation(), "config", sv.path, "trigger", trigger,
		"servers", sv.listening())
	return reloadResult{generation: sv.p.Generation()}, after
}

// moveAdmin closes old, the admin endpoint before a reload that changed
// its settings, and starts it anew on the same address if the reload
// did not start it on another already.
func (sv *service) moveAdmin(old *admin.Server, cfg router.AdminConfig) {
	if sv.adm != old {
		if old != nil {
			_ = old.Close()
		}
		sv.log.Info("admin endpoint moved", "listen", cfg.Listen)
		return
	}
	sv.closeAdmin()
	if err := sv.startAdmin(cfg); err != nil {
		sv.adm = nil // closed
		sv.log.Error("admin endpoint not restarted after the reload", "err", err)
		return
	}
	sv.log.Info("admin endpoint restarted", "listen", cfg.Listen, "pprof", cfg.Pprof)
}

// startAdmin starts the admin endpoint of cfg, if it has one, as the
// service's. On error the service's is left as it was.
func (sv *service) startAdmin(cfg router.AdminConfig) error {
	var adm *admin.Server
	if cfg.Listen != "" {
		var err error
		adm, err = admin.Start(cfg.Listen, sv.src, admin.Options{Pprof: cfg.Pprof, Metrics: sv.metrics}, sv.log)
		if err != nil {
			return err
		}
	}
	sv.adm, sv.admCfg = adm, cfg
	return nil
}

func (sv *service) closeAdmin() {
	if sv.adm != nil {
		_ = sv.adm.Close()
	}
}

// listening names each running server, and the admin endpoint.
func (sv *service) listening() []string {
	var out []string
	for _, r := range sv.p.Routers() {
		for _, s := range r.Servers() {
			out = append(out, fmt.Sprintf("%s:%s->%s", r.Label(), s.Addr(), s.Route().Dst))
		}
	}
	if sv.adm != nil {
		out = append(out, "admin:"+sv.adm.Addr().String())
	}
	return out
}

// status is systemd's one-line STATUS=.
func (sv *service) status() string {
	n := 0
	for _, r := range sv.p.Routers() {
		n += len(r.Servers())
	}
	s := fmt.Sprintf("serving %d servers on %d event loops", n, sv.p.Workers())
	if g := sv.p.Generation(); g > 1 {
		s += fmt.Sprintf(", configuration %d", g)
	}
	return s
}

// stopping begins a stop: /ready answers 503 from now on, and systemd
// hears STOPPING=1.
func (sv *service) stopping(status string, attrs ...any) {
	sv.log.Info("stopping", attrs...)
	sv.src.ready.Store(false)
	_ = sv.notify.Stopping(status)
}

// problemsText is the body of a failed POST /reload: one problem a line.
func problemsText(err error) string {
	var problems *multierror.Error
	if errors.As(err, &problems) {
		lines := make([]string, len(problems.Errors))
		for i, e := range problems.Errors {
			lines[i] = e.Error()
		}
		return strings.Join(lines, "\n")
	}
	return err.Error()
}
