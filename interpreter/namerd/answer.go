package namerd

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strconv"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

const (
	// maxAnswerSize bounds one JSON object of a response, so that a
	// broken server cannot make a watch grow without limit.
	maxAnswerSize = 1 << 20
	// maxTextSize bounds the part of a non-JSON message or error body
	// kept for the Failed answer and the logs.
	maxTextSize = 256
	// keepBuffer is the largest object buffer an answerReader keeps
	// between answers; a larger one, after a rare large answer, is let go.
	keepBuffer = 64 << 10
)

// An answer is one object of namerd's resolve API, decoded.
type answer struct {
	res     interpreter.Resolution // unset when pending
	pending bool                   // namerd has no value yet
	dropped []error                // Bound only: address entries left out, each with why
}

// An answerReader reads the answers of one response body: JSON objects,
// each usually followed by "\n", found in the byte stream whatever the
// chunking. namerd ends a failing watch with a line of plain text instead.
type answerReader struct {
	r    *bufio.Reader
	obj  []byte // the object being read
	open []byte // the closing brackets due in obj, innermost last
	// begin and end, when set, are called when an answer's first byte
	// arrives and when the answer is complete, so that the caller can
	// bound the time one answer takes without bounding the stream.
	begin, end func()
}

func newAnswerReader(r io.Reader) *answerReader {
	return &answerReader{r: bufio.NewReader(r)}
}

// Next reads the next answer. An error means the stream cannot go on: io.EOF
// when it ended between answers; otherwise what is wrong, with a bounded
// excerpt of what the server sent. An answer that is valid JSON but not a
// usable one is not an error: it is a Failed answer, and the stream goes on.
func (a *answerReader) Next() (answer, error) {
	raw, err := a.nextObject()
	if err != nil {
		return answer{}, err
	}
	if a.end != nil {
		a.end()
	}
	return parseAnswer(raw)
}

// nextObject returns the bytes of the next top-level JSON object, valid
// until the next call. It matches braces and brackets outside strings, so
// that an object ends where its closing brace is, whatever the chunking,
// and leaves the rest of the syntax to encoding/json.
func (a *answerReader) nextObject() ([]byte, error) {
	c, err := a.skipSpace()
	if err != nil {
		return nil, err
	}
	if a.begin != nil {
		a.begin()
	}
	if c != '{' {
		return nil, a.textError(c)
	}
	if cap(a.obj) > keepBuffer {
		a.obj, a.open = nil, nil
	}
	a.obj = append(a.obj[:0], c)
	a.open = append(a.open[:0], '}')
	inString, escaped := false, false
	for len(a.open) > 0 {
		c, err := a.r.ReadByte()
		if err == io.EOF {
			return nil, fmt.Errorf("stream ended inside an answer, after %d bytes: %w", len(a.obj), io.ErrUnexpectedEOF)
		}
		if err != nil {
			return nil, fmt.Errorf("reading an answer: %w", err)
		}
		if len(a.obj) == maxAnswerSize {
			return nil, fmt.Errorf("answer larger than %d bytes", maxAnswerSize)
		}
		a.obj = append(a.obj, c)
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{':
			a.open = append(a.open, '}')
		case c == '[':
			a.open = append(a.open, ']')
		case c == '}' || c == ']':
			if want := a.open[len(a.open)-1]; c != want {
				return nil, fmt.Errorf("malformed answer %s: %q where %q was due", excerpt(a.obj), c, want)
			}
			a.open = a.open[:len(a.open)-1]
		}
	}
	return a.obj, nil
}

// skipSpace returns the first byte that is not JSON white space.
func (a *answerReader) skipSpace() (byte, error) {
	for {
		c, err := a.r.ReadByte()
		if err != nil {
			if err != io.EOF {
				err = fmt.Errorf("reading answers: %w", err)
			}
			return 0, err
		}
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return c, nil
		}
	}
}

// textError reads the rest of a line that began with first where an answer
// should be (namerd's error text), up to maxTextSize bytes.
func (a *answerReader) textError(first byte) error {
	text := []byte{first}
	for len(text) <= maxTextSize {
		c, err := a.r.ReadByte()
		if err != nil || c == '\n' {
			break
		}
		text = append(text, c)
	}
	return fmt.Errorf("server sent text instead of an answer: %s", excerpt(text))
}

// drain reads what is left of a response after its answer, at most max
// bytes, so that the connection can be used again.
func (a *answerReader) drain(max int64) {
	// A failure only costs the connection.
	_, _ = io.Copy(io.Discard, io.LimitReader(a.r, max))
}

// excerpt quotes at most maxTextSize bytes of b, without the trailing line
// end, marking a cut.
func excerpt(b []byte) string {
	cut := len(b) > maxTextSize
	if cut {
		b = b[:maxTextSize]
	}
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	q := strconv.Quote(string(b))
	if cut {
		q += " (cut)"
	}
	return q
}

