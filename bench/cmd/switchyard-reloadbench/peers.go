package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/switchyard-proxy/switchyard/bench/internal/nginxmod"
)

// peer is one proxy under test: how to configure, start, reload and stop it.
type peer struct {
	name    string
	bin     string // resolved path of the binary
	skip    string // why it cannot run here ("" = it can)
	version string
	// config is the configuration file's text for a proxy listening on
	// listen and forwarding to backend; dir is its private temp dir.
	config   func(dir, listen, backend string) string
	confName string // the configuration file's name in dir
	// argv starts it in the foreground; check validates a configuration
	// file (nil: no check).
	argv  func(dir, conf string) []string
	check func(dir, conf string) []string
	// reloadSig is sent for a reload, stopSig to stop; cleanExit says
	// whether the exit after stopSig is the expected one.
	reloadSig, stopSig syscall.Signal
	cleanExit          func(*os.ProcessState) bool
	// logs: files in dir (besides the combined stdout/stderr in
	// output.log) to scan afterwards; reloadMarker: a substring of the
	// log line the proxy writes once per reload it performs; badMarkers:
	// substrings of log lines worth reporting.
	logs         []string
	reloadMarker string
	badMarkers   []string
	routine      []string // substrings of routine lines that match a bad marker
	// how: the exact commands, for the notes.
	how string
}

func exitedZero(ps *os.ProcessState) bool { return ps != nil && ps.Success() }

// exitedZeroOr accepts an exit status of 0, or 128+sig / death by sig.
func exitedZeroOr(sig syscall.Signal) func(*os.ProcessState) bool {
	return func(ps *os.ProcessState) bool {
		if ps == nil {
			return false
		}
		if ps.Success() || ps.ExitCode() == 128+int(sig) {
			return true
		}
		ws, ok := ps.Sys().(syscall.WaitStatus)
		return ok && ws.Signaled() && ws.Signal() == sig
	}
}

func switchyardPeer(bin string) *peer {
	p := &peer{
		name:     "switchyard",
		confName: "switchyard.toml",
		config: func(_, listen, backend string) string {
			return fmt.Sprintf(`# switchyard-reloadbench: one server, static name, no admin endpoint
[runtime]
workers = 0
[admin]
listen = ""
drain_timeout = "5s"
[[routers]]
label = "reloadbench"
  [routers.interpreter]
  kind = "static"
  [routers.interpreter.names]
  "/svc/backend" = [%q]
  [[routers.servers]]
  listen = %q
  dst = "/svc/backend"
`, backend, listen)
		},
		reloadSig:    syscall.SIGHUP,
		stopSig:      syscall.SIGTERM,
		cleanExit:    exitedZero,
		reloadMarker: "msg=reloaded ",
		badMarkers:   []string{"level=ERROR", "level=WARN", "reload failed"},
	}
	p.argv = func(_, conf string) []string { return []string{p.bin, "-config", conf} }
	p.check = func(_, conf string) []string { return []string{p.bin, "-check", "-config", conf} }
	p.how = "`switchyard -config DIR/switchyard.toml` (foreground); reload: SIGHUP to it; stop: SIGTERM (drain). " +
		"Config: `[runtime] workers = 0`, `[admin] listen = \"\"`, one router with a static interpreter " +
		"`\"/svc/backend\" = [\"127.0.0.1:BACKEND\"]` and one server `listen = \"127.0.0.1:PORT\"`, `dst = \"/svc/backend\"`; " +
		"a reload changes the name's endpoint."
	st, err := os.Stat(bin)
	switch {
	case err != nil:
		p.skip = fmt.Sprintf("switchyard binary %s: %v", bin, err)
		return p
	case st.IsDir():
		p.skip = fmt.Sprintf("switchyard binary %s is a directory", bin)
		return p
	case st.Mode()&0o111 == 0:
		p.skip = fmt.Sprintf("switchyard binary %s is not executable", bin)
		return p
	}
	p.bin, _ = filepath.Abs(bin)
	if out, err := exec.Command(p.bin, "-version").Output(); err == nil {
		p.version = strings.TrimSpace(string(out))
	}
	return p
}

