package namerd

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

func ep(addr string, weight float64) interpreter.Endpoint {
	return interpreter.Endpoint{Addr: netip.MustParseAddrPort(addr), Weight: weight}
}

// Wire answers as namerd writes them, and as tests send them.
const (
	boundOne = `{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080,"meta":{}}],"meta":{}}`
	boundTwo = `{"type":"bound","addrs":[{"ip":"127.0.0.1","port":8080,"meta":{}},{"ip":"127.0.0.1","port":8081,"meta":{}}],"meta":{}}`
	negative = `{"type":"neg"}`
)

// parseTests are also seeds of FuzzAnswerStream.
var parseTests = []struct {
	name    string
	in      string
	state   interpreter.State
	eps     []interpreter.Endpoint
	pending bool
	dropped []string // substrings of the dropped-entry errors
	errSub  string   // Failed: substring of Err
}{
	{name: "bound one", in: boundOne, eps: []interpreter.Endpoint{ep("127.0.0.1:8080", 1)}},
	{name: "bound two", in: boundTwo, eps: []interpreter.Endpoint{ep("127.0.0.1:8080", 1), ep("127.0.0.1:8081", 1)}},
	{name: "bound sorted", in: `{"type":"bound","addrs":[{"ip":"10.0.0.2","port":1},{"ip":"10.0.0.1","port":2}]}`,
		eps: []interpreter.Endpoint{ep("10.0.0.1:2", 1), ep("10.0.0.2:1", 1)}},
	{name: "bound empty", in: `{"type":"bound","addrs":[],"meta":{}}`, eps: []interpreter.Endpoint{}},
	{name: "weights", in: `{"type":"bound","addrs":[{"ip":"10.0.0.7","port":9000,"meta":{"endpoint_addr_weight":0.5,"nodeName":"n1"}},{"ip":"10.0.0.8","port":9000,"meta":{"endpoint_addr_weight":2}}],"meta":{}}`,
		eps: []interpreter.Endpoint{ep("10.0.0.7:9000", 0.5), ep("10.0.0.8:9000", 2)}},
	{name: "weight null", in: `{"type":"bound","addrs":[{"ip":"10.0.0.7","port":9000,"meta":{"endpoint_addr_weight":null}}]}`,
		eps: []interpreter.Endpoint{ep("10.0.0.7:9000", 1)}},
	{name: "ipv6", in: `{"type":"bound","addrs":[{"ip":"2001:db8::1","port":443,"meta":{"authority":"x"}}]}`,
		eps: []interpreter.Endpoint{ep("[2001:db8::1]:443", 1)}},
	{name: "unknown fields", in: `{"type":"bound","x":[1,{"}":"{"}],"addrs":[{"ip":"10.0.0.1","port":80,"meta":{"a":{"b":[]}},"extra":true}],"meta":{"k":"v"}}`,
		eps: []interpreter.Endpoint{ep("10.0.0.1:80", 1)}},
	{name: "type not first", in: `{"addrs":[{"ip":"10.0.0.1","port":80}],"type":"bound"}`, eps: []interpreter.Endpoint{ep("10.0.0.1:80", 1)}},
	{name: "bad entries dropped", in: `{"type":"bound","addrs":[` +
		`{"ip":"10.0.0.1","port":80},` +
		`{"ip":"nope","port":80},` +
		`{"ip":"10.0.0.2","port":0},` +
		`{"ip":"10.0.0.3","port":65536},` +
		`{"ip":"10.0.0.4","port":80.5},` +
		`{"ip":"10.0.0.5","port":"80"},` +
		`{"ip":"10.0.0.6","port":80,"meta":{"endpoint_addr_weight":0}},` +
		`{"ip":"10.0.0.7","port":80,"meta":{"endpoint_addr_weight":-1}},` +
		`{"ip":"10.0.0.8","port":80,"meta":{"endpoint_addr_weight":"2"}},` +
		`{"ip":"10.0.0.9","port":80,"meta":{"endpoint_addr_weight":1e999}},` +
		`{"ip":"10.0.0.10","port":80,"meta":[]},` +
		`{"port":80},` +
		`{"ip":"10.0.0.11"},` +
		`{"ip":7,"port":80},` +
		`"10.0.0.12:80"` +
		`]}`,
		eps: []interpreter.Endpoint{ep("10.0.0.1:80", 1)},
		dropped: []string{
			`addrs[1]: ip "nope" is not an IP address`,
			`addrs[2]: port 0 of 10.0.0.2 is not an integer in 1-65535`,
			`addrs[3]: port 65536 of 10.0.0.3`,
			`addrs[4]: port 80.5 of 10.0.0.4`,
			`addrs[5]: port "80" of 10.0.0.5`,
			`addrs[6]: 10.0.0.6:80: endpoint_addr_weight 0 must be greater than 0`,
			`addrs[7]: 10.0.0.7:80: endpoint_addr_weight -1 must be greater than 0`,
			`addrs[8]: 10.0.0.8:80: endpoint_addr_weight "2" is not a representable number`,
			`addrs[9]: 10.0.0.9:80: endpoint_addr_weight 1e999 is not a representable number`,
			`addrs[10]: 10.0.0.10:80: meta [] is not an object`,
			`addrs[11]: no ip`,
			`addrs[12]: 10.0.0.11 has no port`,
			`addrs[13]: ip 7 is not a string`,
			`addrs[14]: "10.0.0.12:80" is not an address object`,
		}},
	{name: "every entry bad", in: `{"type":"bound","addrs":[{"ip":"x","port":1},{"ip":"y","port":1}]}`,
		state: interpreter.Failed, errSub: `every address of the answer is invalid (2), e.g. addrs[0]: ip "x" is not an IP address`},
	{name: "bound without addrs", in: `{"type":"bound"}`, state: interpreter.Failed, errSub: `"bound" answer without addrs`},
	{name: "bound addrs null", in: `{"type":"bound","addrs":null}`, state: interpreter.Failed, errSub: "without addrs"},
	{name: "bound addrs object", in: `{"type":"bound","addrs":{"ip":"10.0.0.1"}}`, state: interpreter.Failed, errSub: "is not an array"},
	{name: "neg", in: negative, state: interpreter.NotFound},
	{name: "neg with meta", in: `{"type":"neg","meta":{}}`, state: interpreter.NotFound},
	{name: "failed", in: `{"type":"failed","cause":"dtab parse error"}`, state: interpreter.Failed, errSub: "resolution failed: dtab parse error"},
	{name: "failed no cause", in: `{"type":"failed"}`, state: interpreter.Failed, errSub: "resolution failed: (no cause given)"},
	{name: "failed odd cause", in: `{"type":"failed","cause":{"a":1}}`, state: interpreter.Failed, errSub: `resolution failed: {"a":1}`},
	{name: "pending", in: `{"type":"pending"}`, pending: true},
	{name: "no type", in: `{"addrs":[]}`, state: interpreter.Failed, errSub: "answer without a type"},
	{name: "type number", in: `{"type":1}`, state: interpreter.Failed, errSub: "answer type 1 is not a string"},
	{name: "unknown type", in: `{"type":"delegate"}`, state: interpreter.Failed, errSub: `answer of unknown type "delegate"`},
}

