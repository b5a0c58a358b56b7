package main

import (
	"net"
	"testing"
)

const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1451 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1B58 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0000000000000000 20 4 30 10 -1
   3: 0200007F:2328 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1004 1 0000000000000000 100 0 0 10 0
`

func TestParseListening(t *testing.T) {
	got := parseListening([]byte(procNetTCP), []int{5201, 8080, 7000, 9000, 1})
	want := map[int]bool{5201: true, 8080: true}
	if len(got) != len(want) || !got[5201] || !got[8080] {
		t.Fatalf("listening = %v, want %v (7000 is established, 9000 on 127.0.0.2)", got, want)
	}
}

func TestListeningPorts(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	found, err := listeningPorts([]int{port})
	if err != nil {
		t.Fatal(err)
	}
	if !found[port] {
		t.Fatalf("port %d not seen listening", port)
	}
	ln.Close()
	if found, _ := listeningPorts([]int{port}); found[port] {
		t.Fatalf("port %d still seen listening after close", port)
	}
}
