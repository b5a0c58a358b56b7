package router

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const startChildEnv = "SWITCHYARD_START_CHILD"

// When NewLoop fails part-way (EMFILE), Start must stop the loops it has
// started and return the error, not wait on loops that never ran. Run in a
// child process with RLIMIT_NOFILE just above what the process holds, so
// that the first loop fits and a later one does not.
func TestStartFailsCleanlyWhenALoopCannotBeCreated(t *testing.T) {
	if os.Getenv(startChildEnv) == "1" {
		startChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestStartFailsCleanlyWhenALoopCannotBeCreated$", "-test.v")
	cmd.Env = append(os.Environ(), startChildEnv+"=1")
	out, _ := cmd.CombinedOutput()
	switch s := string(out); {
	case strings.Contains(s, "CHILD: HANG"):
		t.Fatalf("Start did not return after NewLoop failed (child output:\n%s)", s)
	case strings.Contains(s, "CHILD: RETURNED") && strings.Contains(s, "too many open files"):
		// Start stopped what it had started and returned EMFILE.
	default:
		t.Fatalf("child run did not reach the failing NewLoop as set up:\n%s", s)
	}
}

func startChild() {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		fmt.Println("CHILD: open", err)
		return
	}
	names, err := dir.Readdirnames(-1)
	self := int(dir.Fd())
	dir.Close()
	if err != nil {
		fmt.Println("CHILD: readdir", err)
		return
	}
	open := map[int]bool{}
	for _, name := range names {
		if n, err := strconv.Atoi(name); err == nil && n != self {
			open[n] = true
		}
	}
	// The lowest limit that leaves exactly two free descriptors: room
	// for one loop (an epoll fd and an eventfd), not for a second.
	lim, free := uint64(0), 0
	for free < 2 {
		if !open[int(lim)] {
			free++
		}
		lim++
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: lim, Max: lim}); err != nil {
		fmt.Println("CHILD: setrlimit", err)
		return
	}
	timer := time.AfterFunc(5*time.Second, func() {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "router.(*Proxy).Stop") {
				fmt.Printf("CHILD: blocked in:\n%s\n", g)
			}
		}
		fmt.Println("CHILD: HANG")
		os.Exit(3)
	})
	cfg := testConfig("127.0.0.1:1")
	cfg.Runtime.Workers = 4
	p, err := Start(cfg, discardLogger())
	timer.Stop()
	if err == nil {
		_ = p.Stop()
		fmt.Println("CHILD: no error (limit too high)")
		return
	}
	fmt.Println("CHILD: RETURNED", err)
}

// Start leaves the process's GOMAXPROCS alone, and two proxies in one
// process, with more loops between them than there are Ps, both forward: a
// loop waiting for events holds no P (see netpoll.Loop.wait).
func TestProxiesLeaveGOMAXPROCSAlone(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	b := startBackend(t, echo)
	var addrs []string
	for i := 0; i < 2; i++ {
		cfg := testConfig(b.addr)
		cfg.Runtime.Workers = 3
		addrs = append(addrs, startProxy(t, cfg).addr)
		if n := runtime.GOMAXPROCS(0); n != 1 {
			t.Fatalf("GOMAXPROCS is %d after Start, want 1 as set", n)
		}
	}
	for i := 0; i < 20; i++ {
		c := dial(t, addrs[i%2])
		msg := []byte(fmt.Sprintf("hello %d", i))
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || string(got) != string(msg) {
			t.Fatalf("echo %d through proxy %d: %q, %v", i, i%2, got, err)
		}
		c.Close()
	}
}
