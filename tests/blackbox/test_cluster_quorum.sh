#!/usr/bin/env bash
# Quorum loss in a 3-node cluster: kill -9 two nodes; the survivor warns in
# its log that quorum is lost, answers requests with "no quorum: 1 of 3
# members reachable" (not "election in progress"), and SIGTERM stops it
# cleanly (exit 0, no abort in libuv's close path); restarted with the
# others, nothing acknowledged is lost.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
has_leader() { [ -n "$(node_status 1 | json active_address)" ]; }
wait_for 15 has_leader || fail "no leader elected"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 10) || fail "no active node"
for k in 1 2 3 4 5; do ncli "$A" kv put "q/k$k" v="$k" >/dev/null || fail "put q/k$k"; done
pass "3-node cluster, active n$A, 5 writes acknowledged"

# Keep the node that is NOT the leader as survivor (the harder case: it
# never led), then also try the old leader in a second round below.
S=$(( A % 3 + 1 ))
for i in 1 2 3; do [ "$i" = "$S" ] || stop_node "$i" KILL; done
no_quorum_answer() {
  ncli "$S" kv get q/k1 >"$WORK/nq.out" 2>"$WORK/nq.err" && return 1
  grep -q "no quorum: 1 of 3 members reachable" "$WORK/nq.err"
}
wait_for 20 no_quorum_answer || fail "survivor's answer without quorum: $(cat "$WORK/nq.err")"
pass "survivor answers: $(cat "$WORK/nq.err")"
wait_for 10 grep -q "warn  cluster: no quorum" "$WORK/n$S.log" || fail "no warning about the lost quorum in n$S's log"
pass "survivor logs a warning: $(grep -m1 'warn  cluster: no quorum' "$WORK/n$S.log")"

pid=$(eval echo "\$NPID_$S")
kill -TERM "$pid"
for k in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$pid" 2>/dev/null && fail "survivor did not stop on SIGTERM"
set +e; wait "$pid"; rc=$?; set -e
eval "NPID_$S="
[ "$rc" = 0 ] || fail "survivor exited $rc on SIGTERM (want 0): $(grep -m1 -i 'assert\|abort' "$WORK/n$S.log")"
grep -qi "assertion" "$WORK/n$S.log" && fail "assertion in n$S's log"
pass "SIGTERM on the survivor of a quorum loss: exit 0"

for i in 1 2 3; do start_node "$i"; done
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 15) || fail "no active node after restart"
for k in 1 2 3 4 5; do
  [ "$(ncli "$A" kv get "q/k$k" --field v)" = "$k" ] || fail "q/k$k lost after restart"
done
pass "restarted: every acknowledged write intact"

# Second round: the survivor is the leader itself (it steps down).
for i in 1 2 3; do [ "$i" = "$A" ] || stop_node "$i" KILL; done
S=$A
wait_for 20 no_quorum_answer || fail "old leader's answer without quorum: $(cat "$WORK/nq.err")"
pid=$(eval echo "\$NPID_$S")
kill -TERM "$pid"
for k in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
set +e; wait "$pid"; rc=$?; set -e
eval "NPID_$S="
[ "$rc" = 0 ] || fail "old leader exited $rc on SIGTERM after losing quorum"
pass "old leader that lost quorum: no-quorum answer, SIGTERM exit 0"
