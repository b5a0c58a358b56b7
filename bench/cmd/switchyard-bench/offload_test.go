package main

import (
	"io"
	"strings"
	"testing"

	"github.com/switchyard-proxy/switchyard/router"
)

func TestParseFlagsOffload(t *testing.T) {
	o, err := parseFlags([]string{"-switchyard", "switchyard=bin/switchyard", "-switchyard", "sockmap=bin/switchyard",
		"-offload", "sockmap=sockmap"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.offloads["sockmap"] != "sockmap" || o.offloads["switchyard"] != "" {
		t.Errorf("offloads = %v, want sockmap for the build sockmap only", o.offloads)
	}
	// Each bad value beside a build it could name, so that only the value
	// is wrong.
	for _, v := range []string{"nosuch=sockmap", "sockmap", "sockmap=", "sockmap=sockmap:", "sockmap=sockmap:x",
		"sockmap=sockmap:08", "sockmap=sockmap:10001", "sockmap=ebpf", "sockmap=:8"} {
		args := []string{"-switchyard", "sockmap=bin/switchyard", "-offload", v}
		if _, err := parseFlags(args, noEnv, io.Discard); err == nil {
			t.Errorf("parseFlags(%q): no error", args)
		}
	}
	twice := []string{"-switchyard", "sockmap=bin/switchyard", "-offload", "sockmap=sockmap", "-offload", "sockmap=sockmap:0"}
	if _, err := parseFlags(twice, noEnv, io.Discard); err == nil {
		t.Errorf("parseFlags(%q): no error", twice)
	}
	if _, err := parseFlags([]string{"-switchyard", "sockmap=bin/switchyard", "-offload", "sockmap=sockmap:10000"}, noEnv, io.Discard); err != nil {
		t.Errorf("the largest AFTER refused: %v", err)
	}
}

func FuzzOffloadFlag(f *testing.F) {
	for _, v := range []string{"sockmap=sockmap", "sockmap=sockmap:0", "a=sockmap:10000", "x=y:z"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var l offloadList
		if l.Set(v) != nil {
			return
		}
		// What Set takes, the router takes: the key and its value.
		if len(l) != 1 {
			t.Fatalf("%q: %d entries", v, len(l))
		}
		text := routerConfigOffload(testRoutes, 1, 0, l[0][1])
		if _, err := router.Parse([]byte(noAdmin + text)); err != nil {
			t.Fatalf("%q taken, but the router refuses it: %v", v, err)
		}
	})
}

// Every server of the configuration gets the key, and the router takes it.
func TestRouterConfigOffload(t *testing.T) {
	r := testRoutes
	r.sniListen, r.proxyListen = "127.0.0.1:7476", "127.0.0.1:7477"
	text := routerConfigOffload(r, 1, 0, "sockmap")
	if n := strings.Count(text, `offload = "sockmap"`); n != 4 {
		t.Errorf("offload on %d servers, want 4:\n%s", n, text)
	}
	cfg, err := router.Parse([]byte(noAdmin + text))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range cfg.Routers[0].Servers {
		if s.Offload != router.OffloadSockmap {
			t.Errorf("server %d: offload %q", i, s.Offload)
		}
	}
	cfg, err = router.Parse([]byte(noAdmin + routerConfigOffload(r, 1, 0, "sockmap:0")))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range cfg.Routers[0].Servers {
		if s.Offload != router.OffloadSockmap || s.OffloadAfter != 0 {
			t.Errorf("server %d: offload %q after %d, want sockmap after 0", i, s.Offload, s.OffloadAfter)
		}
	}
	if strings.Contains(routerConfig(testRoutes, 1, 0), "offload") {
		t.Errorf("routerConfig without an offload has the key")
	}
}
