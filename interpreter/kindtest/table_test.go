package kindtest

import (
	"slices"
	"testing"
)

func TestTable(t *testing.T) {
	tab := NewTable(map[string]any{
		"s":        "x",
		"n":        "3",
		"d":        "5",
		"list":     []any{"a", int64(1), "c"},
		"notlist":  "a",
		"sub":      map[string]any{"k": true, "extra": int64(1)},
		"unread":   int64(1),
		"odd key!": "y",
	})
	if !tab.Present() || tab.Path() != "routers[0].interpreter" {
		t.Fatalf("Present %v, Path %q", tab.Present(), tab.Path())
	}
	if s := tab.String("s"); s == nil || *s != "x" {
		t.Errorf("String(s) = %v", s)
	}
	if n := tab.Int("n"); n != nil {
		t.Errorf("Int(n) = %v, want nil", *n)
	}
	if d := tab.Duration("d"); d != nil {
		t.Errorf("Duration(d) = %v, want nil", *d)
	}
	if s := tab.String("absent"); s != nil {
		t.Errorf("String(absent) = %q, want nil", *s)
	}
	if l := tab.Strings("absent"); l != nil {
		t.Errorf("Strings(absent) = %v, want nil", l)
	}
	if l := tab.Strings("list"); len(l) != 3 || *l[0] != "a" || l[1] != nil || *l[2] != "c" {
		t.Errorf("Strings(list) = %v", l)
	}
	if l := tab.Strings("notlist"); l == nil || len(l) != 0 {
		t.Errorf("Strings(notlist) = %v, want empty", l)
	}
	sub := tab.Table("sub")
	if b := sub.Bool("k"); !sub.Present() || b == nil || !*b {
		t.Errorf("sub: Present %v, Bool(k) = %v", sub.Present(), b)
	}
	if !slices.Equal(sub.Keys(), []string{"extra", "k"}) {
		t.Errorf("sub keys %q", sub.Keys())
	}
	sub.ProblemAt("k", 2, "sub %d", 1)
	if none := tab.Table("none"); none.Present() || len(none.Keys()) != 0 {
		t.Errorf("absent table: Present %v, Keys %q", none.Present(), none.Keys())
	}
	tab.Table("s")
	tab.Problem("", "whole")
	tab.Problem("odd key!", "odd")

	want := []string{
		`routers[0].interpreter.n: expected an integer, got string "3"`,
		`routers[0].interpreter.d: bad duration "5": time: missing unit in duration "5"`,
		`routers[0].interpreter.list[1]: expected a string, got integer 1`,
		`routers[0].interpreter.notlist: expected an array of strings, got string "a"`,
		`routers[0].interpreter.sub.k[2]: sub 1`,
		`routers[0].interpreter.s: expected a table, got string "x"`,
		`routers[0].interpreter: whole`,
		`routers[0].interpreter."odd key!": odd`,
	}
	if !slices.Equal(tab.Problems, want) {
		t.Errorf("problems\n%q\nwant\n%q", tab.Problems, want)
	}
	if u := tab.Unknown(); !slices.Equal(u, []string{"odd key!", "sub.extra", "unread"}) {
		t.Errorf("Unknown() = %q", u)
	}
}

func TestAbsentTable(t *testing.T) {
	tab := NewTable(nil)
	if tab.Present() || tab.String("x") != nil || len(tab.Keys()) != 0 || len(tab.Unknown()) != 0 || len(tab.Problems) != 0 {
		t.Fatalf("absent table: Present %v, Keys %q, Unknown %q, Problems %q", tab.Present(), tab.Keys(), tab.Unknown(), tab.Problems)
	}
}
