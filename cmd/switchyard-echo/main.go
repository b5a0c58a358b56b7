// Command switchyard-echo is a TCP echo server for trying the router by hand
// and for benchmarks: every connection gets its bytes back until it half-closes,
// then the server closes its write side too.
//
// A connection whose first byte is 'K' (0x4B) gets every byte back Amplify
// (16) times, so that one server also answers small requests with larger
// replies: 64 B of 'K' get 1 KiB back. Every other connection is echoed as
// it came, whatever bytes it sends.
//
//	switchyard-echo -listen 127.0.0.1:7007
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("switchyard-echo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:7007", "`address` to listen on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "switchyard-echo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Error("listen failed", "err", err)
		return 1
	}
	log.Info("listening on " + ln.Addr().String())
	go closeOnDone(ctx, ln)

	if err := serve(ln); err != nil && ctx.Err() == nil {
		log.Error("accept failed", "err", err)
		return 1
	}
	log.Info("stopped")
	return 0
}

// closeOnDone closes ln when ctx ends, which makes serve return.
func closeOnDone(ctx context.Context, ln net.Listener) {
	<-ctx.Done()
	ln.Close()
}

// serve accepts connections on ln and echoes each one in its own goroutine.
// It returns nil once ln is closed, or the first other accept error.
// Connections already accepted keep running until their peers close them.
func serve(ln net.Listener) error {
	for {
		c, err := ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return err
		}
		go echoConn(c)
	}
}

// echoConn copies c's input back to c until EOF, then half-closes the write
// side so the peer sees EOF after the last echoed byte. It copies through a
// small buffer rather than io.Copy: between two TCP connections io.Copy
// splices through a pipe held for the connection's whole life (two more
// fds), which would make the echo server, not the proxy under test, run
// out of descriptors first in an idle-connections benchmark.
func echoConn(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 16<<10)
	var big []byte // for amplified replies
	first, amplify := true, false
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if first {
				first, amplify = false, buf[0] == Amplified
			}
			out := buf[:n]
			if amplify {
				big = Answer(big[:0], out)
				out = big
			}
			if _, werr := c.Write(out); werr != nil {
				return
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Amplified is the first byte of a connection whose bytes come back Amplify
// times each.
const (
	Amplified = 'K'
	Amplify   = 16
)

// Answer appends to dst an amplified connection's reply to p: every byte
// Amplify times. It works byte by byte, so a request split across reads
// gets the same reply as a whole one.
func Answer(dst, p []byte) []byte {
	for _, b := range p {
		for range Amplify {
			dst = append(dst, b)
		}
	}
	return dst
}
