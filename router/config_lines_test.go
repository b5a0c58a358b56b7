package router

import "testing"

func TestKeyLines(t *testing.T) {
	src := `# comment with [brackets] and = signs
title = """
multi [line] = "string"
""" # trailing
[[a]]
x = [
  1, # one
  { y = 'lit]eral', z = "q\"}" },
  [2, 3],
]
"quoted.key" = 1
[a.b]
dotted.key = 2
[[a]]
t = { u = { v = 1 }, w = '''
'''}
[[a.c]]
[[a.c]]
d = 4
`
	want := map[string]int{
		`title`:             2,
		`a`:                 5,
		`a[0]`:              5,
		`a[0].x`:            6,
		`a[0].x[0]`:         7,
		`a[0].x[1]`:         8,
		`a[0].x[1].y`:       8,
		`a[0].x[1].z`:       8,
		`a[0].x[2]`:         9,
		`a[0].x[2][1]`:      9,
		`a[0]."quoted.key"`: 11,
		`a[0].b`:            12,
		`a[0].b.dotted`:     13,
		`a[0].b.dotted.key`: 13,
		`a[1]`:              14,
		`a[1].t.u.v`:        15,
		`a[1].t.w`:          15,
		`a[1].c[0]`:         17,
		`a[1].c[1]`:         18,
		`a[1].c[1].d`:       19,
	}
	got := keyLines(src)
	for path, line := range want {
		if got[path] != line {
			t.Errorf("line of %s = %d, want %d", path, got[path], line)
		}
	}
	if t.Failed() {
		t.Logf("all lines: %v", got)
	}
}