func TestParseAnswer(t *testing.T) {
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseAnswer([]byte(tt.in))
			if err != nil {
				t.Fatalf("parseAnswer: %v", err)
			}
			if a.pending != tt.pending {
				t.Fatalf("pending = %v, want %v", a.pending, tt.pending)
			}
			if tt.pending {
				return
			}
			if a.res.State != tt.state {
				t.Fatalf("state = %v (%v), want %v", a.res.State, a.res.Err, tt.state)
			}
			switch tt.state {
			case interpreter.Bound:
				if !reflect.DeepEqual(a.res.Endpoints, tt.eps) {
					t.Errorf("endpoints = %v, want %v", a.res.Endpoints, tt.eps)
				}
			case interpreter.Failed:
				if a.res.Err == nil || !strings.Contains(a.res.Err.Error(), tt.errSub) {
					t.Errorf("error = %v, want it to contain %q", a.res.Err, tt.errSub)
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

// readAll reads every answer of stream through r, and the error that ended it.
func readAll(r io.Reader) ([]answer, error) {
	ar := newAnswerReader(r)
	var out []answer
	for {
		a, err := ar.Next()
		if err != nil {
			return out, err
		}
		out = append(out, a)
	}
}

func TestAnswerStream(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		answers []interpreter.State
		errSub  string // "" means io.EOF
	}{
		{"namerd's sequence", boundOne + "\n" + boundTwo + "\n" + negative + "\n", []interpreter.State{interpreter.Bound, interpreter.Bound, interpreter.NotFound}, ""},
		{"no newlines", boundOne + boundTwo + negative, []interpreter.State{interpreter.Bound, interpreter.Bound, interpreter.NotFound}, ""},
		{"crlf and spaces", " \r\n\t" + negative + "\r\n\r\n", []interpreter.State{interpreter.NotFound}, ""},
		{"empty", "", nil, ""},
		{"error text then close", boundOne + "\nInvalid path: /svc//x\n", []interpreter.State{interpreter.Bound}, `server sent text instead of an answer: "Invalid path: /svc//x"`},
		{"error text without newline", "oops", nil, `"oops"`},
		{"long text cut", strings.Repeat("x", 1000) + "\n", nil, "(cut)"},
		{"array", "[1]\n", nil, `text instead of an answer: "[1]"`},
		{"cut in an answer", boundOne[:20], nil, "stream ended inside an answer, after 20 bytes"},
		{"cut in a string", `{"type":"bo`, nil, "ended inside an answer"},
		{"malformed", `{"type":"bound",}` + "\n", nil, `malformed answer "{\"type\":\"bound\",}"`},
		{"mismatched", `{"a":[}]` + "\n", nil, "malformed answer"},
		{"braces in strings", `{"type":"neg","x":"}{\"}"}` + negative, []interpreter.State{interpreter.NotFound, interpreter.NotFound}, ""},
		{"too large", `{"type":"bound","x":"` + strings.Repeat("a", maxAnswerSize) + `"}`, nil, "answer larger than 1048576 bytes"},
	}
	for _, tt := range tests {
		for _, chunking := range []struct {
			name string
			r    func(string) io.Reader
		}{
			{"whole", func(s string) io.Reader { return strings.NewReader(s) }},
			{"byte by byte", func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) }},
			{"halves", func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) }},
		} {
			t.Run(tt.name+"/"+chunking.name, func(t *testing.T) {
				got, err := readAll(chunking.r(tt.in))
				var states []interpreter.State
				for _, a := range got {
					states = append(states, a.res.State)
				}
				if !reflect.DeepEqual(states, tt.answers) {
					t.Errorf("answers %v, want %v", states, tt.answers)
				}
				switch {
				case tt.errSub == "" && err != io.EOF:
					t.Errorf("stream ended with %v, want io.EOF", err)
				case tt.errSub != "" && (err == nil || !strings.Contains(err.Error(), tt.errSub)):
					t.Errorf("stream ended with %v, want an error containing %q", err, tt.errSub)
				}
			})
		}
	}
}

