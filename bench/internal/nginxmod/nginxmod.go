// Package nginxmod finds nginx's stream module, which the benchmarks need
// to run nginx as a TCP proxy.
package nginxmod

import (
	"errors"
	"path/filepath"
	"strings"
)

// ErrNoStream says nginx has no stream module, and what to install.
var ErrNoStream = errors.New("nginx has no stream module (apt-get install -y libnginx-mod-stream)")

// StreamModule reads `nginx -V` output: the .so to load_module when the
// stream module is dynamic, "" when it is built in, ErrNoStream when there
// is none. exists tells whether a file exists.
func StreamModule(v string, exists func(string) bool) (string, error) {
	dirs := []string{"/usr/lib/nginx/modules", "/usr/share/nginx/modules", "/usr/lib64/nginx/modules"}
	dynamic := false
	for _, f := range strings.Fields(v) {
		switch {
		case f == "--with-stream":
			return "", nil
		case f == "--with-stream=dynamic":
			dynamic = true
		case strings.HasPrefix(f, "--modules-path="):
			dirs = append([]string{strings.TrimPrefix(f, "--modules-path=")}, dirs...)
		}
	}
	if dynamic {
		for _, d := range dirs {
			if so := filepath.Join(d, "ngx_stream_module.so"); exists(so) {
				return so, nil
			}
		}
	}
	return "", ErrNoStream
}
