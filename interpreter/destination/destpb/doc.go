// Package destpb is the generated Go code of the part of linkerd2's
// Destination API that the destination interpreter uses: the messages of
// ../proto and the client and server stubs of Destination.Get. Every other
// file here is written by ../gen.sh (make proto); do not edit them.
package destpb
