#!/usr/bin/env bash
# gen.sh regenerates destpb/ from proto/: the messages and the client and
# server stubs of linkerd2's Destination API. `make proto` runs it. The
# generated files are committed, so building and CI need neither protoc nor
# the plugins; run this only after editing proto/.
#
# The plugins are pinned here and built from the Go module proxy into a
# temporary directory, so that whatever else is on PATH is not used. protoc
# is Debian's protobuf-compiler: installed with apt-get when missing and
# running as root, else named for you to install. Another protoc version
# changes only the version comment at the top of the .pb.go files.
set -euo pipefail

PROTOC_GEN_GO_VERSION=v1.36.12    # google.golang.org/protobuf, as in go.mod
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2 # google.golang.org/grpc/cmd/protoc-gen-go-grpc

cd "$(dirname "$0")"

if ! command -v protoc >/dev/null; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "gen.sh: installing protoc (Debian's protobuf-compiler)" >&2
		apt-get install -y protobuf-compiler >/dev/null ||
			{ apt-get update >/dev/null && apt-get install -y protobuf-compiler >/dev/null; }
	else
		echo "gen.sh: protoc not found: install Debian's protobuf-compiler (apt-get install -y protobuf-compiler) and run again" >&2
		exit 1
	fi
fi

plugins=$(mktemp -d)
trap 'rm -rf "$plugins"' EXIT
export GOTOOLCHAIN=local
GOBIN=$plugins go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
GOBIN=$plugins go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

rm -f destpb/*.pb.go
PATH="$plugins:$PATH" protoc -I proto \
	--go_out=destpb --go_opt=paths=source_relative \
	--go-grpc_out=destpb --go-grpc_opt=paths=source_relative \
	proto/net.proto proto/destination.proto
echo "gen.sh: wrote $(cd destpb && echo *.pb.go) with $(protoc --version), protoc-gen-go $PROTOC_GEN_GO_VERSION, protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC_VERSION" >&2
