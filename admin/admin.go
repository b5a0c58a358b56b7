// Package admin is Switchyard's operator endpoint: plain net/http on its own
// address, off the data path. It serves the Prometheus metrics, answers
// liveness and readiness probes, shows the effective configuration and the
// live state of every router's names, starts the same graceful drain as
// SIGTERM, and serves pprof when asked to.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"
)

// Source is what the admin endpoint reports on and acts upon.
type Source interface {
	// Ready reports whether every listener is bound and no drain has
	// begun.
	Ready() bool
	// Config returns the effective configuration, defaults filled in.
	Config() any
	// Routers returns the live state of the routers.
	Routers() any
	// Shutdown starts the graceful drain; it must not block.
	Shutdown()
	// Reload reads the configuration again and applies it, and says
	// what it did, or every problem found. It gives up waiting to start
	// when stop is closed (the request went away).
	Reload(stop <-chan struct{}) (string, error)
}

// Options are the admin endpoint's settings.
type Options struct {
	// Pprof serves net/http/pprof under /debug/pprof/.
	Pprof bool
	// Metrics serves GET /metrics (Prometheus); nil: no /metrics.
	Metrics http.Handler
}

// Server is a running admin endpoint.
type Server struct {
	srv *http.Server
	ln  net.Listener
	// cancel ends the context of every request, at Close: a request
	// waiting on the process (POST /reload) gives up instead of holding
	// the close up.
	cancel context.CancelFunc
	done   chan struct{}
	closed sync.Once
	err    error
}

// Start listens on addr ("IP:port") and serves in the background.
func Start(addr string, src Source, opt Options, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	base, cancel := context.WithCancel(context.Background())
	s := &Server{
		ln:     ln,
		cancel: cancel,
		done:   make(chan struct{}),
		srv: &http.Server{
			BaseContext:       func(net.Listener) context.Context { return base },
			Handler:           Handler(src, opt),
			ReadHeaderTimeout: 5 * time.Second,
			// pprof's profile and trace run for their seconds= (30 by
			// default) before they answer.
			WriteTimeout:   2 * time.Minute,
			IdleTimeout:    time.Minute,
			MaxHeaderBytes: 64 << 10,
			ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	go s.serve(log)
	return s, nil
}

// serve runs the HTTP server until Close; named for stack dumps.
func (s *Server) serve(log *slog.Logger) {
	defer close(s.done)
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("admin endpoint stopped", "err", err)
	}
}

// Addr is the address the endpoint listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the endpoint, letting requests under way finish for up to
// a few seconds. Later calls return the first one's result.
func (s *Server) Close() error {
	s.closed.Do(func() {
		s.cancel()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if s.err = s.srv.Shutdown(ctx); s.err != nil {
			s.err = s.srv.Close()
		}
		<-s.done
	})
	return s.err
}

// Handler serves the admin endpoints for src.
func Handler(src Source, opt Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /live", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "live")
	})
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if src.Ready() {
			text(w, http.StatusOK, "ready")
			return
		}
		text(w, http.StatusServiceUnavailable, "not ready: starting or draining")
	})
	mux.HandleFunc("GET /config", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, View(src.Config()))
	})
	mux.HandleFunc("GET /routers", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, View(src.Routers()))
	})
	mux.HandleFunc("POST /shutdown", func(w http.ResponseWriter, _ *http.Request) {
		src.Shutdown()
		text(w, http.StatusAccepted, "draining")
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		msg, err := src.Reload(r.Context().Done())
		if err != nil {
			text(w, http.StatusBadRequest, "reload failed: keeping the running configuration\n"+err.Error())
			return
		}
		text(w, http.StatusOK, msg)
	})
	if opt.Metrics != nil {
		mux.Handle("GET /metrics", opt.Metrics)
	}
	if opt.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func text(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, msg)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
