package systemd

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

const unset = "\x00unset"

// setenv sets key for the test, or removes it when value is unset.
func setenv(t *testing.T, key, value string) {
	t.Helper()
	t.Setenv(key, "")
	if value == unset {
		os.Unsetenv(key)
		return
	}
	t.Setenv(key, value)
}

func TestWatchdogInterval(t *testing.T) {
	self := strconv.Itoa(os.Getpid())
	other := strconv.Itoa(os.Getpid() + 1)
	largest := strconv.FormatInt(math.MaxInt64/int64(time.Microsecond), 10)
	for _, c := range []struct {
		name      string
		usec, pid string
		want      time.Duration
		ok        bool
		err       string // substring; "" for no error
	}{
		{"unset", unset, unset, 0, false, ""},
		{"empty", "", unset, 0, false, ""},
		{"pid without timeout", unset, self, 0, false, ""},
		{"30 seconds", "30000000", unset, 15 * time.Second, true, ""},
		{"30 seconds for us", "30000000", self, 15 * time.Second, true, ""},
		{"for another process", "30000000", other, 0, false, ""},
		{"empty pid", "30000000", "", 15 * time.Second, true, ""},
		{"one microsecond", "1", unset, 500 * time.Nanosecond, true, ""},
		{"leading zeros", "0030000000", unset, 15 * time.Second, true, ""},
		{"largest", largest, unset, time.Duration(math.MaxInt64/int64(time.Microsecond)) * time.Microsecond / 2, true, ""},
		{"overflows a duration", largest + "0", unset, 0, false, `WATCHDOG_USEC="` + largest + `0": value out of range`},
		{"zero", "0", unset, 0, false, `WATCHDOG_USEC="0": zero`},
		{"negative", "-1", unset, 0, false, `WATCHDOG_USEC="-1": invalid syntax`},
		{"with a unit", "30s", unset, 0, false, `WATCHDOG_USEC="30s": invalid syntax`},
		{"with a space", " 30", unset, 0, false, `WATCHDOG_USEC=" 30": invalid syntax`},
		{"with a sign", "+30", unset, 0, false, `WATCHDOG_USEC="+30": invalid syntax`},
		{"pid not a number", "30000000", "abc", 0, false, `WATCHDOG_PID="abc": invalid syntax`},
		{"pid zero", "30000000", "0", 0, false, `WATCHDOG_PID="0": not a process id`},
		{"pid negative", "30000000", "-5", 0, false, `WATCHDOG_PID="-5": not a process id`},
	} {
		t.Run(c.name, func(t *testing.T) {
			setenv(t, "WATCHDOG_USEC", c.usec)
			setenv(t, "WATCHDOG_PID", c.pid)
			got, ok, err := WatchdogInterval()
			if got != c.want || ok != c.ok {
				t.Errorf("got (%v, %v), want (%v, %v)", got, ok, c.want, c.ok)
			}
			switch {
			case c.err == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("err = %v, want one containing %q", err, c.err)
			}
			for _, key := range []string{"WATCHDOG_USEC", "WATCHDOG_PID"} {
				if v, set := os.LookupEnv(key); set {
					t.Errorf("%s=%q still set", key, v)
				}
			}
		})
	}
}

func FuzzWatchdogInterval(f *testing.F) {
	for _, s := range [][2]string{
		{"", ""}, {"30000000", ""}, {"30000000", "1234"}, {"30000000", "1235"},
		{"0", ""}, {"-1", ""}, {"9223372036854775807", ""}, {"1", "x"},
	} {
		f.Add(s[0], s[1])
	}
	const self = 1234
	f.Fuzz(func(t *testing.T, usec, pid string) {
		got, ok, err := watchdogInterval(usec, pid, self)
		switch {
		case err != nil:
			if ok || got != 0 {
				t.Fatalf("error %v with (%v, %v)", err, got, ok)
			}
		case ok:
			u, perr := strconv.ParseUint(usec, 10, 64)
			if perr != nil || u == 0 || got != time.Duration(u)*time.Microsecond/2 || got <= 0 {
				t.Fatalf("(%q, %q) gave %v", usec, pid, got)
			}
		default:
			p, _ := strconv.Atoi(pid)
			if got != 0 || (usec != "" && p == self) {
				t.Fatalf("(%q, %q) gave (%v, off) without an error", usec, pid, got)
			}
		}
	})
}
