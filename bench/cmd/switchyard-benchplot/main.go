// Command switchyard-benchplot turns the JSON summary that switchyard-bench
// writes for a run into charts and a comparison table.
//
//	switchyard-benchplot [-base NAME] [-head NAME] -out DIR SUMMARY.json
//
// It writes into DIR one bar chart per figure (<figure>.png: a bar per target
// at the median, a whisker from min to max), summary.png (a grid of the main
// figures, for a README) and compare.md, and prints the table to stdout. The
// table has a row per figure and a column per target; with two targets to
// compare it adds head/base and a verdict. Without -base and -head the two
// targets other than direct, haproxy and nginx are compared, in the order of
// the summary, when there are exactly two.
//
// Exit status: 0 done, 1 bad input or a failed write, 2 bad usage.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

const progName = "switchyard-benchplot"

type options struct {
	base, head string
	out        string
	summary    string
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		return 2
	}
	if err := render(opts, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", progName, err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet(progName, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s [-base NAME] [-head NAME] -out DIR SUMMARY.json\n", progName)
		fs.PrintDefaults()
	}
	var o options
	fs.StringVar(&o.base, "base", "", "target to compare against (`name` in the summary's targets)")
	fs.StringVar(&o.head, "head", "", "target compared with -base (`name` in the summary's targets)")
	fs.StringVar(&o.out, "out", "", "`directory` for the PNGs and compare.md; created if missing")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	var errs []error
	switch fs.NArg() {
	case 0:
		errs = append(errs, errors.New("missing SUMMARY.json argument"))
	case 1:
		o.summary = fs.Arg(0)
	default:
		errs = append(errs, fmt.Errorf("unexpected argument %q after %s", fs.Arg(1), fs.Arg(0)))
	}
	if o.out == "" {
		errs = append(errs, errors.New("-out: required"))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", progName, err)
		fs.Usage()
		return o, err
	}
	return o, nil
}

// render checks everything it was given before it writes anything.
func render(o options, stdout, stderr io.Writer) error {
	data, err := os.ReadFile(o.summary)
	if err != nil {
		return err
	}
	s, err := parseSummary(data)
	if err != nil {
		return fmt.Errorf("%s: %w", o.summary, err)
	}
	p, err := choosePair(s, o.base, o.head)
	if err != nil {
		return err
	}
	t := compareTable(s, p)

	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	charts, err := writeFigurePNGs(s, o.out)
	if err != nil {
		return err
	}
	if err := writeSummaryPNG(s, filepath.Join(o.out, "summary.png")); err != nil {
		return err
	}
	if err := writeReportFile(filepath.Join(o.out, "compare.md"), s, p, t); err != nil {
		return err
	}
	if err := t.writeMarkdown(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n%s\n", legend(p))
	fmt.Fprintf(stderr, "%s: wrote %d chart(s), summary.png and compare.md to %s\n", progName, len(charts), o.out)
	return nil
}
