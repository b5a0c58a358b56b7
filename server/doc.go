// Package server accepts connections. A Server listens on one address with
// one SO_REUSEPORT socket per event loop, so the kernel spreads incoming
// connections across loops and each connection lives on the loop that
// accepted it. Every accepted connection is wrapped in an Envelope (source,
// destination name, deadlines) and handed to the server's Dispatcher on that
// loop.
//
// Bounds: at max_connections a server stops accepting (the kernel's backlog
// holds the rest) and resumes when a connection ends. EMFILE and ENFILE pause
// accepting briefly and are counted; a listener never spins.
package server
