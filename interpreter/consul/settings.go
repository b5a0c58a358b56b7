package consul

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// Kind is kind "consul".
var Kind = interpreter.Kind{Name: "consul", Decode: decode}

// Defaults of the optional keys.
const (
	defaultAddr       = "http://127.0.0.1:8500" // the local agent
	defaultWait       = time.Minute
	defaultTimeout    = 10 * time.Second
	defaultBackoffMin = 100 * time.Millisecond
	defaultBackoffMax = 10 * time.Second
)

// maxWait is the longest wait Consul honours; it cuts longer ones.
const maxWait = 10 * time.Minute

// maxTokenFile bounds what is read of a token file: an ACL token is a UUID.
const maxTokenFile = 4 << 10

// Settings are the settings of kind "consul", defaulted and validated.
type Settings struct {
	// Addr is the HTTP API of a Consul agent, as configured: requests go
	// to Addr (without trailing slashes) + "/v1/health/service/...".
	Addr string `json:"addr"`
	// Datacenter, when set, is the datacenter asked (dc=); else the
	// agent's own.
	Datacenter string `json:"dc"`
	// Tag, when set, keeps only the instances with that tag (tag=).
	Tag string `json:"tag"`
	// Token is the ACL token sent in X-Consul-Token, if any. TokenFile,
	// when set instead, names a file holding it, read by New and again
	// whenever Consul denies a request, so that a rotated token is taken
	// up.
	Token     string `json:"-"`
	TokenFile string `json:"token_file"`
	// Wait is the longest a blocking query waits for a change (Consul's
	// wait), at most 10 minutes.
	Wait time.Duration `json:"wait"`
	// Timeout bounds connecting, and each query beyond its wait: a query
	// that does not block has Timeout, a blocking one its wait, the up to
	// wait/16 Consul adds to it, and Timeout.
	Timeout time.Duration `json:"timeout"`
	// BackoffMin and BackoffMax bound the jittered exponential delay
	// before a query is retried after an error.
	BackoffMin time.Duration `json:"backoff_min"`
	BackoffMax time.Duration `json:"backoff_max"`
	// MaxConnections bounds the connections to the agent: three in four
	// carry blocking queries, one per watched name; past that the names
	// take turns (see the package doc). Keep it under the agent's
	// limits.http_max_conns_per_client (200 by default) for every
	// client of the agent from this address together.
	MaxConnections int `json:"max_connections"`
}

var _ interpreter.Settings = (*Settings)(nil)

func decode(t interpreter.Table) interpreter.Settings {
	token := t.String("token")
	tokenFile := t.String("token_file")
	st := &Settings{
		Addr:       interpreter.Or(t.String("addr"), defaultAddr),
		Datacenter: interpreter.Or(t.String("dc"), ""),
		Tag:        interpreter.Or(t.String("tag"), ""),
		Token:      interpreter.Or(token, ""),
		TokenFile:  interpreter.Or(tokenFile, ""),
		Wait:       interpreter.Or(t.Duration("wait"), defaultWait),
		Timeout:    interpreter.Or(t.Duration("timeout"), defaultTimeout),
		BackoffMin: interpreter.Or(t.Duration("backoff_min"), defaultBackoffMin),
		BackoffMax: interpreter.Or(t.Duration("backoff_max"), defaultBackoffMax),

		MaxConnections: int(interpreter.Or(t.Int("max_connections"), defaultMaxConns)),
	}
	if _, err := parseAddr(st.Addr); err != nil {
		t.Problem("addr", "%v", err)
	}
	if err := checkDatacenter(st.Datacenter); err != nil {
		t.Problem("dc", "%v", err)
	}
	if err := checkTag(st.Tag); err != nil {
		t.Problem("tag", "%v", err)
	}
	switch {
	case token != nil && tokenFile != nil:
		t.Problem("token_file", "set token or token_file, not both")
	case token != nil:
		if err := checkToken(*token); err != nil {
			t.Problem("token", "%v", err)
		}
	case tokenFile != nil && *tokenFile == "":
		t.Problem("token_file", "must not be empty (leave it out for no token)")
	}
	if interpreter.CheckPositive(t, "wait", st.Wait) > maxWait {
		t.Problem("wait", "must be at most %s, the longest Consul waits, got %s", maxWait, st.Wait)
	}
	interpreter.CheckPositive(t, "timeout", st.Timeout)
	interpreter.CheckBackoff(t, st.BackoffMin, st.BackoffMax)
	if n := st.MaxConnections; n < minConns || n > maxMaxConns {
		t.Problem("max_connections", "must be %d-%d, got %d", minConns, maxMaxConns, n)
	}
	return st
}

