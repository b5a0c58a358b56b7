package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

const stopGrace = 5 * time.Second

// child is a long-running helper process (a backend server, a proxy) in
// its own process group, with its output in a log file.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	// anyExitOnStop: any exit after SIGTERM is a clean stop (iperf3 -s
	// exits with status 1 on SIGTERM); otherwise only status 0 or death by
	// SIGTERM is.
	anyExitOnStop bool
	done          chan struct{} // closed once the process has been reaped
	err           error         // cmd.Wait's result; read only after done
}

func startChild(name, logPath string, argv ...string) (*child, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go c.reap(log)
	return c, nil
}

// childProcAttr puts a child in its own process group, so a terminal's
// Ctrl-C reaches only the bench, which then stops the group itself, and
// asks the kernel to end it if the bench dies without cleaning up.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func (c *child) reap(log *os.File) {
	c.err = c.cmd.Wait()
	log.Close()
	close(c.done)
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// waitErr is how the process ended; call it only once exited is true.
func (c *child) waitErr() error {
	if c.err == nil {
		return fmt.Errorf("%s exited with status 0", c.name)
	}
	return fmt.Errorf("%s: %w", c.name, c.err)
}

// drainNudge is when stop sends its second SIGTERM: a proxy that drains
// open connections on the first (Switchyard does) stops at the second.
const drainNudge = 500 * time.Millisecond

// stop sends SIGTERM to the child's process group, again after drainNudge,
// then SIGKILL if it has not exited within stopGrace. Exiting on SIGTERM is
// not an error.
func (c *child) stop() error {
	if c.exited() {
		return c.unexpectedExit()
	}
	pgid := -c.pid()
	syscall.Kill(pgid, syscall.SIGTERM)
	nudge := time.NewTimer(drainNudge)
	defer nudge.Stop()
	grace := time.NewTimer(stopGrace)
	defer grace.Stop()
wait:
	for {
		select {
		case <-c.done:
			if c.anyExitOnStop {
				return nil
			}
			return c.unexpectedExit()
		case <-nudge.C:
			syscall.Kill(pgid, syscall.SIGTERM)
		case <-grace.C:
			break wait
		}
	}
	syscall.Kill(pgid, syscall.SIGKILL)
	<-c.done
	return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", c.name, stopGrace)
}

// unexpectedExit is nil if the child ended with status 0 or by SIGTERM,
// else how it ended.
func (c *child) unexpectedExit() error {
	if c.err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(c.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return nil
		}
	}
	return fmt.Errorf("%s: %w", c.name, c.err)
}

// logTail is the end of the child's output, for error messages.
func (c *child) logTail() string {
	const max = 2000
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return fmt.Sprintf("(%s log unreadable: %v)", c.name, err)
	}
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		s = "..." + s[len(s)-max:]
	}
	return fmt.Sprintf("--- %s log ---\n%s", c.name, s)
}

// freePorts returns n distinct loopback ports that were free a moment ago.
// All n listeners are open at once so the kernel cannot hand out one twice.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
