#!/usr/bin/env bash
# A 3-node cluster that lost quorum for good (kill -9 of two nodes) is
# recovered with `custosd --config FILE --recover-peers SURVIVOR` on the
# stopped survivor: it refuses bad lists (empty, unknown node, without
# itself) and a running node's locked data directory; then the survivor
# starts, becomes active alone, every acknowledged write is readable,
# writes work, and a second restart keeps the one-member configuration.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
# Small snapshots: the bootstrap configuration entry is compacted away, so
# the configuration is read from the raft snapshot, then from a later entry.
SNAP_THRESHOLD=8 SNAP_TRAILING=2
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
has_leader() { [ -n "$(node_status 1 | json active_address)" ]; }
wait_for 20 has_leader || fail "no leader elected"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 15) || fail "no active node"
for k in $(seq 1 20); do ncli "$A" kv put "r/k$k" v="$k" >/dev/null || fail "put r/k$k"; done
pass "3-node cluster, active n$A, 20 writes acknowledged"

S=$(( A % 3 + 1 ))
recover() { "$CUSTOSD" --config "$WORK/n$S/custos.conf" --recover-peers "$@"; }
# A running node holds the data directory's lock: refused.
set +e; recover "n$S" >"$WORK/rp.out" 2>&1; rc=$?; set -e
[ "$rc" != 0 ] || fail "--recover-peers on a running node's data directory succeeded"
grep -qi "in use\|lock" "$WORK/rp.out" || fail "unclear refusal while running: $(cat "$WORK/rp.out")"
pass "refused while the node runs: $(head -1 "$WORK/rp.out")"

for i in 1 2 3; do [ "$i" = "$S" ] || stop_node "$i" KILL; done
stop_node "$S"
O=$(( S % 3 + 1 ))
for bad in "" "n$S,,n$O" "n7" "n$S,n7" "n$O" "n$S,n$S"; do
  set +e; recover "$bad" >"$WORK/rp.out" 2>&1; rc=$?; set -e
  [ "$rc" != 0 ] || fail "--recover-peers '$bad' accepted"
  grep -q "recover-peers" "$WORK/rp.out" || fail "--recover-peers '$bad': unclear: $(cat "$WORK/rp.out")"
  pass "refused '$bad': $(head -1 "$WORK/rp.out")"
done
recover "n$S" >"$WORK/rp.out" 2>&1 || fail "--recover-peers n$S failed: $(cat "$WORK/rp.out")"
grep -q "new configuration: n$S " "$WORK/rp.out" || fail "output: $(cat "$WORK/rp.out")"
pass "recovered: $(tr '\n' ' ' < "$WORK/rp.out")"

check_alone() {
  start_node "$S"
  unseal_node "$S" 1 2
  [ "$(active_node 30)" = "$S" ] || fail "survivor n$S not active alone ($1)"
  for k in $(seq 1 20); do
    [ "$(ncli "$S" kv get "r/k$k" --field v)" = "$k" ] || fail "r/k$k lost ($1)"
  done
  ncli "$S" kv put "r/$1" v=ok >/dev/null || fail "write after recovery ($1)"
  [ "$(ncli "$S" kv get "r/$1" --field v)" = ok ] || fail "write not readable ($1)"
}
check_alone after-recover
pass "survivor active alone, acknowledged data intact, writes work"
stop_node "$S"
check_alone after-restart
[ "$(ncli "$S" kv get r/after-recover --field v)" = ok ] || fail "write before restart lost"
pass "restart keeps the recovered configuration"
# raft_recover writes its entry with term 1: no raft snapshot may be taken
# at it (libraft would drop that snapshot after deleting the segments it
# covers).  Snapshots resume past it; more writes and a restart still work.
wait_for 20 grep -q "raft snapshots resume" "$WORK/n$S.log" || fail "snapshots never resumed"
[ ! -e "$WORK/n$S/data/raft/custos-recovered" ] || fail "recovery marker left behind"
for k in $(seq 1 20); do ncli "$S" kv put "r/more$k" v="$k" >/dev/null || fail "put r/more$k"; done
stop_node "$S"
check_alone after-snapshots
pass "snapshots resumed past the recovered entry; restart after them works"
