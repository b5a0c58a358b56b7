package consul

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Prefix is the prefix of the names a consul interpreter resolves: the
// name /svc/web is the service web.
const Prefix = "/svc"

// serviceOf returns the Consul service a name stands for: what follows
// "/svc/", a valid service name.
func serviceOf(name string) (string, error) {
	service, ok := strings.CutPrefix(name, Prefix+"/")
	if !ok {
		return "", fmt.Errorf("%s is not a Consul service name: names take the form %s/<service>",
			strconv.Quote(name), Prefix)
	}
	if err := checkService(service); err != nil {
		return "", fmt.Errorf("%s: %w", strconv.Quote(name), err)
	}
	return service, nil
}

// checkService accepts the service names this kind resolves: letters,
// digits, "-", "_" and ".", as Consul's DNS interface and its documentation
// expect (the HTTP API itself takes more, but a name with "/" in it could
// not be written as one path segment, and "." and ".." would be cleaned out
// of the request's path).
func checkService(s string) error {
	switch {
	case s == "":
		return errors.New("the service name after " + Prefix + "/ is empty")
	case s == "." || s == "..":
		return fmt.Errorf("%q is not a service name", s)
	case strings.Contains(s, "/"):
		return fmt.Errorf("%q has more than one segment: the service is the one segment after %s/", s, Prefix)
	}
	if i := strings.IndexFunc(s, func(r rune) bool { return !isNameChar(r) }); i >= 0 {
		return fmt.Errorf("service name %q contains %q: letters, digits, \"-\", \"_\" and \".\" only", s, []rune(s[i:])[0])
	}
	return nil
}

func isNameChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '_' || r == '.'
}

// healthURL is the health query of service: passing instances only, with
// dc and tag when set; a blocking query from index with the given wait when
// index > 0 (the wait, in whole milliseconds, is at least 1 ms: Consul
// would take 0 for its default of 5 minutes).
func healthURL(api, service, dc, tag string, index uint64, wait time.Duration) string {
	q := url.Values{"passing": {"true"}}
	if dc != "" {
		q.Set("dc", dc)
	}
	if tag != "" {
		q.Set("tag", tag)
	}
	if index > 0 {
		q.Set("index", strconv.FormatUint(index, 10))
		q.Set("wait", strconv.FormatInt(int64(waitMillis(wait)/time.Millisecond), 10)+"ms")
	}
	return api + "/v1/health/service/" + url.PathEscape(service) + "?" + q.Encode()
}

// waitMillis rounds a wait up to whole milliseconds, at least one: what
// the query asks for.
func waitMillis(d time.Duration) time.Duration {
	return max(time.Millisecond, (d+time.Millisecond-1)/time.Millisecond*time.Millisecond)
}
