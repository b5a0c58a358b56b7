package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/switchyard-proxy/switchyard/bench/internal/benchsummary"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// gridFigures are the cells of summary.png, row by row: one per kind of
// measurement, chosen to fit a README. RTT is the one-CPU figure, the one
// to compare proxies on (unpinned RTT mostly measures CPU placement).
var gridFigures = [][]string{
	{"gbps_p1_fwd", "gbps_p4_rev", "cpu_s_per_gib_p1_fwd"},
	{"conn_per_s", "rtt1_p99_us", "idle_rss_b_per_conn"},
}

const (
	dpi          = 96
	figureWidth  = 7 * vg.Inch
	figureHeight = 4.5 * vg.Inch
	gridCell     = 4 * vg.Inch // width; a cell is 3 in high
	gridHeader   = 0.6 * vg.Inch
)

// palette is Okabe and Ito's, which stays apart for colour-blind readers;
// a target keeps its colour across every chart of a summary.
var palette = []color.Color{
	color.RGBA{0x00, 0x72, 0xb2, 0xff}, // blue
	color.RGBA{0xe6, 0x9f, 0x00, 0xff}, // orange
	color.RGBA{0x00, 0x9e, 0x73, 0xff}, // bluish green
	color.RGBA{0xcc, 0x79, 0xa7, 0xff}, // reddish purple
	color.RGBA{0x56, 0xb4, 0xe9, 0xff}, // sky blue
	color.RGBA{0xd5, 0x5e, 0x00, 0xff}, // vermillion
	color.RGBA{0xf0, 0xe4, 0x42, 0xff}, // yellow
	color.RGBA{0x99, 0x99, 0x99, 0xff}, // grey
}

func targetColor(s *benchsummary.Summary, target string) color.Color {
	return palette[slices.Index(s.Targets, target)%len(palette)]
}

