#!/bin/sh
# Prints the path of a promtool binary, fetching it if needed.  Debian 12
# ships promtool only inside the prometheus package; installing that would
# also install (and try to start) the server, so the .deb is downloaded and
# only promtool is extracted, into DIR (default: build/.promtool).
# Usage: sh scripts/promtool.sh [DIR]
set -eu
command -v promtool >/dev/null 2>&1 && { command -v promtool; exit 0; }
dir=${1:-"$(cd "$(dirname "$0")/.." && pwd)/build/.promtool"}
bin="$dir/usr/bin/promtool"
[ -x "$bin" ] && { echo "$bin"; exit 0; }
mkdir -p "$dir"
(cd "$dir" && apt-get download -qq prometheus >/dev/null 2>&1) || {
  echo "promtool.sh: apt-get download prometheus failed" >&2; exit 1; }
dpkg-deb -x "$dir"/prometheus_*.deb "$dir" && rm -f "$dir"/prometheus_*.deb
[ -x "$bin" ] || { echo "promtool.sh: no usr/bin/promtool in the package" >&2; exit 1; }
echo "$bin"
