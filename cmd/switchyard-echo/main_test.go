package main

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func startEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ln) }()
	t.Cleanup(func() {
		ln.Close()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c.(*net.TCPConn)
}

func TestEcho(t *testing.T) {
	addr := startEcho(t)
	tests := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one byte", 1},
		{"small", 64},
		{"larger than socket buffers", 8 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, addr)
			want := bytes.Repeat([]byte("switchyard"), tt.size/10+1)[:tt.size]
			writeErr := make(chan error, 1)
			go func() {
				_, err := c.Write(want)
				if err == nil {
					err = c.CloseWrite()
				}
				writeErr <- err
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := <-writeErr; err != nil {
				t.Fatalf("write: %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("echoed %d bytes, want %d (equal prefix: %v)", len(got), len(want), bytes.HasPrefix(want, got))
			}
		})
	}
}

// TestHalfClose checks that the echo keeps flowing after the client's FIN is
// sent and that the server's FIN comes only after the last echoed byte.
func TestHalfClose(t *testing.T) {
	addr := startEcho(t)
	c := dial(t, addr)
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("first echo = %q, %v; want \"ping\"", buf, err)
	}
	if _, err := c.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read after half-close: %v", err)
	}
	if string(rest) != "pong" {
		t.Fatalf("after half-close got %q, want \"pong\" then EOF", rest)
	}
}

func TestConcurrentConnections(t *testing.T) {
	addr := startEcho(t)
	a, b := dial(t, addr), dial(t, addr)
	// b is served while a is still open: one goroutine per connection.
	for _, c := range []*net.TCPConn{b, a} {
		msg := []byte(c.LocalAddr().String())
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo = %q, %v; want %q", got, err, msg)
		}
	}
}

func TestAnswer(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"K", strings.Repeat("K", Amplify)},
		{"Kab", strings.Repeat("K", Amplify) + strings.Repeat("a", Amplify) + strings.Repeat("b", Amplify)},
		{strings.Repeat("K", 64), strings.Repeat("K", 64*Amplify)},
	} {
		if got := string(Answer(nil, []byte(tt.in))); got != tt.want {
			t.Errorf("Answer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// 64 B requests of Amplified bytes get 1 KiB replies through a real
// connection, whatever the reads split; a connection that starts with
// another byte gets its 'K's back as they came.
func TestAmplifiedReplies(t *testing.T) {
	addr := startEcho(t)
	plain := dial(t, addr)
	if _, err := plain.Write([]byte("aK")); err != nil {
		t.Fatal(err)
	}
	echoed := make([]byte, 2)
	if _, err := io.ReadFull(plain, echoed); err != nil || string(echoed) != "aK" {
		t.Fatalf("plain connection: %q, %v; want \"aK\"", echoed, err)
	}
	c := dial(t, addr)
	req := bytes.Repeat([]byte{Amplified}, 64)
	for i := 0; i < 100; i++ {
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, 100*64*Amplify)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.Repeat([]byte{Amplified}, len(got))) {
		t.Fatal("reply is not all Amplified bytes")
	}
	c.CloseWrite()
	if n, err := c.Read(got[:1]); n != 0 || err != io.EOF {
		t.Fatalf("after the replies: %d bytes, %v; want EOF", n, err)
	}
}

func FuzzAnswer(f *testing.F) {
	f.Add([]byte("aKbK"))
	f.Fuzz(func(t *testing.T, p []byte) {
		got := Answer(nil, p)
		if len(got) != len(p)*Amplify {
			t.Fatalf("len %d, want %d", len(got), len(p)*Amplify)
		}
		for i, b := range p {
			if !bytes.Equal(got[i*Amplify:(i+1)*Amplify], bytes.Repeat([]byte{b}, Amplify)) {
				t.Fatalf("byte %d: %q, want %d × %q", i, got[i*Amplify:(i+1)*Amplify], Amplify, b)
			}
		}
	})
}