// clip is raw JSON for a message, at most 64 bytes of it.
func clip(raw json.RawMessage) string {
	const n = 64
	if len(raw) > n {
		return string(raw[:n]) + "..."
	}
	return string(raw)
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// wireAnswer is an answer's top level. Fields are kept raw so that a field
// of an unexpected type makes a Failed answer, not a broken stream.
type wireAnswer struct {
	Type  json.RawMessage `json:"type"`
	Addrs json.RawMessage `json:"addrs"`
	Cause json.RawMessage `json:"cause"`
}

// parseAnswer decodes one object. Its error is for bytes that are not a JSON
// object; unknown fields are ignored.
func parseAnswer(raw []byte) (answer, error) {
	var w wireAnswer
	if err := json.Unmarshal(raw, &w); err != nil {
		return answer{}, fmt.Errorf("malformed answer %s: %v", excerpt(raw), err)
	}
	var typ string
	if isNull(w.Type) {
		return failed(errors.New("answer without a type")), nil
	}
	if err := json.Unmarshal(w.Type, &typ); err != nil {
		return failed(fmt.Errorf("answer type %s is not a string", clip(w.Type))), nil
	}
	switch typ {
	case "bound":
		return parseBound(w.Addrs), nil
	case "neg":
		return answer{res: interpreter.NotFoundAnswer()}, nil
	case "failed":
		return failed(fmt.Errorf("resolution failed: %s", cause(w.Cause))), nil
	case "pending":
		return answer{pending: true}, nil
	}
	return failed(fmt.Errorf("answer of unknown type %q", typ)), nil
}

func failed(err error) answer { return answer{res: interpreter.FailedWith(err)} }

func cause(raw json.RawMessage) string {
	var s string
	if isNull(raw) {
		return "(no cause given)"
	}
	if json.Unmarshal(raw, &s) != nil {
		s = clip(raw)
	}
	if len(s) > maxTextSize {
		s = s[:maxTextSize] + " (cut)"
	}
	return s
}

// parseBound decodes the addresses of a bound answer, in a canonical order.
// Invalid entries are dropped and listed; when there were some and all are
// invalid, the answer is Failed rather than an empty set, so that a broken
// server does not take a name's endpoints away.
func parseBound(addrs json.RawMessage) answer {
	if isNull(addrs) {
		return failed(errors.New(`"bound" answer without addrs`))
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(addrs, &entries); err != nil {
		return failed(fmt.Errorf("addrs %s is not an array", clip(addrs)))
	}
	eps := make([]interpreter.Endpoint, 0, len(entries))
	var dropped []error
	for i, raw := range entries {
		ep, err := parseAddr(raw)
		if err != nil {
			dropped = append(dropped, fmt.Errorf("addrs[%d]: %w", i, err))
			continue
		}
		eps = append(eps, ep)
	}
	if len(eps) == 0 && len(dropped) > 0 {
		return failed(fmt.Errorf("every address of the answer is invalid (%d), e.g. %w", len(dropped), dropped[0]))
	}
	slices.SortFunc(eps, compareEndpoints)
	return answer{res: interpreter.BoundTo(eps), dropped: dropped}
}

type wireAddr struct {
	IP   json.RawMessage `json:"ip"`
	Port json.RawMessage `json:"port"`
	Meta json.RawMessage `json:"meta"`
}

type wireMeta struct {
	Weight json.RawMessage `json:"endpoint_addr_weight"`
}

// parseAddr decodes one entry of addrs: an IP literal, a port 1-65535 and
// meta.endpoint_addr_weight, a positive finite number (1 when absent).
func parseAddr(raw json.RawMessage) (interpreter.Endpoint, error) {
	var w wireAddr
	if err := json.Unmarshal(raw, &w); err != nil {
		return interpreter.Endpoint{}, fmt.Errorf("%s is not an address object", clip(raw))
	}
	var ip string
	if isNull(w.IP) {
		return interpreter.Endpoint{}, errors.New("no ip")
	}
	if err := json.Unmarshal(w.IP, &ip); err != nil {
		return interpreter.Endpoint{}, fmt.Errorf("ip %s is not a string", clip(w.IP))
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return interpreter.Endpoint{}, fmt.Errorf("ip %q is not an IP address", clip(json.RawMessage(ip)))
	}
	if isNull(w.Port) {
		return interpreter.Endpoint{}, fmt.Errorf("%s has no port", addr)
	}
	port, err := strconv.ParseUint(string(w.Port), 10, 16)
	if err != nil || port == 0 {
		return interpreter.Endpoint{}, fmt.Errorf("port %s of %s is not an integer in 1-65535", clip(w.Port), addr)
	}
	ep := interpreter.Endpoint{Addr: netip.AddrPortFrom(addr, uint16(port)), Weight: 1}
	if ep.Weight, err = parseWeight(w.Meta); err != nil {
		return interpreter.Endpoint{}, fmt.Errorf("%s: %w", ep.Addr, err)
	}
	return ep, nil
}

func parseWeight(meta json.RawMessage) (float64, error) {
	if isNull(meta) {
		return 1, nil
	}
	var m wireMeta
	if err := json.Unmarshal(meta, &m); err != nil {
		return 0, fmt.Errorf("meta %s is not an object", clip(meta))
	}
	if isNull(m.Weight) {
		return 1, nil
	}
	var w float64
	if err := json.Unmarshal(m.Weight, &w); err != nil {
		return 0, fmt.Errorf("endpoint_addr_weight %s is not a representable number", clip(m.Weight))
	}
	if w <= 0 || math.IsInf(w, 0) || math.IsNaN(w) {
		return 0, fmt.Errorf("endpoint_addr_weight %s must be greater than 0", clip(m.Weight))
	}
	return w, nil
}

// compareEndpoints orders a set canonically, so that equal sets compare
// equal whatever order namerd listed them in.
func compareEndpoints(a, b interpreter.Endpoint) int {
	if c := a.Addr.Compare(b.Addr); c != 0 {
		return c
	}
	switch {
	case a.Weight < b.Weight:
		return -1
	case a.Weight > b.Weight:
		return 1
	}
	return 0
}
