#!/usr/bin/env bash
# cluster_put.sh: durable PUT throughput and latency of a 3-node cluster
# (every write a raft entry, committed by a majority and applied to each
# node's LMDB) next to a standalone custosd, same machine, same workload.
# A benchmark, never a test.
#
#   CUSTOSD=build/custosd CUSTOS=build/custos BENCH=build/custos-bench \
#     tests/bench/cluster_put.sh [SECONDS] [CONNECTIONS]
set -euo pipefail
SECS=${1:-10}
CONNS=${2:-50}
TESTS_DIR=$(cd "$(dirname "$0")/.." && pwd)
: "${CUSTOSD:=$TESTS_DIR/../build/custosd}" "${CUSTOS:=$TESTS_DIR/../build/custos}"
: "${BENCH:=$TESTS_DIR/../build/custos-bench}"
export CUSTOSD CUSTOS TESTS_DIR
. "$TESTS_DIR/blackbox/lib.sh"
LOG_LEVEL=warn ELECTION_MS=500 HEARTBEAT_MS=50
# The server's default (CS_SNAPSHOT_THRESHOLD in server/ha/cluster.h, keep
# the two equal); the tests' cluster_lib.sh snapshots every 1024 entries to
# exercise snapshots.
: "${SNAP_THRESHOLD:=8192}"
export SNAP_THRESHOLD
. "$TESTS_DIR/blackbox/cluster_lib.sh"

run_bench() { # ADDR CA TOKEN -> one JSON line
  "$BENCH" --addr "$1" --ca-cert "$2" --token "$3" --connections "$CONNS" --duration "$SECS" \
    --op put --value-size 256 --keys 10000 --format json
}
row() { # NAME JSON
  printf '%-24s %10s %8s %8s %8s\n' "$1" \
    "$(echo "$2" | json ops_per_sec | cut -d. -f1)" "$(echo "$2" | json p50_ms)" \
    "$(echo "$2" | json p99_ms)" "$(echo "$2" | json errors)"
}

# Standalone.
start_server s
init_server s 1 1
cli s operator unseal "$(key s 1)" >/dev/null
solo=$(run_bench "127.0.0.1:$PORT_s" "$WORK/tls/ca.crt" "$TOKEN")
stop_server s TERM

# 3-node cluster.
for i in 1 2 3; do start_node "$i"; done
wait_for 20 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 20) || fail "no active node"
clus=$(run_bench "127.0.0.1:$(api_port "$A")" "$WORK/ctls/ca.crt" "$TOKEN")

echo "durable PUT, $CONNS connections, 256-byte values, ${SECS} s, load $(cut -d' ' -f1 /proc/loadavg)"
printf '%-24s %10s %8s %8s %8s\n' setup ops/s p50_ms p99_ms errors
row "standalone" "$solo"
row "3-node cluster (raft)" "$clus"
