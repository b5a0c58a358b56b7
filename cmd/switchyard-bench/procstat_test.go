package main

import (
	"os"
	"testing"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    uint64
		wantErr bool
	}{
		{
			name: "plain",
			stat: "4242 (switchyard) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 3 0 100 0 0\n",
			want: 325,
		},
		{
			name: "comm with spaces and parens",
			stat: "77 (a) b (c) ) R 1 77 77 0 -1 0 0 0 0 0 1000 2000 5 6 20 0 1 0 1 0 0",
			want: 3000,
		},
		{
			name: "comm that looks like fields",
			stat: "9 (1 2 3 4 5 6 7 8 9 10 11 12 13 14 15) S 1 9 9 0 -1 0 0 0 0 0 7 8 0 0",
			want: 15,
		},
		{name: "no parens", stat: "1 init S 1 1 1 0 -1 0 0 0 0 0 1 2", wantErr: true},
		{name: "truncated", stat: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 1", wantErr: true},
		{name: "not a number", stat: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 -2", wantErr: true},
		{name: "empty", stat: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU(tt.stat)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseStatCPU = %d, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseStatCPU = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

func TestCPUTicksSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	if _, err := cpuTicks(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseStatCPU(f *testing.F) {
	f.Add("77 (a) b (c) ) R 1 77 77 0 -1 0 0 0 0 0 1000 2000 5 6 20 0 1 0 1 0 0")
	f.Add("1 (x")
	f.Fuzz(func(t *testing.T, stat string) {
		parseStatCPU(stat)
	})
}
