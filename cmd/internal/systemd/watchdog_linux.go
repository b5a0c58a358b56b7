package systemd

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
)

// WatchdogInterval reports how often to call Notifier.Watchdog: half of
// WATCHDOG_USEC, the time after which systemd kills a service that has not
// pinged (WatchdogSec= in the unit). It reads WATCHDOG_USEC and
// WATCHDOG_PID and removes both from the environment, so it answers once
// per process: call it at start.
//
// ok is false with a nil error when the watchdog is off: WATCHDOG_USEC
// unset or empty, or WATCHDOG_PID set to another process's pid (the
// variables were meant for a parent). A malformed value, or a timeout of
// zero, is an error with ok false. It is reported rather than taken for
// "off" because systemd would still kill the service for want of pings,
// and the operator should be able to read why none were sent.
func WatchdogInterval() (interval time.Duration, ok bool, err error) {
	usec, _ := takeEnv("WATCHDOG_USEC")
	pid, _ := takeEnv("WATCHDOG_PID")
	return watchdogInterval(usec, pid, os.Getpid())
}

func watchdogInterval(usec, pid string, self int) (time.Duration, bool, error) {
	if usec == "" {
		return 0, false, nil
	}
	timeout, err := parseUsec(usec)
	if err != nil {
		return 0, false, fmt.Errorf("systemd: WATCHDOG_USEC=%q: %w", usec, err)
	}
	if pid != "" {
		p, err := parsePid(pid)
		if err != nil {
			return 0, false, fmt.Errorf("systemd: WATCHDOG_PID=%q: %w", pid, err)
		}
		if p != self {
			return 0, false, nil
		}
	}
	return timeout / 2, true, nil
}

// parseUsec parses a positive decimal count of microseconds that fits a
// time.Duration.
func parseUsec(s string) (time.Duration, error) {
	u, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, numError(err)
	}
	if u == 0 {
		return 0, errors.New("zero")
	}
	if u > math.MaxInt64/uint64(time.Microsecond) {
		return 0, strconv.ErrRange
	}
	return time.Duration(u) * time.Microsecond, nil
}

// parsePid parses a positive decimal process id.
func parsePid(s string) (int, error) {
	p, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, numError(err)
	}
	if p <= 0 {
		return 0, errors.New("not a process id")
	}
	return int(p), nil
}

// numError drops strconv's "strconv.ParseUint: parsing "x": " prefix: the
// caller already names the variable and its value.
func numError(err error) error {
	if ne, ok := err.(*strconv.NumError); ok {
		return ne.Err
	}
	return err
}
