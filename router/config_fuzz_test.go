package router

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/hashicorp/go-multierror"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(configIssueExample))
	f.Add([]byte(configBase))
	f.Add([]byte("[runtime]\nworkers = \"x\"\n" + configBase))
	f.Add([]byte(strings.Replace(configBase, `listen = "127.0.0.1:7475"`, `lisen = "127.0.0.1:99999"`, 1)))
	f.Add([]byte(strings.Replace(configBase, `idle_timeout = "1m"`, `idle_timeout = "-5 minutes"`, 1)))
	f.Add([]byte(strings.Replace(configBase, `"127.0.0.1:8081*0.5"`, `"[::1]:8081*1e-400"`, 1)))
	f.Add([]byte(strings.Replace(configBase, `dst = "/svc/echo"`, `dst = "/svc/web"`, 1)))
	f.Add([]byte(strings.ReplaceAll(configBase, `"127.0.0.1:747`, `"0.0.0.0:0`)))
	f.Add([]byte(`routers = [{ label = "a", interpreter = { kind = "static", names = { "/a" = ["1.2.3.4:5"] } }, servers = [{ listen = "[::]:1", dst = "/a" }] }]`))
	f.Add([]byte("a = '''\n[x]'''\n\"k.\\\"\" = { b = [1, {c = \"\"\"\n\"\"\"}] }\n[[routers]]\n[[routers.servers]]\n"))
	f.Add([]byte("[[routers]]\nlabel = \"a\"\n[routers.client]\nfailure_accrual = { consecutive_failures = 5, penalty = \"60s\" \n"))
	if example, err := os.ReadFile("../config.example.toml"); err == nil {
		f.Add(example)
		// Each other kind's block, uncommented, in place of the static one.
		other := strings.NewReplacer("  #[routers.interpreter]", "  [routers.interpreter]", "  #kind", "  kind",
			"  #base_url", "  base_url", "  #dir", "  dir", "  #server", "  server", "  #timeout", "  timeout")
		f.Add([]byte(other.Replace(string(example))))
	}
	f.Add([]byte(`routers = [{ label = "a", interpreter = { kind = "namerd", base_url = "http://[::1]:4180/x", watch = false, period = "1s" }, servers = [{ listen = "[::]:1", dst = "/svc/a" }] }]`))
	f.Add([]byte(`routers = [{ label = "a", interpreter = { kind = "dns", server = "1.2.3.4:53", ttl_min = "5m", ttl_max = "1s" }, servers = [{ listen = "[::]:1", dst = "/dnssrv/_x._tcp.a.b" }] }]`))
	f.Add([]byte(`routers = [{ label = "a", bind_idle = "0s", max_names = 0, interpreter = { kind = "file", dir = "", prefix = "svc/" }, servers = [{ listen = "[::]:1", dst = "/svc/../a" }], client = { max_waiters = -1 } }]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		configKeyLinesComplete(t, string(data))
		cfg, err := Parse(data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse = %v, %v: want exactly one of a Config and an error", cfg, err)
		}
		if err != nil {
			var merr *multierror.Error
			if !errors.As(err, &merr) || len(merr.Errors) == 0 {
				t.Fatalf("error is not a non-empty *multierror.Error: %#v", err)
			}
			for _, e := range merr.Errors {
				var ce *ConfigError
				if !errors.As(e, &ce) || ce.Err == nil || e.Error() == "" {
					t.Fatalf("problem is not a complete *ConfigError: %#v", e)
				}
			}
			return
		}
		configInvariants(t, cfg)
	})
}

// configKeyLinesComplete checks that keyLines ends on any input and, for
// valid TOML, finds a line for every key, table and array element.
func configKeyLinesComplete(t *testing.T, src string) {
	lines := keyLines(src)
	var tree map[string]any
	if _, err := toml.Decode(src, &tree); err != nil {
		return
	}
	n := strings.Count(src, "\n") + 1
	var walk func(path string, v any)
	walk = func(path string, v any) {
		if path != "" {
			if line, ok := lines[path]; !ok || line < 1 || line > n {
				t.Fatalf("keyLines: %s has line %d (found: %v); all lines: %v", path, line, ok, lines)
			}
		}
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				walk(joinKey(path, k), e)
			}
		case []map[string]any:
			for i, e := range v {
				walk(indexPath(path, i), e)
			}
		case []any:
			for i, e := range v {
				walk(indexPath(path, i), e)
			}
		}
	}
	walk("", tree)
}
