// Package duplex moves bytes both ways between two connected TCP sockets
// owned by one event loop: client → upstream and upstream → client, each by
// splice(2) through a pipe, so payload never enters user space.
//
// A pipe is taken from the loop's bounded Pool only while it holds bytes and
// goes back as soon as it is empty: an idle proxied connection holds its two
// sockets and nothing else. When the pool is exhausted, or the kernel refuses
// to splice a socket (EINVAL), a direction copies through the loop's shared
// buffer instead, peeking at the source and discarding exactly what the
// destination took, so it still holds no memory of its own between batches.
//
// Backpressure: while the destination cannot take more, the source is not
// read, and TCP flow control pushes back on the sender. Half-close: EOF on
// one side becomes shutdown(SHUT_WR) on the other once everything read
// before it has been written; the other direction keeps flowing.
package duplex
