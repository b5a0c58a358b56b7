package router

import (
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func goVersion() string { return runtime.Version() }

// sample returns the value of one series, written as Prometheus shows it
// (name{label="value",...}, labels in any order); the test fails if it is
// not there.
func sample(t *testing.T, reg *prometheus.Registry, series string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	name, want, _ := strings.Cut(strings.TrimSuffix(series, "}"), "{")
	suffix := ""
	for _, s := range []string{"_count", "_sum"} {
		if base, ok := strings.CutSuffix(name, s); ok {
			name, suffix = base, s
		}
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if labelString(m) != sortedLabels(want) {
				continue
			}
			switch {
			case suffix == "_count":
				return float64(m.GetHistogram().GetSampleCount())
			case suffix == "_sum":
				return m.GetHistogram().GetSampleSum()
			case m.Counter != nil:
				return m.GetCounter().GetValue()
			case m.Gauge != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s", series)
	return 0
}

func labelString(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func sortedLabels(s string) string {
	if s == "" {
		return ""
	}
	parts := strings.Split(s, ",")
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
