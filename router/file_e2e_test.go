package router

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter/file"
)

// serviceLine is the line of a service file listing addr.
func serviceLine(addr string) string {
	ap := netip.MustParseAddrPort(addr)
	return fmt.Sprintf("%s %d\n", ap.Addr(), ap.Port())
}

func fileSettings(dir string) *file.Settings { return &file.Settings{Dir: dir, Prefix: "/svc"} }

// The service file of testDst is written, replaced, deleted and broken
// under a running proxy; new connections follow each good version of it.
func TestFileTrafficFollowsTheServiceFile(t *testing.T) {
	a, b := startNamedBackend(t, "a"), startNamedBackend(t, "b")
	dir := t.TempDir()
	replaceFile(t, dir, "test", serviceLine(a.addr))
	p := startProxy(t, discoveryConfig("file", fileSettings(dir)))
	first := dial(t, p.addr)
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("first connection: %q, %v", got, err)
	}

	// A new file renamed over the old one.
	replaceFile(t, dir, "test", "# moved\n"+serviceLine(b.addr))
	if took := waitRoute(t, p.addr, "b"); took > time.Second {
		t.Errorf("traffic followed the new file after %v, want within a second", took)
	} else {
		t.Logf("traffic followed the new file after %v", took)
	}
	if got, err := echoLine(first, "?"); err != nil || got != "a\n" {
		t.Fatalf("the stream to a after the file moved to b: %q, %v", got, err)
	}

	if err := os.Remove(filepath.Join(dir, "test")); err != nil {
		t.Fatal(err)
	}
	waitNoEndpoints(t, p)
	if s := nameState(t, p); s.State != "not_found" {
		t.Errorf("with its file deleted the name is %s", s.State)
	}

	replaceFile(t, dir, "test", serviceLine(a.addr))
	waitRoute(t, p.addr, "a")

	// A file with one bad line is not applied, not even its good lines:
	// the last good set keeps serving.
	failures := nameState(t, p).Failures
	replaceFile(t, dir, "test", serviceLine(b.addr)+"127.0.0.1 http\n")
	s := waitFailures(t, p, failures+1)
	if !strings.Contains(s.LastError, "line 2") {
		t.Errorf("last error %q, want it to name line 2", s.LastError)
	}
	expectRoute(t, p.addr, "a", 5)
	if s := nameState(t, p); s.State != "bound" {
		t.Errorf("with its file broken the name is %s", s.State)
	}

	// Fixed, it is followed again.
	replaceFile(t, dir, "test", serviceLine(b.addr))
	waitRoute(t, p.addr, "b")
}
