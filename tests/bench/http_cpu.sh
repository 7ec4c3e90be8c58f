#!/bin/bash
# Server CPU per GET, HTTP next to protobuf, for one or two custosd binaries
# alternated back to back (docs/performance.md, "HTTP API next to protobuf").
#
#   BUILD=/tmp/b tests/bench/http_cpu.sh CUSTOSD_A [CUSTOSD_B] [ROUNDS]
#
# Starts one custosd per binary (tests/blackbox/lib.sh: 127.0.0.1, real TLS
# and LMDB, log_level info), stores bench/k (KV v1) and kv/bench/v2 (KV v2),
# 100-byte values, then per round and binary: KV v1 GET over protobuf
# (custos-bench, 1 connection, pipeline 32) and over HTTP (http_get.py, 32
# in flight), KV v2 GET over protobuf and HTTP (kv2_bench.py).  Prints the
# server's CPU time per request (utime+stime of custosd from /proc/PID/stat
# around each run) and, at the end, the median of each column.  A benchmark,
# not a test: it fails only when a run fails.  N1 / N2: requests per v1 / v2
# run (100000 / 60000).
set -euo pipefail
BUILD=${BUILD:?set BUILD to a build directory with custos and custos-bench}
A=$1; Bbin=${2:-}; ROUNDS=${3:-3}
export CUSTOSD=$A CUSTOS=$BUILD/custos
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../blackbox/lib.sh"
N1=${N1:-100000}; N2=${N2:-60000}
value=$(head -c 100 /dev/zero | tr '\0' x)
setup() { # NAME BINARY
  CUSTOSD=$2
  start_server "$1"
  init_server "$1" 3 2
  stop_server "$1"
  sed -i 's/log_level = "debug";/log_level = "info";/' "$WORK/$1/custos.conf"
  start_server "$1"
  unseal_with "$1" 1 2
  eval "TOKEN_$1=\$TOKEN"
  cli "$1" kv put bench/k v="$value" >/dev/null
  cli "$1" kv put --mount kv bench/v2 v="$value" >/dev/null
}
names=a
setup a "$A"
if [ -n "$Bbin" ]; then setup b "$Bbin"; names="a b"; fi
tck=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
run() { # NAME LABEL N cmd...
  local name=$1 label=$2 n=$3; shift 3
  local pid c0 c1
  pid=$(eval echo "\$PID_$name")
  c0=$(cpu "$pid")
  "$@" >/dev/null || fail "$label run failed"
  c1=$(cpu "$pid")
  local us; us=$(echo "($c1 - $c0) * 1000000 / $tck / $n" | bc -l)
  printf '%s %s %.2f load %s\n' "$name" "$label" "$us" "$(cut -d' ' -f1 /proc/loadavg)" | tee -a "$WORK/results"
}
for r in $(seq 1 "$ROUNDS"); do
  for s in $names; do
    port=$(eval echo "\$PORT_$s"); tok=$(eval echo "\$TOKEN_$s"); ca=$WORK/tls/ca.crt
    run "$s" v1_proto "$N1" "$BUILD/custos-bench" --connections 1 --pipeline 32 --op get --keys 1 \
      --value-size 100 --requests "$N1" --addr "127.0.0.1:$port" --ca-cert "$ca" --token "$tok"
    run "$s" v1_http "$N1" /usr/bin/python3 "$HERE/http_get.py" "$port" "$ca" "$tok" "$N1" 32
    run "$s" v2_proto "$N2" /usr/bin/python3 "$HERE/kv2_bench.py" "$port" "$ca" "$tok" proto get "$N2" 32
    run "$s" v2_http "$N2" /usr/bin/python3 "$HERE/kv2_bench.py" "$port" "$ca" "$tok" http get "$N2" 32
  done
done
echo "medians (us of server CPU per request):"
for s in $names; do
  for l in v1_proto v1_http v2_proto v2_http; do
    awk -v s="$s" -v l="$l" '$1 == s && $2 == l {print $3}' "$WORK/results" | sort -n |
      awk -v s="$s" -v l="$l" '{v[NR] = $1} END {m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %s %.2f (%d runs)\n", s, l, m, NR}'
  done
done
