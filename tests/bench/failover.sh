#!/usr/bin/env bash
# failover.sh: measures how long a 3-node cluster on 127.0.0.1 takes to
# serve a write again after `kill -9` of the active node.
#
#   CUSTOSD=build/custosd CUSTOS=build/custos tests/bench/failover.sh [ROUNDS]
#   ELECTION_MS=500 HEARTBEAT_MS=50 (the server defaults) can be changed.
#
# Each round: kill -9 the active, then write through the survivors in a
# tight loop (a fresh TLS connection per attempt, as the CLI does) until one
# acknowledges; the time from the kill to that acknowledgement is the
# failover time.  The killed node is restarted and unsealed before the next
# round.  Prints every round and min / median / max.  Not a timed test.
set -euo pipefail
ROUNDS=${1:-5}
TESTS_DIR=$(cd "$(dirname "$0")/.." && pwd)
: "${CUSTOSD:=$TESTS_DIR/../build/custosd}" "${CUSTOS:=$TESTS_DIR/../build/custos}"
export CUSTOSD CUSTOS TESTS_DIR
. "$TESTS_DIR/blackbox/lib.sh"
ELECTION_MS=${ELECTION_MS:-500} HEARTBEAT_MS=${HEARTBEAT_MS:-50} POLL_MS=${POLL_MS:-1000}
LOG_LEVEL=warn
. "$TESTS_DIR/blackbox/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
wait_for 20 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
echo "3 nodes, election ${ELECTION_MS} ms, heartbeat ${HEARTBEAT_MS} ms, pre-vote on"

times=()
for r in $(seq 1 "$ROUNDS"); do
  A=$(active_node 20) || fail "no active node"
  ncli "$A" kv put bench/before v="$r" >/dev/null
  t0=$(date +%s%N)
  kill -9 "$(eval echo "\$NPID_$A")"
  ok=""
  while [ -z "$ok" ]; do
    for i in 1 2 3; do
      [ "$i" = "$A" ] && continue
      if CUSTOS_ADDR="127.0.0.1:$(api_port "$i")" CUSTOS_CACERT="$WORK/ctls/ca.crt" CUSTOS_TOKEN="$TOKEN" \
           timeout 5 "$CUSTOS" kv put "bench/after$r" v=1 >/dev/null 2>&1; then ok=$i; break; fi
    done
    [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 30000 ] || fail "no write served 30 s after the kill"
  done
  t1=$(date +%s%N)
  ms=$(( (t1 - t0) / 1000000 ))
  times+=("$ms")
  echo "round $r: killed n$A, n$ok served a write after $ms ms"
  wait "$(eval echo "\$NPID_$A")" 2>/dev/null || true
  start_node "$A"
  unseal_node "$A" 1 2
  sleep 1
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
n=${#times[@]}
echo "failover (kill -9 -> first acknowledged write): min $(echo "$sorted" | head -1) ms," \
     "median $(echo "$sorted" | sed -n "$(( (n + 1) / 2 ))p") ms, max $(echo "$sorted" | tail -1) ms over $n rounds"
