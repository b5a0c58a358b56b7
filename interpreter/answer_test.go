package interpreter

import (
	"errors"
	"net/netip"
	"testing"
)

func TestJoinErrors(t *testing.T) {
	errs := []error{errors.New("a"), errors.New("b"), errors.New("c")}
	for _, tt := range []struct {
		max  int
		want string
	}{{3, "a; b; c"}, {2, "a; b; and 1 more"}, {0, "; and 3 more"}} {
		if got := JoinErrors(errs, tt.max); got != tt.want {
			t.Errorf("JoinErrors(max %d) = %q, want %q", tt.max, got, tt.want)
		}
	}
}

func TestSameAnswer(t *testing.T) {
	a := Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:1"), Weight: 1}
	b := Endpoint{Addr: netip.MustParseAddrPort("127.0.0.1:2"), Weight: 1}
	if !SameAnswer(BoundTo([]Endpoint{a, b}), BoundTo([]Endpoint{a, b})) {
		t.Error("equal sets differ")
	}
	if SameAnswer(BoundTo([]Endpoint{a}), BoundTo([]Endpoint{b})) || SameAnswer(BoundTo(nil), NotFoundAnswer()) {
		t.Error("different answers are the same")
	}
}
