package consul

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"slices"
	"strconv"

	"github.com/switchyard-proxy/switchyard/interpreter"
)

const (
	// maxBodySize bounds one health response. An entry with its checks
	// is a few kilobytes, so this is tens of thousands of instances.
	maxBodySize = 128 << 20
	// maxTextSize bounds the part of an error body or a malformed
	// response kept for the Failed answer and the logs.
	maxTextSize = 256
)

// An answer is one health response, decoded.
type answer struct {
	res     interpreter.Resolution // Bound, NotFound, or Failed when every instance is unusable
	dropped []error                // Bound only: instances left out, each with why
}

var errTooLarge = errors.New("response too large")

// readHealth decodes a health response: a JSON array of service entries,
// read one entry at a time. Its error is for a body that is not such an
// array; an entry that cannot be used is dropped and listed, and when there
// were entries and none can be used the answer is Failed rather than an
// empty set, so that a broken registration does not take a name's
// endpoints away. An empty array (what Consul answers for a service it does
// not know, or with no passing instance) is NotFound.
func readHealth(r io.Reader) (answer, error) { return readHealthMax(r, maxBodySize) }

// readHealthMax is readHealth for a body of at most limit bytes.
func readHealthMax(r io.Reader, limit int64) (answer, error) {
	dec := json.NewDecoder(&limitedReader{r: r, n: limit})
	tok, err := dec.Token()
	if err != nil {
		return answer{}, bodyError(err, "")
	}
	if tok == nil { // null: nothing registered
		return answer{res: interpreter.NotFoundAnswer()}, trailing(dec)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return answer{}, fmt.Errorf("response is not a JSON array of service entries (starts with %s)", describeToken(tok))
	}
	var (
		eps     []interpreter.Endpoint
		dropped []error
		n       int
	)
	for ; dec.More(); n++ {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return answer{}, bodyError(err, fmt.Sprintf(" in entry %d", n))
		}
		ep, err := parseEntry(raw)
		if err != nil {
			dropped = append(dropped, fmt.Errorf("entry %d: %w", n, err))
			continue
		}
		eps = append(eps, ep)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return answer{}, bodyError(err, "")
	}
	if err := trailing(dec); err != nil {
		return answer{}, err
	}
	switch {
	case n == 0:
		return answer{res: interpreter.NotFoundAnswer()}, nil
	case len(eps) == 0:
		return answer{res: interpreter.FailedWith(fmt.Errorf("no instance of %d can be used, e.g. %w", n, dropped[0]))}, nil
	}
	slices.SortFunc(eps, compareEndpoints)
	return answer{res: interpreter.BoundTo(eps), dropped: dropped}, nil
}

// trailing checks that nothing but white space follows the array.
func trailing(dec *json.Decoder) error {
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return errors.New("response has data after its JSON array")
		}
		return bodyError(err, " after its JSON array")
	}
	return nil
}

// bodyError says what is wrong with a response body, where.
func bodyError(err error, where string) error {
	var syn *json.SyntaxError
	switch {
	case errors.Is(err, errTooLarge):
		return fmt.Errorf("%w: larger than %d bytes", errTooLarge, maxBodySize)
	case err == io.EOF:
		return errors.New("response body is empty")
	case err == io.ErrUnexpectedEOF:
		return fmt.Errorf("response ended early%s: %w", where, err)
	case errors.As(err, &syn):
		return fmt.Errorf("response is not valid JSON%s: %v", where, err)
	}
	return fmt.Errorf("reading the response%s: %w", where, err)
}

func describeToken(tok json.Token) string {
	switch tok := tok.(type) {
	case json.Delim:
		return strconv.Quote(tok.String())
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return "a number"
}

// limitedReader reads at most n bytes of r, then fails with errTooLarge.
// Each read fills p as far as r goes: json.Decoder scans again the white
// space it holds at each read until something else comes, so that many
// small reads of a long run of it would cost quadratic time.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Only an error if there is more to read.
		var one [1]byte
		if k, err := io.ReadFull(l.r, one[:]); k == 0 {
			return 0, err
		}
		return 0, errTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	k, err := io.ReadFull(l.r, p)
	l.n -= int64(k)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return k, err
}

