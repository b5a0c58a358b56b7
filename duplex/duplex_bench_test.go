package duplex

import (
	"fmt"
	"net"
	"testing"
)

// BenchmarkDuplex pushes b.N chunks through a duplex on a running loop,
// between real loopback TCP connections (see rig), with the router's
// default pool: 1 MiB pipes, a 64 KiB copy buffer. Chunks of up to the
// buffer's size that arrive one at a time are copied; once a read fills the
// buffer, a direction splices. The timer runs from the first write to the
// last byte read.
//
//   - dir=up: the client writes, the server reads.
//   - dir=both: both write and read at once; bytes count both ways.
//
// allocs/op counts the whole process: the loop, and the writers and readers
// on Go's net package. The duplex's own share is checked to be zero by
// TestDuplexSteadyStateAllocs.
func BenchmarkDuplex(b *testing.B) {
	for _, chunk := range []int{512, 4096, 65536, 1 << 20} {
		for _, dir := range []string{"up", "both"} {
			b.Run(fmt.Sprintf("chunk=%d/dir=%s", chunk, dir), func(b *testing.B) {
				benchmarkDuplex(b, chunk, dir == "both")
			})
		}
	}
}

func benchmarkDuplex(b *testing.B, chunk int, both bool) {
	r := newRig(b, defaultPipeSize, defaultMaxPipes, defaultBufSize)
	flows := []flow{{from: r.client, to: r.server}}
	if both {
		flows = append(flows, flow{from: r.server, to: r.client})
	}
	payload := make([]byte, chunk)
	total := int64(b.N) * int64(chunk)
	buf := make([]byte, 1<<20)
	errc := make(chan error, 2*len(flows))
	b.SetBytes(int64(len(flows) * chunk))
	b.ReportAllocs()
	b.ResetTimer()
	for _, f := range flows {
		go f.write(payload, b.N, errc)
		go f.read(buf[:len(buf)/len(flows)], total, errc)
	}
	// A duplex that fails closes its sockets, which ends the others' waits.
	for i := 0; i < 2*len(flows); i++ {
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	for _, f := range flows {
		if err := f.from.CloseWrite(); err != nil {
			b.Fatal(err)
		}
	}
	if !both {
		if err := r.server.CloseWrite(); err != nil {
			b.Fatal(err)
		}
	}
	c := r.wait(b)
	if c.status != Finished {
		b.Fatalf("status %s (%v), want Finished", statusName(c.status), c.err)
	}
	if c.up != uint64(total) {
		b.Fatalf("Bytes() up = %d, want %d", c.up, total)
	}
}

// flow is one direction of the benchmark: from writes, to reads.
type flow struct{ from, to *net.TCPConn }

// write writes n times p, named so that stack dumps of a stuck benchmark
// read well.
func (f flow) write(p []byte, n int, errc chan<- error) {
	for i := 0; i < n; i++ {
		if _, err := f.from.Write(p); err != nil {
			errc <- fmt.Errorf("write: %w", err)
			return
		}
	}
	errc <- nil
}

// read reads until total bytes have arrived.
func (f flow) read(buf []byte, total int64, errc chan<- error) {
	for got := int64(0); got < total; {
		n, err := f.to.Read(buf)
		got += int64(n)
		if err != nil {
			errc <- fmt.Errorf("read after %d of %d bytes: %w", got, total, err)
			return
		}
	}
	errc <- nil
}
