package interpreter

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// parseWeight parses the weight after "*" in an endpoint: a positive finite
// decimal (or Go hexadecimal) float. Errors say what is wrong with s without
// repeating the whole endpoint; the caller adds that.
func parseWeight(s string) (float64, error) {
	if s == "" {
		return 0, errors.New(`missing weight after "*"`)
	}
	w, err := strconv.ParseFloat(s, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Errorf("weight %q is out of range", s)
	case err != nil:
		return 0, fmt.Errorf("weight %q is not a number", s)
	case math.IsNaN(w) || math.IsInf(w, 0):
		return 0, fmt.Errorf("weight %q is not a finite number", s)
	case w <= 0:
		// Also catches values too small to represent, which parse as 0.
		return 0, fmt.Errorf("weight %q must be greater than 0", s)
	}
	return w, nil
}
