package consul

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

// healthTests are also seeds of FuzzReadHealth.
var healthTests = []struct {
	name    string
	in      string
	state   interpreter.State
	eps     []interpreter.Endpoint
	dropped []string // substrings of the dropped-entry errors
	errSub  string   // Failed answer: substring of Err
	readErr string   // readHealth error: substring
}{
	{name: "empty", in: `[]`, state: interpreter.NotFound},
	{name: "null", in: `null`, state: interpreter.NotFound},
	{name: "spaces", in: " \n[ ]\n", state: interpreter.NotFound},
	{name: "one", in: "[" + instA.json() + "]", eps: []interpreter.Endpoint{epA}},
	{name: "sorted", in: "[" + instB.json() + "," + instA.json() + "]", eps: []interpreter.Endpoint{epA, epB}},
	{name: "minimal", in: `[{"Node":{"Address":"10.0.0.1"},"Service":{"Port":80}}]`, eps: []interpreter.Endpoint{ep("10.0.0.1:80", 1)}},
	{name: "service address wins", in: `[{"Node":{"Address":"10.0.0.1"},"Service":{"Address":"10.9.9.9","Port":80}}]`,
		eps: []interpreter.Endpoint{ep("10.9.9.9:80", 1)}},
	{name: "no node", in: `[{"Service":{"Address":"10.9.9.9","Port":80}}]`, eps: []interpreter.Endpoint{ep("10.9.9.9:80", 1)}},
	{name: "weights", in: `[{"Node":{"Address":"10.0.0.1"},"Service":{"Port":80,"Weights":{"Passing":10,"Warning":1}}},` +
		`{"Node":{"Address":"10.0.0.2"},"Service":{"Port":80,"Weights":{"Passing":0,"Warning":0}}},` +
		`{"Node":{"Address":"10.0.0.3"},"Service":{"Port":80,"Weights":null}},` +
		`{"Node":{"Address":"10.0.0.4"},"Service":{"Port":80,"Weights":{}}}]`,
		eps: []interpreter.Endpoint{ep("10.0.0.1:80", 10), ep("10.0.0.2:80", 1), ep("10.0.0.3:80", 1), ep("10.0.0.4:80", 1)}},
	{name: "ipv6", in: `[{"Node":{"Address":"2001:db8::7"},"Service":{"Port":443}}]`, eps: []interpreter.Endpoint{ep("[2001:db8::7]:443", 1)}},
	{name: "unknown fields", in: `[{"X":[1,{"]":"["}],"Node":{"Address":"10.0.0.1","Meta":{"a":[]}},"Service":{"Port":80,"Proxy":{"Upstreams":[]}},"Checks":[]}]`,
		eps: []interpreter.Endpoint{ep("10.0.0.1:80", 1)}},
	{name: "lower case keys", in: `[{"node":{"address":"10.0.0.1"},"service":{"port":80}}]`, eps: []interpreter.Endpoint{ep("10.0.0.1:80", 1)}},
	{name: "bad entries dropped", in: `[` +
		`{"Node":{"Address":"10.0.0.1"},"Service":{"Port":80}},` +
		`{"Node":{"Node":"n2","Address":"node2.internal"},"Service":{"ID":"w2","Port":80}},` +
		`{"Node":{"Address":"10.0.0.3"},"Service":{"Address":"w3.internal","Port":80}},` +
		`{"Node":{"Address":"10.0.0.4"},"Service":{"Port":0}},` +
		`{"Node":{"Address":"10.0.0.5"},"Service":{"Port":65536}},` +
		`{"Node":{"Address":"10.0.0.6"},"Service":{"Port":"80"}},` +
		`{"Node":{"Address":"10.0.0.7"},"Service":{"Port":80.5}},` +
		`{"Node":{"Address":"10.0.0.8"},"Service":{"Port":80,"Weights":{"Passing":-1}}},` +
		`{"Node":{"Address":"10.0.0.9"},"Service":{"Port":80,"Weights":{"Passing":1.5}}},` +
		`{"Node":{"Address":""},"Service":{"Port":80}},` +
		`{"Node":{"Address":"10.0.0.11"}},` +
		`{"Node":{"Address":7},"Service":{"Port":80}},` +
		`"10.0.0.13:80",` +
		`null` +
		`]`,
		eps: []interpreter.Endpoint{ep("10.0.0.1:80", 1)},
		dropped: []string{
			`entry 1: instance "w2" on node "n2": node address "node2.internal" is not an IP address (host names are not resolved)`,
			`entry 2: instance: service address "w3.internal" is not an IP address`,
			`entry 3: instance: port 0 of 10.0.0.4 is not in 1-65535`,
			`entry 4: instance: port 65536 of 10.0.0.5`,
			`entry 5: Service.Port is string, not an integer`,
			`entry 6: Service.Port is number 80.5, not an integer`,
			`entry 7: instance: Weights.Passing -1 is negative`,
			`entry 8: Service.Weights.Passing is number 1.5, not an integer`,
			`entry 9: instance: no address`,
			`entry 10: no Service`,
			`entry 11: Node.Address is number, not a string`,
			`entry 12: entry is string, not an object`,
			`entry 13: no Service`,
		}},
	{name: "every entry unusable", in: `[{"Node":{"Address":"a.internal"},"Service":{"Port":80}},{"Service":{"Port":80}}]`,
		state: interpreter.Failed, errSub: `no instance of 2 can be used, e.g. entry 0: instance: node address "a.internal" is not an IP address`},
	{name: "object", in: `{"Node":{}}`, readErr: `not a JSON array of service entries (starts with "{")`},
	{name: "string", in: `"[]"`, readErr: "(starts with a string)"},
	{name: "number", in: `42`, readErr: "(starts with a number)"},
	{name: "nothing", in: ``, readErr: "response body is empty"},
	{name: "cut", in: `[{"Node":{"Address":"10.0.0.1"},"Serv`, readErr: "response ended early in entry 0"},
	{name: "unclosed", in: `[{"Node":{"Address":"10.0.0.1"},"Service":{"Port":80}}`, readErr: "response ended early"},
	{name: "syntax", in: `[{"Node":}]`, readErr: "response is not valid JSON in entry 0"},
	{name: "syntax between", in: `[{} {}]`, readErr: "not valid JSON"},
	{name: "trailing", in: `[]x`, readErr: "not valid JSON after its JSON array"},
	{name: "two arrays", in: `[][]`, readErr: "data after its JSON array"},
	{name: "html", in: `<html>`, readErr: "response is not valid JSON"},
}

