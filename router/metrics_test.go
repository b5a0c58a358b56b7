package router

import (
	"io"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchyard-proxy/switchyard/server"
)

// The metrics say what the traffic was: connections, reasons, bytes, the
// histograms' counts, the names and their endpoints.
func TestMetricsMatchTheTraffic(t *testing.T) {
	b := startBackend(t, echo)
	p := startProxy(t, testConfig(b.addr))
	reg := prometheus.NewRegistry()
	reg.MustRegister(p.Collector("test"))
	const streams, size = 3, 1000
	payload := strings.Repeat("x", size)
	for range streams {
		c := dial(t, p.addr)
		if _, err := io.WriteString(c, payload); err != nil {
			t.Fatal(err)
		}
		_ = c.CloseWrite()
		if got, err := io.ReadAll(c); err != nil || len(got) != size {
			t.Fatalf("echo: %d bytes, %v", len(got), err)
		}
	}
	waitEnded(t, p.srv, server.ReasonEOF, streams)
	open := dial(t, p.addr) // one open while scraped
	if _, err := io.WriteString(open, "y"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(open, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}

	labels := `router="test",server="` + p.addr + `",dst="` + testDst + `"`
	sorted := `dst="` + testDst + `",router="test",server="` + p.addr + `"` // as the text format writes them
	want := `
# HELP switchyard_connections_accepted_total Connections accepted by a server.
# TYPE switchyard_connections_accepted_total counter
switchyard_connections_accepted_total{` + sorted + `} 4
# HELP switchyard_connections_open Connections accepted by a server and not yet closed.
# TYPE switchyard_connections_open gauge
switchyard_connections_open{` + sorted + `} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"switchyard_connections_accepted_total", "switchyard_connections_open"); err != nil {
		t.Error(err)
	}
	for _, c := range []struct {
		name  string
		value float64
	}{
		{"switchyard_connections_closed_total{" + labels + `,reason="eof"}`, streams},
		{"switchyard_connections_closed_total{" + labels + `,reason="reset"}`, 0},
		{"switchyard_bytes_total{" + labels + `,direction="up"}`, streams * size},
		{"switchyard_bytes_total{" + labels + `,direction="down"}`, streams * size},
		{"switchyard_connect_duration_seconds_count{" + labels + "}", streams + 1},
		{"switchyard_connect_attempts_total{" + labels + "}", streams + 1},
		{"switchyard_stream_duration_seconds_count{" + labels + "}", streams},
		{`switchyard_names{router="test",state="bound"}`, 1},
		{`switchyard_endpoints{router="test",dst="` + testDst + `",state="available"}`, 1},
		{`switchyard_build_info{version="test",goversion="` + goVersion() + `"}`, 1},
	} {
		if got := sample(t, reg, c.name); got != c.value {
			t.Errorf("%s = %v, want %v", c.name, got, c.value)
		}
	}
	if got := sample(t, reg, `switchyard_pipes{state="pooled"}`) + sample(t, reg, `switchyard_pipes{state="in_use"}`); got < 0 {
		t.Errorf("pipes %v", got)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n == 0 {
		t.Errorf("gather: %d metrics, %v", n, err)
	}
}
