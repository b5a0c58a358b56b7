// Package benchsummary is the JSON summary of one run, written by
// switchyard-bench and read by switchyard-benchplot: the contract between
// them. The bench writes it with encoding/json; the plotter decodes it
// strictly, rejecting unknown keys, so a field renamed here on one side
// only fails loudly instead of silently dropping a figure.
package benchsummary

// Summary is the whole file.
type Summary struct {
	Commit   string   `json:"commit"`
	Date     string   `json:"date"` // RFC 3339, UTC
	Host     Host     `json:"host"`
	Settings Settings `json:"settings"`
	Targets  []string `json:"targets"`
	Notes    []string `json:"notes"`
	Figures  []Figure `json:"figures"`
}

// Host is the machine the run measured on.
type Host struct {
	CPUs   int    `json:"cpus"`
	Kernel string `json:"kernel"`
	Go     string `json:"go"`
}

// Settings are the load the run applied.
type Settings struct {
	Runs                int `json:"runs"`
	IperfSecs           int `json:"iperf_secs"`
	ConnrateSecs        int `json:"connrate_secs"`
	ConnrateConcurrency int `json:"connrate_concurrency"`
	RTTN                int `json:"rtt_n"`
	RTTSize             int `json:"rtt_size"`
	IdleN               int `json:"idle_n"`
}

// Figure is one measured quantity of one target over the rounds: the
// values of the rounds that produced one, in round order, and their spread.
type Figure struct {
	Target string    `json:"target"`
	Figure string    `json:"figure"`
	Unit   string    `json:"unit"`
	Better string    `json:"better"` // BetterHigher or BetterLower
	Values []float64 `json:"values"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

// Which way a figure improves.
const (
	BetterHigher = "higher"
	BetterLower  = "lower"
)

// Lookup returns the figure named name of target, if the run measured it.
func (s *Summary) Lookup(target, name string) (Figure, bool) {
	for _, f := range s.Figures {
		if f.Target == target && f.Figure == name {
			return f, true
		}
	}
	return Figure{}, false
}