func TestReadHealth(t *testing.T) {
	for _, tt := range healthTests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := readHealth(strings.NewReader(tt.in))
			if tt.readErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.readErr) {
					t.Fatalf("readHealth: %v, want an error containing %q", err, tt.readErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("readHealth: %v", err)
			}
			if a.res.State != tt.state {
				t.Fatalf("state %v (%v), want %v", a.res.State, a.res.Err, tt.state)
			}
			switch tt.state {
			case interpreter.Bound:
				if !reflect.DeepEqual(a.res.Endpoints, tt.eps) {
					t.Fatalf("endpoints %v, want %v", a.res.Endpoints, tt.eps)
				}
			case interpreter.Failed:
				if !strings.Contains(a.res.Err.Error(), tt.errSub) {
					t.Fatalf("error %q, want it to contain %q", a.res.Err, tt.errSub)
				}
			}
			if len(a.dropped) != len(tt.dropped) {
				t.Fatalf("dropped %q, want %d", a.dropped, len(tt.dropped))
			}
			for i, want := range tt.dropped {
				if !strings.Contains(a.dropped[i].Error(), want) {
					t.Errorf("dropped[%d] = %q, want it to contain %q", i, a.dropped[i], want)
				}
			}
		})
	}
}

func TestReadHealthTooLarge(t *testing.T) {
	const limit = 64 << 10
	entry := `{"Node":{"Address":"10.0.0.1"},"Service":{"Port":80},"Checks":[{"Output":"` + strings.Repeat("x", 1000) + `"}]},`
	body := "[" + strings.Repeat(entry, limit/len(entry)+1) + "]"
	if _, err := readHealthMax(strings.NewReader(body), limit); !errors.Is(err, errTooLarge) {
		t.Fatalf("readHealth of %d bytes: %v, want %v", len(body), err, errTooLarge)
	}
	// Exactly the limit is fine, in any chunking.
	exact := "[" + strings.Repeat(" ", limit-2) + "]"
	for _, r := range []io.Reader{strings.NewReader(exact), iotest.OneByteReader(strings.NewReader(exact)), iotest.DataErrReader(strings.NewReader(exact))} {
		if a, err := readHealthMax(r, limit); err != nil || a.res.State != interpreter.NotFound {
			t.Fatalf("readHealth of exactly %d bytes: %v, %v", limit, a.res.State, err)
		}
	}
	if _, err := readHealthMax(strings.NewReader(exact+" "), limit); !errors.Is(err, errTooLarge) {
		t.Fatalf("readHealth of %d bytes: %v, want %v", limit+1, err, errTooLarge)
	}
}

