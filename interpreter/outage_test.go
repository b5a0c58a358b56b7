package interpreter

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestOutageLogsOncePerRun(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var o Outage
	o.Answered(log, "kind", Resolution{State: Bound}) // not failing: nothing
	o.Failed(log, "kind", errors.New("one"))
	o.Failed(log, "kind", errors.New("two"))
	o.Answered(log, "kind", Resolution{State: Bound, Endpoints: make([]Endpoint, 2)})
	o.Failed(log, "kind", errors.New("three"))
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		level := line[strings.Index(line, "level=")+6:]
		got = append(got, level[:strings.IndexByte(level, ' ')])
	}
	want := []string{"WARN", "DEBUG", "INFO", "WARN"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("levels %v, want %v:\n%s", got, want, buf.String())
	}
	if !strings.Contains(buf.String(), `msg="kind: name resolves again" state=bound endpoints=2`) {
		t.Errorf("recovery line missing:\n%s", buf.String())
	}
}