// writeFigurePNGs writes <figure>.png into dir for every figure of s and
// returns the paths written.
func writeFigurePNGs(s *benchsummary.Summary, dir string) ([]string, error) {
	var paths []string
	for _, name := range figureNames(s) {
		p, err := figurePlot(s, name, vg.Points(56))
		if err != nil {
			return paths, err
		}
		path := filepath.Join(dir, name+".png")
		if err := p.Save(figureWidth, figureHeight, path); err != nil {
			return paths, fmt.Errorf("write %s: %w", path, err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}

// figurePlot draws one bar per target that measured name: the bar is the
// median, the whisker spans min to max and the label gives the median.
func figurePlot(s *benchsummary.Summary, name string, barWidth vg.Length) (*plot.Plot, error) {
	p := plot.New()
	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	p.Add(grid)
	var targets []string
	var spreads errorBars
	var labels plotter.XYLabels
	for _, target := range measuredTargets(s) {
		f, ok := s.Lookup(target, name)
		if !ok {
			continue
		}
		x := float64(len(targets))
		targets = append(targets, target)
		p.Title.Text = fmt.Sprintf("%s (%s is better)", name, f.Better)
		p.Y.Label.Text = f.Unit

		bar, err := plotter.NewBarChart(plotter.Values{f.Median}, barWidth)
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", name, target, err)
		}
		bar.XMin = x
		bar.Color = targetColor(s, target)
		bar.LineStyle.Width = 0
		p.Add(bar)

		spreads.XYs = append(spreads.XYs, plotter.XY{X: x, Y: f.Median})
		spreads.YErrors = append(spreads.YErrors, struct{ Low, High float64 }{f.Median - f.Min, f.Max - f.Median})
		labels.XYs = append(labels.XYs, plotter.XY{X: x, Y: f.Max})
		labels.Labels = append(labels.Labels, formatValue(f.Median))
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("%s: no target measured it", name)
	}
	whiskers, err := plotter.NewYErrorBars(spreads)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	whiskers.LineStyle.Width = vg.Points(1.5)
	whiskers.CapWidth = vg.Points(14)
	values, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	for i := range values.TextStyle {
		values.TextStyle[i].XAlign = draw.XCenter
		values.TextStyle[i].YAlign = draw.YBottom
	}
	values.Offset = vg.Point{Y: vg.Points(3)}
	p.Add(whiskers, values)

	p.NominalX(targets...)
	// Half a slot either side keeps the outer bars off the axes.
	p.X.Min, p.X.Max = -0.5, float64(len(targets))-0.5
	p.Y.Padding = 0
	p.X.Tick.Label.Font.Size = vg.Points(11)
	p.Y.Tick.Marker = tickLabels{}
	return p, nil
}

// errorBars are the whiskers of the bars, relative to the medians.
type errorBars struct {
	plotter.XYs
	plotter.YErrors
}

// tickLabels labels the major ticks with as few decimals as tell them apart
// and large values with SI prefixes (40k rather than 40000.00), which keeps
// the y axis narrow in the grid.
type tickLabels struct{}

func (tickLabels) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	scale, prefix := siPrefix(math.Max(math.Abs(min), math.Abs(max)))
	var major []float64
	for _, t := range ticks {
		if t.Label != "" {
			major = append(major, t.Value/scale)
		}
	}
	d := tickDecimals(major)
	for i, t := range ticks {
		switch {
		case t.Label == "":
		case math.Abs(t.Value/scale) < math.Pow10(-d)/2:
			ticks[i].Label = "0"
		default:
			ticks[i].Label = formatFixed(t.Value/scale, d) + prefix
		}
	}
	return ticks
}

// siPrefix picks the largest prefix under magnitude, but leaves four-digit
// numbers alone: 5000 reads better than 5k next to 2500.
func siPrefix(magnitude float64) (scale float64, prefix string) {
	switch {
	case magnitude >= 1e12:
		return 1e12, "T"
	case magnitude >= 1e9:
		return 1e9, "G"
	case magnitude >= 1e6:
		return 1e6, "M"
	case magnitude >= 1e4:
		return 1e3, "k"
	}
	return 1, ""
}

// tickDecimals is the fewest decimals that print every value exactly, up
// to float noise such as 0.30000000000000004.
func tickDecimals(values []float64) int {
	for d := 0; d < 10; d++ {
		exact := true
		for _, v := range values {
			p := math.Pow10(d)
			if math.Abs(math.Round(v*p)-v*p) > 1e-6 {
				exact = false
				break
			}
		}
		if exact {
			return d
		}
	}
	return 10
}

// writeSummaryPNG draws the grid of gridFigures into path, under a header
// naming the commit and host; a figure the summary lacks leaves its cell
// saying so.
func writeSummaryPNG(s *benchsummary.Summary, path string) error {
	rows, cols := len(gridFigures), len(gridFigures[0])
	plots := make([][]*plot.Plot, rows)
	for r, names := range gridFigures {
		plots[r] = make([]*plot.Plot, cols)
		for c, name := range names {
			p, err := gridCellPlot(s, name)
			if err != nil {
				return err
			}
			plots[r][c] = p
		}
	}
	w, h := gridCell*vg.Length(cols), 3*vg.Inch*vg.Length(rows)+gridHeader
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))
	dc := draw.New(img)
	drawHeader(dc, s)
	tiles := draw.Tiles{
		Rows: rows, Cols: cols,
		PadX: vg.Points(14), PadY: vg.Points(14),
		PadTop: gridHeader, PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(10),
	}
	canvases := plot.Align(plots, tiles, dc)
	for r := range plots {
		for c, p := range plots[r] {
			p.Draw(canvases[r][c])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func gridCellPlot(s *benchsummary.Summary, name string) (*plot.Plot, error) {
	if !hasFigure(s, name) {
		p := plot.New()
		p.Title.Text = name + ": not measured"
		p.HideAxes()
		return p, nil
	}
	p, err := figurePlot(s, name, vg.Points(36))
	if err != nil {
		return nil, err
	}
	p.Title.TextStyle.Font.Size = vg.Points(11)
	p.X.Tick.Label.Font.Size = vg.Points(9)
	p.Y.Tick.Label.Font.Size = vg.Points(9)
	p.Y.Label.TextStyle.Font.Size = vg.Points(10)
	return p, nil
}

func drawHeader(dc draw.Canvas, s *benchsummary.Summary) {
	title := "Switchyard bench"
	if s.Commit != "" {
		title += " " + s.Commit
	}
	if s.Date != "" {
		title += ", " + s.Date
	}
	sub := fmt.Sprintf("bar: median of %d run(s); whisker: min–max", s.Settings.Runs)
	if h := s.Host; h.CPUs > 0 || h.Kernel != "" || h.Go != "" {
		sub = fmt.Sprintf("%d CPU(s), Linux %s, %s; %s", h.CPUs, h.Kernel, h.Go, sub)
	}
	style := func(size vg.Length) text.Style {
		return text.Style{
			Color:   color.Black,
			Font:    font.From(plot.DefaultFont, size),
			XAlign:  draw.XCenter,
			YAlign:  draw.YTop,
			Handler: plot.DefaultTextHandler,
		}
	}
	x := (dc.Min.X + dc.Max.X) / 2
	dc.FillText(style(13), vg.Point{X: x, Y: dc.Max.Y - vg.Points(6)}, title)
	dc.FillText(style(10), vg.Point{X: x, Y: dc.Max.Y - vg.Points(24)}, sub)
}