// parseAddr checks an http or https URL with a host, and returns it
// without trailing slashes, ready for "/v1/..." to be appended.
func parseAddr(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return "", fmt.Errorf("%q is not a URL: %v", s, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%q must start with http:// or https:// (the agent's HTTP API, e.g. %q)", s, defaultAddr)
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%q has no host (write http://host:port)", s)
	case u.User != nil:
		return "", fmt.Errorf("%q must not contain a user or password (use token or token_file for an ACL token)", s)
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

// checkDatacenter accepts "" (the agent's datacenter) or a name of
// letters, digits, "-", "_" and ".", as Consul's datacenter names are.
func checkDatacenter(dc string) error {
	if i := strings.IndexFunc(dc, func(r rune) bool { return !isNameChar(r) }); i >= 0 {
		return fmt.Errorf("%q contains %q: a datacenter name has letters, digits, \"-\", \"_\" and \".\" only", dc, []rune(dc[i:])[0])
	}
	return nil
}

// checkTag accepts any tag without control characters.
func checkTag(tag string) error {
	if i := strings.IndexFunc(tag, isControl); i >= 0 {
		return fmt.Errorf("%q contains the control character %q", tag, []rune(tag[i:])[0])
	}
	return nil
}

// checkToken accepts a token that can be sent as a header value. Its error
// never quotes the token.
func checkToken(token string) error {
	switch {
	case token == "":
		return errors.New("must not be empty (leave it out for no token)")
	case strings.TrimSpace(token) != token:
		return errors.New("must not start or end with white space")
	case strings.IndexFunc(token, isControl) >= 0:
		return errors.New("must not contain control characters")
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// readTokenFile reads an ACL token from a regular file, trimming white
// space around it. Errors name the file, never the token.
func readTokenFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxTokenFile+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if len(b) > maxTokenFile {
		return "", fmt.Errorf("%s is larger than %d bytes: not a token", path, maxTokenFile)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if err := checkToken(token); err != nil {
		return "", fmt.Errorf("the token in %s %w", path, err)
	}
	return token, nil
}

// CheckName reports a name that is not /svc/<service>, with a service
// name of letters, digits, "-", "_" and ".".
func (st *Settings) CheckName(name string) error {
	_, err := serviceOf(name)
	return err
}

// New builds the interpreter and its HTTP client, reading the token file
// if there is one; nothing runs before the first Resolve. It checks again
// what Decode checked, for Settings made in code.
func (st *Settings) New(env interpreter.Env) (interpreter.Interpreter, error) {
	api, err := parseAddr(st.Addr)
	if err != nil {
		return nil, fmt.Errorf("consul: addr: %w", err)
	}
	for _, c := range []struct {
		key string
		err error
	}{{"dc", checkDatacenter(st.Datacenter)}, {"tag", checkTag(st.Tag)}} {
		if c.err != nil {
			return nil, fmt.Errorf("consul: %s: %w", c.key, c.err)
		}
	}
	if st.Wait <= 0 || st.Wait > maxWait || st.Timeout <= 0 || st.BackoffMin <= 0 || st.BackoffMin > st.BackoffMax {
		return nil, fmt.Errorf("consul: need 0 < wait <= %s, timeout > 0 and 0 < backoff_min <= backoff_max, got %s, %s, %s and %s",
			maxWait, st.Wait, st.Timeout, st.BackoffMin, st.BackoffMax)
	}
	if st.MaxConnections < minConns || st.MaxConnections > maxMaxConns {
		return nil, fmt.Errorf("consul: max_connections: must be %d-%d, got %d", minConns, maxMaxConns, st.MaxConnections)
	}
	token := st.Token
	switch {
	case token != "" && st.TokenFile != "":
		return nil, errors.New("consul: set token or token_file, not both")
	case token != "":
		if err := checkToken(token); err != nil {
			return nil, fmt.Errorf("consul: token: %w", err)
		}
	case st.TokenFile != "":
		if token, err = readTokenFile(st.TokenFile); err != nil {
			return nil, fmt.Errorf("consul: token_file: %w", err)
		}
	}
	return newInterpreter(*st, api, token, env), nil
}