func TestAnswerReaderLargeAnswerThenSmall(t *testing.T) {
	big := `{"type":"neg","pad":"` + strings.Repeat("a", 2*keepBuffer) + `"}`
	got, err := readAll(strings.NewReader(big + "\n" + boundOne + "\n"))
	if err != io.EOF || len(got) != 2 || got[0].res.State != interpreter.NotFound || got[1].res.State != interpreter.Bound {
		t.Fatalf("got %d answers, %v", len(got), err)
	}
}

func TestAnswerReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := readAll(io.MultiReader(strings.NewReader(boundOne[:10]), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want it to wrap %v", err, boom)
	}
}

// FuzzAnswerStream feeds arbitrary bytes to the stream parser: it must not
// panic, every Bound answer must hold valid addresses with positive finite
// weights, every Failed answer an error, and the chunking of the bytes must
// not change what is read.
func FuzzAnswerStream(f *testing.F) {
	for _, tt := range parseTests {
		f.Add([]byte(tt.in + "\n"))
	}
	f.Add([]byte(boundOne + "\n" + boundTwo + "\n" + negative + "\n"))
	f.Add([]byte(boundOne + boundTwo))
	f.Add([]byte("Invalid path: /x\n"))
	f.Add([]byte(`{"type":"bound","addrs":[{"ip":"::1","port":1,"meta":{"endpoint_addr_weight":1e-300}}]}`))
	f.Add([]byte(`{"type":"bound","addrs":[{"ip":"fe80::1%eth0","port":1}]}{"type":"pending"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		whole, errWhole := readAll(bytes.NewReader(data))
		for i, a := range whole {
			checkAnswer(t, i, a)
		}
		bytewise, errBytewise := readAll(iotest.OneByteReader(bytes.NewReader(data)))
		if !reflect.DeepEqual(stripErrs(whole), stripErrs(bytewise)) || errString(errWhole) != errString(errBytewise) {
			t.Fatalf("chunking changed the result: %v, %v vs %v, %v", whole, errWhole, bytewise, errBytewise)
		}
	})
}

func checkAnswer(t *testing.T, i int, a answer) {
	if a.pending {
		return
	}
	switch a.res.State {
	case interpreter.Bound:
		for _, e := range a.res.Endpoints {
			if !e.Addr.IsValid() || e.Addr.Port() == 0 {
				t.Fatalf("answer %d: invalid address %v", i, e.Addr)
			}
			if !(e.Weight > 0) || math.IsInf(e.Weight, 0) {
				t.Fatalf("answer %d: weight %v of %v is not positive and finite", i, e.Weight, e.Addr)
			}
		}
	case interpreter.Failed:
		if a.res.Err == nil {
			t.Fatalf("answer %d: Failed without an error", i)
		}
	case interpreter.NotFound:
	default:
		t.Fatalf("answer %d: state %v", i, a.res.State)
	}
}

// stripErrs replaces errors by their text, so answers compare by value.
func stripErrs(as []answer) []any {
	out := make([]any, len(as))
	for i, a := range as {
		out[i] = []any{a.pending, a.res.State, a.res.Endpoints, errString(a.res.Err), len(a.dropped)}
	}
	return out
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
