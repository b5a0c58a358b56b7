package router

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/hashicorp/go-multierror"
)

// A ConfigError is one problem in a configuration: the key it concerns, as
// a TOML path with array indexes (routers[0].servers[1].listen), and the
// line of that key, or of the nearest enclosing table when the key is
// missing.
type ConfigError struct {
	File string // set by Load
	Line int    // 0 when unknown
	Path string // empty when the problem has no key; unindexed for a syntax error
	Err  error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	case e.File != "":
		fmt.Fprintf(&b, "%s: ", e.File)
	case e.Line > 0:
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// problems collects the problems of one configuration, at most one per
// path: the first one found is the one that explains the others.
type problems struct {
	file  string
	lines map[string]int // path → line, from keyLines
	list  []*ConfigError
	seen  map[string]bool // paths in list
}

func (p *problems) add(path string, format string, args ...any) {
	p.addErr(path, fmt.Errorf(format, args...))
}

func (p *problems) addErr(path string, err error) {
	if p.seen[path] {
		return
	}
	p.seen[path] = true
	p.list = append(p.list, &ConfigError{File: p.file, Line: p.lineOf(path), Path: path, Err: err})
}

// lineOf returns the line of path, or of its nearest ancestor that is in
// the file.
func (p *problems) lineOf(path string) int {
	for ; path != ""; path = parentPath(path) {
		if line, ok := p.lines[path]; ok {
			return line
		}
	}
	return 0
}

// syntax records a TOML syntax error, which carries its own line and the
// last key read (without array indexes).
func (p *problems) syntax(err error) {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		p.list = append(p.list, &ConfigError{File: p.file, Err: err})
		return
	}
	p.list = append(p.list, &ConfigError{
		File: p.file,
		Line: pe.Position.Line,
		Path: pe.LastKey,
		Err:  errors.New(pe.Message),
	})
}

func (p *problems) err() error {
	if len(p.list) == 0 {
		return nil
	}
	slices.SortStableFunc(p.list, func(a, b *ConfigError) int { return cmp.Compare(a.Line, b.Line) })
	errs := make([]error, len(p.list))
	for i, e := range p.list {
		errs[i] = e
	}
	return &multierror.Error{Errors: errs, ErrorFormat: listFormat}
}

// listFormat prints one problem as itself and several as a count followed
// by one indented line each.
func listFormat(errs []error) string {
	if len(errs) == 1 {
		return errs[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d problems in configuration:", len(errs))
	for _, err := range errs {
		b.WriteString("\n\t")
		b.WriteString(err.Error())
	}
	return b.String()
}

// quote quotes s for an error message, shortened if it is long.
func quote(s string) string {
	const max = 64
	if len(s) <= max {
		return strconv.Quote(s)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
