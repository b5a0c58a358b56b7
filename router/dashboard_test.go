package router

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// The Grafana dashboard in dist/ queries only metrics that exist: every
// switchyard_ name in its expressions is a family the collector describes
// (or a histogram's _bucket of one).
func TestDashboardQueriesExistingMetrics(t *testing.T) {
	data, err := os.ReadFile("../dist/grafana/switchyard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	known := map[string]bool{}
	ch := make(chan *prometheus.Desc, 64)
	go func() {
		(&Collector{}).Describe(ch)
		close(ch)
	}()
	name := regexp.MustCompile(`fqName: "([a-z_]+)"`)
	for d := range ch {
		if m := name.FindStringSubmatch(d.String()); m != nil {
			known[m[1]] = true
		}
	}
	uses := regexp.MustCompile(`switchyard_[a-z_]+`)
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range uses.FindAllString(tg.Expr, -1) {
				n++
				if !known[m] && !known[strings.TrimSuffix(m, "_bucket")] {
					t.Errorf("panel %q queries %s, which no collector describes", p.Title, m)
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("the dashboard queries no switchyard metric")
	}
}
