#!/usr/bin/env bash
# Runs bin/switchyard in the foreground for ../shared/bench/run.sh:
#   run.sh --proxy switchyard='dist/bench/switchyard-run.sh {LISTEN} {TARGET} {DIR}'
# LISTEN and TARGET are host:port; DIR is a private temp dir for the config.
set -euo pipefail
listen=$1 target=$2 dir=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cat >"$dir/switchyard.toml" <<T
[admin]
listen = ""            # no admin endpoint: nothing but the proxy measured
drain_timeout = "0s"   # run.sh stops the proxy between runs: no drain

[[routers]]
label = "bench"
  [routers.interpreter]
  kind = "static"
  [routers.interpreter.names]
  "/svc/bench" = ["$target"]
  [[routers.servers]]
  listen = "$listen"
  dst = "/svc/bench"
  max_connections = 20000
T
exec "$here/bin/switchyard" -config "$dir/switchyard.toml"
