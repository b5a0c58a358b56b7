package router

import (
	"sort"
	"strconv"
	"strings"
)

// keyLines maps the path of every key, table and array element in a TOML
// document to the line it starts on. BurntSushi/toml keeps positions only
// by unindexed key, so in an array of tables it would point every element's
// key at the last element's line; this scan counts the elements instead.
//
// src must be valid TOML (it has already been parsed); on anything else the
// scan still ends, with some lines missing or wrong.
func keyLines(src string) map[string]int {
	s := &scanner{src: src, lines: make(map[string]int), arrays: make(map[string]int)}
	for i := 0; i < len(src); i++ {
		if src[i] == '\n' {
			s.newlines = append(s.newlines, i)
		}
	}
	s.pos = len(src) - len(strings.TrimPrefix(src, "\ufeff"))
	s.run()
	return s.lines
}

type scanner struct {
	src      string
	pos      int
	newlines []int // offsets of '\n'
	lines    map[string]int
	arrays   map[string]int // array of tables → index of its last element
	table    string         // path of the current [table]
}

func (s *scanner) eof() bool { return s.pos >= len(s.src) }

func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.src[s.pos]
}

func (s *scanner) mark(path string, at int) {
	if _, ok := s.lines[path]; !ok {
		s.lines[path] = sort.SearchInts(s.newlines, at) + 1
	}
}

func (s *scanner) run() {
	for {
		s.skipBlank()
		if s.eof() {
			return
		}
		if s.peek() == '[' {
			s.header()
		} else {
			s.keyValue(s.table)
		}
		s.skipLine()
	}
}

// header reads [table] or [[array.of.tables]]; every key in it but the
// last of an array header names the latest element of its array, if it is
// an array.
func (s *scanner) header() {
	at := s.pos
	s.pos++
	array := s.peek() == '['
	if array {
		s.pos++
	}
	keys := s.keys()
	path := ""
	for i, k := range keys {
		path = joinKey(path, k)
		n, isArray := s.arrays[path]
		if array && i == len(keys)-1 {
			if isArray {
				n++
			}
			s.arrays[path] = n
			s.mark(path, at)
			isArray = true
		}
		if isArray {
			path = indexPath(path, n)
		}
		s.mark(path, at)
	}
	s.table = path
}

func (s *scanner) keyValue(table string) {
	at := s.pos
	path := table
	for _, k := range s.keys() {
		path = joinKey(path, k)
		s.mark(path, at)
	}
	s.skipSpace()
	if s.peek() == '=' {
		s.pos++
	}
	s.skipSpace()
	s.value(path)
}

// keys reads a dotted key.
func (s *scanner) keys() []string {
	var keys []string
	for {
		s.skipSpace()
		keys = append(keys, s.simpleKey())
		s.skipSpace()
		if s.peek() != '.' {
			return keys
		}
		s.pos++
	}
}

func (s *scanner) simpleKey() string {
	start := s.pos
	switch s.peek() {
	case '"':
		s.skipBasic()
		return unescapeBasic(strings.TrimSuffix(s.src[start+1:s.pos], `"`))
	case '\'':
		s.skipLiteral()
		return strings.Trim(s.src[start:s.pos], "'")
	}
	for !s.eof() && isBareByte(s.peek()) {
		s.pos++
	}
	return s.src[start:s.pos]
}

// unescapeBasic decodes the escapes of a TOML basic string (without its
// quotes). Unlike strconv.Unquote, \xHH is a code point, and \e is escape.
func unescapeBasic(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch c := s[i]; c {
		case 'b':
			b.WriteByte('\b')
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'f':
			b.WriteByte('\f')
		case 'r':
			b.WriteByte('\r')
		case 'e':
			b.WriteByte(0x1b)
		case 'x', 'u', 'U':
			digits := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
			if i+digits >= len(s) {
				b.WriteByte(c)
				break
			}
			n, err := strconv.ParseUint(s[i+1:i+1+digits], 16, 32)
			if err != nil {
				b.WriteByte(c)
				break
			}
			b.WriteRune(rune(n))
			i += digits
		default: // '"' and '\\'
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (s *scanner) value(path string) {
	rest := s.src[s.pos:]
	switch {
	case strings.HasPrefix(rest, `"""`):
		s.skipMultiline(`"""`)
	case strings.HasPrefix(rest, `'''`):
		s.skipMultiline(`'''`)
	case s.peek() == '"':
		s.skipBasic()
	case s.peek() == '\'':
		s.skipLiteral()
	case s.peek() == '[':
		s.array(path)
	case s.peek() == '{':
		s.inlineTable(path)
	default:
		for !s.eof() && !strings.ContainsRune(",]}#\n", rune(s.peek())) {
			s.pos++
		}
	}
}

func (s *scanner) array(path string) {
	s.pos++
	for i := 0; ; {
		s.skipBlank()
		switch {
		case s.eof():
			return
		case s.peek() == ']':
			s.pos++
			return
		case s.peek() == ',':
			s.pos++
			continue
		}
		at := s.pos
		elem := indexPath(path, i)
		s.mark(elem, at)
		s.value(elem)
		i++
		if s.pos == at {
			s.pos++
		}
	}
}

func (s *scanner) inlineTable(path string) {
	s.pos++
	for {
		s.skipBlank()
		switch {
		case s.eof():
			return
		case s.peek() == '}':
			s.pos++
			return
		case s.peek() == ',':
			s.pos++
			continue
		}
		at := s.pos
		s.keyValue(path)
		if s.pos == at {
			s.pos++
		}
	}
}

func (s *scanner) skipBasic() {
	for s.pos++; !s.eof(); {
		c := s.src[s.pos]
		s.pos++
		if c == '\\' {
			s.pos = min(s.pos+1, len(s.src))
		} else if c == '"' || c == '\n' {
			return
		}
	}
}

func (s *scanner) skipLiteral() {
	if i := strings.IndexAny(s.src[s.pos+1:], "'\n"); i >= 0 {
		s.pos += i + 2
	} else {
		s.pos = len(s.src)
	}
}

// skipMultiline skips a multi-line string delimited by delim, three double
// or three single quotes; up to two more quotes before the closing delim
// belong to the string.
func (s *scanner) skipMultiline(delim string) {
	for s.pos += len(delim); !s.eof(); {
		switch {
		case delim[0] == '"' && s.peek() == '\\':
			s.pos = min(s.pos+2, len(s.src))
		case strings.HasPrefix(s.src[s.pos:], delim):
			s.pos += len(delim)
			for extra := 0; extra < 2 && s.peek() == delim[0]; extra++ {
				s.pos++
			}
			return
		default:
			s.pos++
		}
	}
}

func (s *scanner) skipSpace() {
	for s.peek() == ' ' || s.peek() == '\t' {
		s.pos++
	}
}

// skipBlank skips whitespace, newlines and comments.
func (s *scanner) skipBlank() {
	for !s.eof() {
		switch s.peek() {
		case ' ', '\t', '\r', '\n':
			s.pos++
		case '#':
			s.skipLine()
		default:
			return
		}
	}
}

func (s *scanner) skipLine() {
	if i := strings.IndexByte(s.src[s.pos:], '\n'); i >= 0 {
		s.pos += i + 1
	} else {
		s.pos = len(s.src)
	}
}
