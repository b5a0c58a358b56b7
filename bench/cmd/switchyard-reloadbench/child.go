package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

type child struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it has been waited for
	log  *os.File
}

// startChild starts argv in its own process group (so that its workers
// can be found and, as a last resort, killed by group id), stdout and
// stderr to logPath.
func startChild(argv []string, dir, logPath string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	c := &child{cmd: cmd, done: make(chan struct{}), log: f}
	go func() {
		_ = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) signal(sig syscall.Signal) error {
	if c.exited() {
		return errors.New("process has exited")
	}
	return c.cmd.Process.Signal(sig)
}

// stop sends sig and waits up to timeout; then SIGKILLs the process group.
// It also kills whatever is left in the group after the leader exits
// (a worker that outlived its master). It reports what was unusual.
func (c *child) stop(sig syscall.Signal, timeout time.Duration, clean func(*os.ProcessState) bool) []string {
	var notes []string
	pgid := c.cmd.Process.Pid
	if !c.exited() {
		_ = c.cmd.Process.Signal(sig)
		select {
		case <-c.done:
		case <-time.After(timeout):
			notes = append(notes, fmt.Sprintf("did not exit within %v of %v: killed", timeout, sig))
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-c.done
		}
	}
	if ps := c.cmd.ProcessState; len(notes) == 0 && !clean(ps) {
		notes = append(notes, fmt.Sprintf("exit after %v: %v", sig, ps))
	}
	// Anything still in its process group?
	if syscall.Kill(-pgid, 0) == nil {
		time.Sleep(500 * time.Millisecond)
		if syscall.Kill(-pgid, 0) == nil {
			notes = append(notes, "processes left in its group after it exited: killed")
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}
	c.log.Close()
	return notes
}

// ---------------------------------------------------------------- clients