// The parts of a service entry used here; Consul sends many more, and
// unknown fields are ignored.
type wireEntry struct {
	Node    *wireNode    `json:"Node"`
	Service *wireService `json:"Service"`
}

type wireNode struct {
	Node    string `json:"Node"`
	Address string `json:"Address"`
}

type wireService struct {
	ID      string       `json:"ID"`
	Address string       `json:"Address"`
	Port    int64        `json:"Port"`
	Weights *wireWeights `json:"Weights"`
}

type wireWeights struct {
	Passing int64 `json:"Passing"`
}

// parseEntry decodes one service entry into an endpoint: the service's
// address, or the node's when the service has none, with the service's
// port, weighted by Weights.Passing (1 when absent or 0).
func parseEntry(raw json.RawMessage) (interpreter.Endpoint, error) {
	var e wireEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return interpreter.Endpoint{}, jsonFieldError(err, raw)
	}
	if e.Service == nil {
		return interpreter.Endpoint{}, errors.New("no Service")
	}
	var node wireNode
	if e.Node != nil {
		node = *e.Node
	}
	addr, err := endpointAddr(e.Service.Address, node.Address, e.Service.Port)
	if err != nil {
		return interpreter.Endpoint{}, fmt.Errorf("%s: %w", instance(e.Service.ID, node.Node), err)
	}
	weight := 1.0
	if e.Service.Weights != nil {
		switch p := e.Service.Weights.Passing; {
		case p < 0:
			return interpreter.Endpoint{}, fmt.Errorf("%s: Weights.Passing %d is negative", instance(e.Service.ID, node.Node), p)
		case p > 0:
			weight = float64(p)
		}
	}
	return interpreter.Endpoint{Addr: addr, Weight: weight}, nil
}

// endpointAddr is where an instance is reached: its service address, or its
// node's when the service has none, which must be a literal IP address (a
// host name is not resolved), and port, in 1-65535.
func endpointAddr(serviceAddr, nodeAddr string, port int64) (netip.AddrPort, error) {
	addr, which := serviceAddr, "service address"
	if addr == "" {
		addr, which = nodeAddr, "node address"
	}
	if addr == "" {
		return netip.AddrPort{}, errors.New("no address: the service's and the node's are both empty")
	}
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%s %s is not an IP address (host names are not resolved)", which, clip(addr))
	}
	if port < 1 || port > 65535 {
		return netip.AddrPort{}, fmt.Errorf("port %d of %s is not in 1-65535", port, ip)
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// instance names a service instance for messages.
func instance(id, node string) string {
	switch {
	case id == "" && node == "":
		return "instance"
	case node == "":
		return fmt.Sprintf("instance %s", clip(id))
	}
	return fmt.Sprintf("instance %s on node %s", clip(id), clip(node))
}

// jsonFieldError turns an unmarshalling error into a message in JSON's
// words, without Go's type names.
func jsonFieldError(err error, raw json.RawMessage) error {
	var ute *json.UnmarshalTypeError
	if !errors.As(err, &ute) {
		return fmt.Errorf("entry %s: %v", clip(string(raw)), err)
	}
	if ute.Field == "" {
		return fmt.Errorf("entry is %s, not an object", ute.Value)
	}
	want := "an object"
	switch ute.Type.Kind() {
	case reflect.String:
		want = "a string"
	case reflect.Int64:
		want = "an integer"
	}
	return fmt.Errorf("%s is %s, not %s", ute.Field, ute.Value, want)
}

// clip quotes s, at most 64 bytes of it.
func clip(s string) string {
	const n = 64
	if len(s) > n {
		return strconv.Quote(s[:n]) + "..."
	}
	return strconv.Quote(s)
}

// excerpt quotes at most maxTextSize bytes of b, trimmed, marking a cut.
func excerpt(b []byte) string {
	b = bytes.TrimSpace(b)
	cut := len(b) > maxTextSize
	if cut {
		b = b[:maxTextSize]
	}
	q := strconv.Quote(string(b))
	if cut {
		q += " (cut)"
	}
	return q
}

// compareEndpoints orders a set canonically, so that equal sets compare
// equal whatever order Consul listed them in.
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
