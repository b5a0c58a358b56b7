package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	mdns "github.com/miekg/dns"
)

const (
	// ednsSize is the UDP payload size advertised with EDNS(0): 1232 bytes
	// fit any path without IP fragmentation (DNS Flag Day 2020); larger
	// answers come back truncated and are asked again over TCP.
	ednsSize = 1232
	// udpReadSize is the buffer for one UDP answer, larger than ednsSize
	// for servers that ignore it.
	udpReadSize = 4096
)

// query asks the servers, in order, about (name, qtype) and reads the
// first usable answer: one of rcode NOERROR or NXDOMAIN that is well
// formed. A server that gives none (no answer within the timeout, a network
// error, another rcode, a malformed answer) is counted as an error and the
// next is asked. The error names every server asked and why it failed.
func (r *resolver) query(ctx context.Context, name string, qtype uint16) (records, error) {
	qerr := &queryError{question: typeName(qtype) + " " + name}
	for _, server := range r.servers {
		rec, err := r.ask(ctx, server, name, qtype)
		if err == nil {
			return rec, nil
		}
		if ctx.Err() != nil {
			return records{}, ctx.Err()
		}
		r.stats.Errors.Add(1)
		qerr.failures = append(qerr.failures, &serverError{server, err})
	}
	return records{}, qerr
}

// ask asks one server, over UDP and, when the UDP answer is truncated, at
// once over TCP.
func (r *resolver) ask(ctx context.Context, server, name string, qtype uint16) (records, error) {
	q := new(mdns.Msg).SetQuestion(name, qtype).SetEdns0(ednsSize, false)
	resp, err := r.roundTrip(ctx, "udp", server, q)
	if err == nil && resp.Truncated {
		resp, err = r.roundTrip(ctx, "tcp", server, q)
		switch {
		case err != nil:
			err = fmt.Errorf("over TCP after a truncated UDP answer: %w", err)
		case resp.Truncated:
			err = errors.New("malformed answer: truncated over TCP")
		}
	}
	if err != nil {
		return records{}, err
	}
	if resp.Rcode != mdns.RcodeSuccess && resp.Rcode != mdns.RcodeNameError {
		return records{}, fmt.Errorf("server answered %s", rcodeName(resp.Rcode))
	}
	rec, err := readAnswer(resp, mdns.CanonicalName(name), qtype)
	if err != nil {
		return records{}, fmt.Errorf("malformed answer: %w", err)
	}
	return rec, nil
}

// roundTrip sends q to server over network ("udp" or "tcp") on a new
// socket and reads its answer, within the timeout. Over UDP, a datagram
// that is not a well-formed answer to q is ignored, as it may be forged,
// and the wait goes on; the error then says what was last ignored.
// Cancelling ctx aborts the wait at once.
func (r *resolver) roundTrip(ctx context.Context, network, server string, q *mdns.Msg) (*mdns.Msg, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, network, server)
	if err != nil {
		return nil, r.netError(ctx, network, err, nil)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	c.SetDeadline(deadline)
	defer context.AfterFunc(ctx, func() { c.SetDeadline(aLongTimeAgo) })()

	conn := &mdns.Conn{Conn: c, UDPSize: udpReadSize}
	if err := conn.WriteMsg(q); err != nil {
		return nil, r.netError(ctx, network, err, nil)
	}
	var ignored error // why the last UDP datagram was ignored
	for {
		resp, err := conn.ReadMsg()
		switch {
		case resp == nil:
			return nil, r.netError(ctx, network, err, ignored)
		case err != nil:
			err = fmt.Errorf("malformed answer: %w", err)
		default:
			err = answers(resp, q)
		}
		if err == nil {
			return resp, nil
		}
		if network != "udp" {
			return nil, err
		}
		ignored = err
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// netError says why a round trip failed: err, or in plain words that the
// timeout passed, and then why the datagrams received meanwhile, if any,
// were ignored.
func (r *resolver) netError(ctx context.Context, network string, err, ignored error) error {
	timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		ctx.Err() == nil && errors.Is(err, os.ErrDeadlineExceeded)
	switch {
	case !timedOut:
		return err
	case ignored != nil:
		return fmt.Errorf("%w; no valid answer within %s (%s)", ignored, r.timeout, network)
	}
	return fmt.Errorf("no answer within %s (%s)", r.timeout, network)
}

// answers checks that resp answers q: same ID, a response to a standard
// query, with q's question. Servers may leave the question out of an error
// answer (FORMERR, SERVFAIL, REFUSED), which is then taken as it is.
func answers(resp, q *mdns.Msg) error {
	switch {
	case resp.Id != q.Id:
		return errors.New("malformed answer: wrong ID")
	case !resp.Response || resp.Opcode != mdns.OpcodeQuery:
		return errors.New("malformed answer: not a response to a query")
	case len(resp.Question) == 0 && resp.Rcode != mdns.RcodeSuccess && resp.Rcode != mdns.RcodeNameError:
		return nil
	case len(resp.Question) != 1:
		return fmt.Errorf("malformed answer: %d questions", len(resp.Question))
	}
	want, got := q.Question[0], resp.Question[0]
	if got.Qtype != want.Qtype || got.Qclass != want.Qclass || mdns.CanonicalName(got.Name) != mdns.CanonicalName(want.Name) {
		return fmt.Errorf("malformed answer: for question %s, not %s", questionString(got), questionString(want))
	}
	return nil
}

func questionString(q mdns.Question) string {
	return fmt.Sprintf("%s %s", typeName(q.Qtype), q.Name)
}

func typeName(t uint16) string {
	if s, ok := mdns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

func rcodeName(rc int) string {
	if s, ok := mdns.RcodeToString[rc]; ok {
		return s
	}
	return fmt.Sprintf("rcode %d", rc)
}

// queryError is a query that no server answered usably.
type queryError struct {
	question string // "A example.com."
	failures []error
}

func (e *queryError) Error() string {
	var b strings.Builder
	b.WriteString(e.question)
	for i, f := range e.failures {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(f.Error())
	}
	return b.String()
}

func (e *queryError) Unwrap() []error { return e.failures }

// serverError is why one server gave no usable answer.
type serverError struct {
	server string
	err    error
}

func (e *serverError) Error() string { return e.server + ": " + e.err.Error() }
func (e *serverError) Unwrap() error { return e.err }