func haproxyPeer(bin string) *peer {
	p := &peer{
		name:     "haproxy",
		confName: "haproxy.cfg",
		config: func(_, listen, backend string) string {
			return fmt.Sprintf(`# switchyard-reloadbench: master-worker, TCP mode
global
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend fe
    bind %s
    default_backend be

backend be
    server s1 %s
`, listen, backend)
		},
		reloadSig: syscall.SIGUSR2,
		stopSig:   syscall.SIGTERM,
		cleanExit: exitedZeroOr(syscall.SIGTERM),
		// the master logs "[NOTICE] (pid) : Reloading HAProxy" per reload
		reloadMarker: "Reloading HAProxy",
		badMarkers:   []string{"[ALERT]", "[WARNING]"},
		// an old worker's soft stop, and its exit, at each reload
		routine: []string{"stopped (cumulated conns:", "exited with code 0"},
	}
	p.argv = func(_, conf string) []string { return []string{p.bin, "-W", "-db", "-f", conf} }
	p.check = func(_, conf string) []string { return []string{p.bin, "-c", "-q", "-f", conf} }
	p.how = "`haproxy -W -db -f DIR/haproxy.cfg` (master-worker, foreground); reload: SIGUSR2 to the master " +
		"(as Debian's `ExecReload=/bin/kill -USR2 $MAINPID`), which re-executes itself and passes the listening " +
		"sockets to the new worker over its internal socketpair (`-x sockpair@`; `expose-fd listeners` is not needed " +
		"in master-worker mode); stop: SIGTERM to the master. Config: `global maxconn 4096`; " +
		"`defaults mode tcp, timeout connect 5s, timeout client 30s, timeout server 30s`; " +
		"`frontend fe bind 127.0.0.1:PORT`; `backend be server s1 127.0.0.1:BACKEND`; a reload changes the server's address."
	path, err := exec.LookPath(bin)
	if err != nil {
		p.skip = fmt.Sprintf("haproxy not found (%v); apt-get install -y haproxy", err)
		return p
	}
	p.bin = path
	if out, err := exec.Command(p.bin, "-v").CombinedOutput(); err == nil {
		if f := strings.Fields(firstLine(string(out))); len(f) >= 3 {
			p.version = "HAProxy " + f[2]
		}
	}
	return p
}

func nginxPeer(bin string) *peer {
	p := &peer{
		name:      "nginx",
		confName:  "nginx.conf",
		reloadSig: syscall.SIGHUP,
		stopSig:   syscall.SIGQUIT,
		cleanExit: exitedZero,
		logs:      []string{"error.log"},
		// "signal 1 (SIGHUP) received from N, reconfiguring", at notice,
		// by the master for each SIGHUP it handles
		reloadMarker: "(SIGHUP) received",
		badMarkers:   []string{"[emerg]", "[alert]", "[crit]", "[error]", "[warn]"},
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		p.skip = fmt.Sprintf("nginx not found (%v); apt-get install -y nginx libnginx-mod-stream", err)
		return p
	}
	p.bin = path
	v, _ := exec.Command(p.bin, "-V").CombinedOutput()
	loadModule, err := nginxmod.StreamModule(string(v), func(f string) bool { _, err := os.Stat(f); return err == nil })
	if err != nil {
		p.skip = err.Error()
		return p
	}
	if i := strings.Index(string(v), "nginx/"); i >= 0 {
		p.version = "nginx " + strings.Fields(string(v)[i+len("nginx/"):])[0]
	}
	p.config = func(dir, listen, backend string) string { return nginxConfig(dir, listen, backend, loadModule) }
	p.argv = func(dir, conf string) []string {
		return []string{p.bin, "-p", dir + "/", "-e", filepath.Join(dir, "error.log"), "-c", conf}
	}
	p.check = func(dir, conf string) []string {
		return []string{p.bin, "-t", "-q", "-p", dir + "/", "-e", filepath.Join(dir, "error.log"), "-c", conf}
	}
	lm := ""
	if loadModule != "" {
		lm = fmt.Sprintf("`load_module %s;` ", loadModule)
	}
	p.how = "`nginx -p DIR/ -e DIR/error.log -c DIR/nginx.conf`; reload: SIGHUP to the master (what `nginx -s reload` sends), " +
		"which re-reads the file, keeps its listening socket, starts new workers and gracefully stops the old ones; " +
		"stop: SIGQUIT (graceful). Config: " + lm + "`daemon off; master_process on; worker_processes auto; " +
		"pid DIR/nginx.pid; error_log DIR/error.log notice; events { worker_connections 1024; }` and " +
		"`stream { server { listen 127.0.0.1:PORT; proxy_pass 127.0.0.1:BACKEND; proxy_connect_timeout 5s; proxy_timeout 30s; } }`; " +
		"a reload changes `proxy_pass`."
	return p
}

func nginxConfig(dir, listen, backend, loadModule string) string {
	var b strings.Builder
	b.WriteString("# switchyard-reloadbench: stream module, master + workers in the foreground\n")
	if loadModule != "" {
		fmt.Fprintf(&b, "load_module %s;\n", loadModule)
	}
	fmt.Fprintf(&b, `daemon off;
master_process on;
worker_processes auto;
pid %s;
error_log %s notice;
events {
    worker_connections 1024;
}
stream {
    server {
        listen %s;
        proxy_pass %s;
        proxy_connect_timeout 5s;
        proxy_timeout 30s;
    }
}
`, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"), listen, backend)
	return b.String()
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// ---------------------------------------------------------------- child process
