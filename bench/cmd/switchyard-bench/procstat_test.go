package main

import "testing"

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    procStat
		wantErr bool
	}{
		{
			name: "plain",
			stat: "4242 (switchyard) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 3 0 100 0 0\n",
			want: procStat{ppid: 1, cpuTicks: 325},
		},
		{
			name: "comm with spaces and parens",
			stat: "77 (a) b (c) ) R 12 77 77 0 -1 0 0 0 0 0 1000 2000 5 6 20 0 1 0 1 0 0",
			want: procStat{ppid: 12, cpuTicks: 3000},
		},
		{
			name: "comm that looks like fields",
			stat: "9 (1 2 3 4 5 6 7 8 9 10 11 12 13 14 15) S 3 9 9 0 -1 0 0 0 0 0 7 8 0 0",
			want: procStat{ppid: 3, cpuTicks: 15},
		},
		{name: "no parens", stat: "1 init S 1 1 1 0 -1 0 0 0 0 0 1 2", wantErr: true},
		{name: "truncated", stat: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 1", wantErr: true},
		{name: "not a number", stat: "1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 -2", wantErr: true},
		{name: "bad ppid", stat: "1 (x) S p 1 1 0 -1 0 0 0 0 0 1 2", wantErr: true},
		{name: "empty", stat: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStat(tt.stat)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseStat = %+v, want an error", got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseStat = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr bool
	}{
		{"running", "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t3\n", 1234 << 10, false},
		{"zombie: no VmRSS", "Name:\tx\nState:\tZ (zombie)\n", 0, false},
		{"odd unit", "VmRSS:\t1 MB\n", 0, true},
		{"not a number", "VmRSS:\tlots kB\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseVmRSS(tt.status)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("parseVmRSS = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add("77 (a) b (c) ) R 1 77 77 0 -1 0 0 0 0 0 1000 2000 5 6 20 0 1 0 1 0 0")
	f.Add("1 (x")
	f.Fuzz(func(t *testing.T, stat string) {
		parseStat(stat)
	})
}
