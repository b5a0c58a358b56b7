// Package namerd is the interpreter kind "namerd": it resolves names through
// namerd's HTTP API (linkerd 1.x's name service), either by holding one
// watch stream open per name or by polling each name every period. The
// router builds it from a [routers.interpreter] table with kind = "namerd";
// the binder calls Resolve once per destination name.
package namerd

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Kind is kind "namerd".
var Kind = interpreter.Kind{Name: "namerd", Decode: decode}

// Defaults of the optional keys.
const (
	defaultNamespace  = "default"
	defaultWatch      = true
	defaultPeriod     = 5 * time.Second
	defaultBackoffMin = 100 * time.Millisecond
	defaultBackoffMax = 10 * time.Second
	defaultTimeout    = 10 * time.Second
)

// Settings are the settings of kind "namerd", defaulted and validated.
type Settings struct {
	// BaseURL is namerd's HTTP API, as configured: requests go to
	// BaseURL (without trailing slashes) + "/api/1/resolve/...".
	BaseURL string `json:"base_url"`
	// Namespace is the dtab namespace names are resolved in.
	Namespace string `json:"namespace"`
	// Watch: one streaming request per name, answers as namerd sends
	// them. False: one request per name every Period (used only then).
	Watch  bool          `json:"watch"`
	Period time.Duration `json:"period"`
	// BackoffMin and BackoffMax bound the jittered exponential delay
	// before a request is retried after an error or the end of a stream.
	BackoffMin time.Duration `json:"backoff_min"`
	BackoffMax time.Duration `json:"backoff_max"`
	// Timeout bounds connecting and waiting for response headers; in
	// poll mode, the whole request; in watch mode, also reading one
	// answer once its first byte arrived.
	Timeout time.Duration `json:"timeout"`
}

func decode(t interpreter.Table) interpreter.Settings {
	base := t.String("base_url")
	st := &Settings{
		BaseURL:    interpreter.Or(base, ""),
		Namespace:  interpreter.Or(t.String("namespace"), defaultNamespace),
		Watch:      interpreter.Or(t.Bool("watch"), defaultWatch),
		Period:     interpreter.Or(t.Duration("period"), defaultPeriod),
		BackoffMin: interpreter.Or(t.Duration("backoff_min"), defaultBackoffMin),
		BackoffMax: interpreter.Or(t.Duration("backoff_max"), defaultBackoffMax),
		Timeout:    interpreter.Or(t.Duration("timeout"), defaultTimeout),
	}
	switch {
	case base == nil && !slices.Contains(t.Keys(), "base_url"): // else the type error is reported
		t.Problem("base_url", `required for kind "namerd" (namerd's HTTP API, e.g. "http://127.0.0.1:4180")`)
	case base != nil:
		if _, err := parseBaseURL(*base); err != nil {
			t.Problem("base_url", "%v", err)
		}
	}
	if err := checkNamespace(st.Namespace); err != nil {
		t.Problem("namespace", "%v", err)
	}
	interpreter.CheckPositive(t, "period", st.Period)
	interpreter.CheckBackoff(t, st.BackoffMin, st.BackoffMax)
	interpreter.CheckPositive(t, "timeout", st.Timeout)
	return st
}

// parseBaseURL checks an http or https URL with a host, and returns it
// without trailing slashes, ready for "/api/1/..." to be appended.
func parseBaseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not a URL: %v", s, unwrapURLError(err))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q must start with http:// or https://", s)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q has no host (write http://host:port)", s)
	case u.User != nil:
		return "", fmt.Errorf("%q must not contain a user or password", s)
	case u.RawQuery != "" || u.ForceQuery:
		return "", fmt.Errorf("%q must not have a query (%q)", s, "?"+u.RawQuery)
	case u.Fragment != "" || strings.Contains(s, "#"):
		return "", fmt.Errorf("%q must not have a fragment (%q)", s, "#"+u.Fragment)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
			return "", fmt.Errorf("%q has port %s, out of range (1-65535)", s, p)
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// unwrapURLError drops url.Error's repetition of the operation and input.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

func checkNamespace(ns string) error {
	switch {
	case ns == "":
		return fmt.Errorf("must not be empty")
	case strings.Contains(ns, "/"):
		return fmt.Errorf("%q must not contain %q", ns, "/")
	}
	return nil
}

// CheckName reports a name that is not a valid namerd path: "/" followed
// by one or more non-empty segments of letters, digits and _:.#$%-, other
// bytes written \xHH (finagle's Path syntax). namerd answers 400 to others.
func (st *Settings) CheckName(name string) error { return checkPath(name) }

func checkPath(name string) error {
	if !strings.HasPrefix(name, "/") {
		return fmt.Errorf("%q must start with %q", name, "/")
	}
	if name == "/" {
		return fmt.Errorf("%q is the empty path: a namerd name has at least one segment, as in /svc/web", name)
	}
	for i, seg := range strings.Split(name[1:], "/") {
		if seg == "" {
			return fmt.Errorf("%q has an empty segment (number %d): remove the extra %q", name, i+1, "/")
		}
		if err := checkSegment(seg); err != nil {
			return fmt.Errorf("%q: segment %q %v", name, seg, err)
		}
	}
	return nil
}

// checkSegment checks one path segment's characters; the error completes
// `segment "x" ...`.
func checkSegment(seg string) error {
	for i := 0; i < len(seg); {
		c := seg[i]
		switch {
		case isShowable(c):
			i++
		case c == '\\':
			if i+3 < len(seg) && seg[i+1] == 'x' && isHex(seg[i+2]) && isHex(seg[i+3]) {
				i += 4
				continue
			}
			return fmt.Errorf(`has a "\" not followed by xHH (two hex digits)`)
		default:
			r, _ := utf8.DecodeRuneInString(seg[i:])
			return fmt.Errorf("contains %q, which namerd paths do not allow (letters, digits and _:.#$%%- only; write other bytes as \\xHH)", r)
		}
	}
	return nil
}

// isShowable reports the bytes finagle's Path allows unescaped.
func isShowable(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_:.#$%-", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// New builds the interpreter and its HTTP client; nothing runs before the
// first Resolve. It checks again what Decode checked, for Settings made in
// code.
func (st *Settings) New(env interpreter.Env) (interpreter.Interpreter, error) {
	api, err := parseBaseURL(st.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("namerd: base_url: %w", err)
	}
	if err := checkNamespace(st.Namespace); err != nil {
		return nil, fmt.Errorf("namerd: namespace: %w", err)
	}
	if st.Period <= 0 || st.Timeout <= 0 || st.BackoffMin <= 0 || st.BackoffMin > st.BackoffMax {
		return nil, fmt.Errorf("namerd: need period > 0, timeout > 0 and 0 < backoff_min <= backoff_max, got %s, %s, %s and %s",
			st.Period, st.Timeout, st.BackoffMin, st.BackoffMax)
	}
	return newInterpreter(*st, api, env), nil
}
