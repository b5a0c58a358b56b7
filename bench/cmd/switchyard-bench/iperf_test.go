package main

import (
	"errors"
	"strings"
	"testing"
)

// Trimmed from iperf 3.12 -J output.
const iperfSample = `{
	"start": {"version": "iperf 3.12", "test_start": {"protocol": "TCP", "num_streams": 4}},
	"intervals": [],
	"end": {
		"streams": [],
		"sum_sent": {"start": 0, "end": 2.0, "seconds": 2.0, "bytes": 9876543210, "bits_per_second": 39506172840, "retransmits": 0, "sender": true},
		"sum_received": {"start": 0, "end": 2.000153, "seconds": 2.000153, "bytes": 9.876e+09, "bits_per_second": 39501221532.5, "sender": true},
		"cpu_utilization_percent": {"host_total": 97.5}
	}
}`

const iperfRefused = `{
	"start":	{"connected": [], "version": "iperf 3.12"},
	"intervals":	[],
	"end":	{},
	"error":	"unable to connect to server: Connection refused"
}`

const iperfBusy = `{"start": {}, "intervals": [], "end": {}, "error": "the server is busy running a test. try again later"}`

const iperfMidTest = `{"start": {"connected": [{"socket": 5}]}, "intervals": [{"sum": {"bytes": 123}}], "end": {},
	"error": "control socket has closed unexpectedly"}`

func TestParseIperf(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    iperfSum
		wantErr string
		setup   bool // failed before measuring, so worth a retry
	}{
		{name: "sample", out: iperfSample, want: iperfSum{bitsPerSecond: 39501221532.5, bytes: 9.876e9}},
		{name: "integer bytes", out: `{"end":{"sum_received":{"bytes":1073741824,"bits_per_second":8e9}}}`,
			want: iperfSum{bitsPerSecond: 8e9, bytes: 1 << 30}},
		{name: "refused", out: iperfRefused, wantErr: "iperf3: unable to connect to server: Connection refused", setup: true},
		{name: "server busy", out: iperfBusy, wantErr: "busy running a test", setup: true},
		{name: "reset mid-test", out: iperfMidTest, wantErr: "iperf3: control socket has closed unexpectedly"},
		{name: "no sum_received", out: `{"end":{}}`, wantErr: "no end.sum_received"},
		{name: "not JSON", out: "iperf3: error - unable to connect", wantErr: "not JSON"},
		{name: "empty", out: "", wantErr: "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIperf([]byte(tt.out))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseIperf error = %v, want one containing %q", err, tt.wantErr)
				}
				var setup *iperfSetupError
				if errors.As(err, &setup) != tt.setup {
					t.Fatalf("%v: setup error = %v, want %v", err, !tt.setup, tt.setup)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseIperf = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseIperf(f *testing.F) {
	f.Add([]byte(iperfSample))
	f.Add([]byte(iperfRefused))
	f.Fuzz(func(t *testing.T, out []byte) {
		parseIperf(out)
	})
}