func TestEndpointAddr(t *testing.T) {
	tests := []struct {
		svc, node string
		port      int64
		want      string // "": error
		errSub    string
	}{
		{"10.0.0.1", "10.0.0.2", 80, "10.0.0.1:80", ""},
		{"", "10.0.0.2", 80, "10.0.0.2:80", ""},
		{"::1", "", 65535, "[::1]:65535", ""},
		{"fe80::1%eth0", "", 1, "[fe80::1%eth0]:1", ""},
		{"", "", 80, "", "no address"},
		{"web.internal", "10.0.0.2", 80, "", `service address "web.internal" is not an IP address`},
		{"", "node.internal", 80, "", `node address "node.internal" is not an IP address`},
		{"10.0.0.1:80", "", 80, "", "is not an IP address"},
		{"[::1]", "", 80, "", "is not an IP address"},
		{" 10.0.0.1", "", 80, "", "is not an IP address"},
		{"10.0.0.1", "", 0, "", "port 0 of 10.0.0.1 is not in 1-65535"},
		{"10.0.0.1", "", -1, "", "port -1"},
		{"10.0.0.1", "", 65536, "", "port 65536"},
	}
	for _, tt := range tests {
		got, err := endpointAddr(tt.svc, tt.node, tt.port)
		if tt.want != "" {
			if err != nil || got != netip.MustParseAddrPort(tt.want) {
				t.Errorf("endpointAddr(%q, %q, %d) = %v, %v; want %s", tt.svc, tt.node, tt.port, got, err, tt.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.errSub) {
			t.Errorf("endpointAddr(%q, %q, %d) = %v, %v; want an error containing %q", tt.svc, tt.node, tt.port, got, err, tt.errSub)
		}
	}
}

// FuzzReadHealth feeds arbitrary bytes to the health decoder: it must not
// panic, every Bound answer must hold valid addresses with ports and
// positive finite weights in canonical order, every Failed answer an
// error, and how the bytes arrive must not change the result.
func FuzzReadHealth(f *testing.F) {
	for _, tt := range healthTests {
		f.Add([]byte(tt.in))
	}
	f.Add([]byte(`[{"Node":{"Address":"::ffff:10.0.0.1"},"Service":{"Port":1,"Weights":{"Passing":9223372036854775807}}}]`))
	f.Add([]byte(`[{"Service":{"Address":"fe80::1%25eth0","Port":1}},{"Service":{"Address":"1.2.3.4","Port":1}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, errWhole := readHealth(bytes.NewReader(data))
		if errWhole == nil {
			checkAnswer(t, whole)
		}
		bytewise, errBytewise := readHealth(iotest.OneByteReader(bytes.NewReader(data)))
		if errString(errWhole) != errString(errBytewise) || !sameResult(whole, bytewise) {
			t.Fatalf("chunking changed the result: %+v, %v vs %+v, %v", whole, errWhole, bytewise, errBytewise)
		}
	})
}

func checkAnswer(t *testing.T, a answer) {
	switch a.res.State {
	case interpreter.Bound:
		if len(a.res.Endpoints) == 0 {
			t.Fatal("Bound to no endpoint: an empty answer is NotFound")
		}
		for _, e := range a.res.Endpoints {
			if !e.Addr.IsValid() || e.Addr.Port() == 0 {
				t.Fatalf("invalid address %v", e.Addr)
			}
			if !(e.Weight >= 1) || math.IsInf(e.Weight, 0) {
				t.Fatalf("weight %v of %v is not a positive finite integer", e.Weight, e.Addr)
			}
		}
		if !slices.IsSortedFunc(a.res.Endpoints, compareEndpoints) {
			t.Fatalf("endpoints not in canonical order: %v", a.res.Endpoints)
		}
	case interpreter.Failed:
		if a.res.Err == nil || len(a.dropped) != 0 {
			t.Fatalf("Failed without an error, or with dropped entries: %+v", a)
		}
	case interpreter.NotFound:
		if len(a.res.Endpoints) != 0 || len(a.dropped) != 0 {
			t.Fatalf("NotFound with endpoints or dropped entries: %+v", a)
		}
	default:
		t.Fatalf("state %v", a.res.State)
	}
}

func sameResult(a, b answer) bool {
	return a.res.State == b.res.State && reflect.DeepEqual(a.res.Endpoints, b.res.Endpoints) &&
		errString(a.res.Err) == errString(b.res.Err) && reflect.DeepEqual(errStrings(a.dropped), errStrings(b.dropped))
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func errStrings(errs []error) []string {
	out := make([]string, len(errs))
	for i, err := range errs {
		out[i] = err.Error()
	}
	return out
}

// FuzzEndpointAddr checks the address conversion: an address comes out
// only for an IP literal and a port in 1-65535, and it is the service's
// address when there is one, else the node's.
func FuzzEndpointAddr(f *testing.F) {
	f.Add("10.0.0.1", "10.0.0.2", int64(80))
	f.Add("", "2001:db8::1", int64(443))
	f.Add("web.internal", "", int64(1))
	f.Add("fe80::1%eth0", "", int64(65535))
	f.Add("::ffff:1.2.3.4", "x", int64(0))
	f.Add("", "", int64(-1))
	f.Add("1.2.3.4", "", int64(1<<40))
	f.Fuzz(func(t *testing.T, svc, node string, port int64) {
		got, err := endpointAddr(svc, node, port)
		if err != nil {
			if got.IsValid() {
				t.Fatalf("an address %v with an error %v", got, err)
			}
			return
		}
		want := svc
		if want == "" {
			want = node
		}
		ip, perr := netip.ParseAddr(want)
		if perr != nil || port < 1 || port > 65535 {
			t.Fatalf("endpointAddr(%q, %q, %d) = %v: accepted what it should not", svc, node, port, got)
		}
		if got != netip.AddrPortFrom(ip, uint16(port)) || !got.IsValid() || got.Port() == 0 {
			t.Fatalf("endpointAddr(%q, %q, %d) = %v, want %v", svc, node, port, got, netip.AddrPortFrom(ip, uint16(port)))
		}
	})
}

// chunkReader reads at most n bytes at a time, as a slow network would.
type chunkReader struct {
	r io.Reader
	n int
}

func (c chunkReader) Read(p []byte) (int, error) { return c.r.Read(p[:min(len(p), c.n)]) }

func TestReadHealthLongWhiteSpaceInSmallReads(t *testing.T) {
	// json.Decoder alone would scan this white space again at each of the
	// 40,000 reads: minutes of CPU.
	body := "[" + strings.Repeat(" ", 4<<20) + "]"
	a, err := readHealth(chunkReader{strings.NewReader(body), 100})
	if err != nil || a.res.State != interpreter.NotFound {
		t.Fatalf("got %v, %v; want not_found", a.res.State, err)
	}
}
