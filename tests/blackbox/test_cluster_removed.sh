#!/usr/bin/env bash
# A member removed with `operator raft remove-peer` while it runs learns it
# from the leader: it logs it, seals itself, says removed_from_cluster in
# status, refuses requests (and unseal) with "removed from the cluster"
# instead of "leader election in progress", and the remaining two members
# keep their leader; restarted with its old data it learns it again.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
has_leader() { [ -n "$(node_status 1 | json active_address)" ]; }
wait_for 20 has_leader || fail "no leader elected"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 15) || fail "no active node"
ncli "$A" kv put rm/k v=1 >/dev/null || fail "put"
R=$(( A % 3 + 1 ))
[ "$(node_status "$R" | json removed_from_cluster)" = false ] || fail "n$R removed before removal"
ncli "$A" operator raft remove-peer "n$R" >/dev/null || fail "remove-peer n$R"
pass "removed n$R (active n$A)"

is_removed() { [ "$(node_status "$R" | json removed_from_cluster)" = true ]; }
wait_for 30 is_removed || fail "n$R does not say removed_from_cluster: $(node_status "$R")"
sealed_r() { [ "$(node_status "$R" | json sealed)" = true ]; }
wait_for 10 sealed_r || fail "removed n$R is not sealed"
grep -q "was removed from the cluster" "$WORK/n$R.log" || fail "no log line on n$R"
pass "n$R: $(node_status "$R")"
pass "n$R logs: $(grep -m1 'was removed from the cluster' "$WORK/n$R.log")"
ncli "$R" status > "$WORK/st.txt" 2>&1 || true
grep -q "Removed From Cluster" "$WORK/st.txt" || fail "status table: $(cat "$WORK/st.txt")"

set +e; ncli "$R" kv get rm/k >/dev/null 2>"$WORK/r.err"; set -e
grep -q "removed from the cluster" "$WORK/r.err" || fail "request on n$R: $(cat "$WORK/r.err")"
grep -q "election in progress" "$WORK/r.err" && fail "n$R says election in progress"
pass "request on n$R: $(cat "$WORK/r.err")"
set +e; ncli "$R" operator unseal "$(ckey 1)" >/dev/null 2>"$WORK/u.err"; set -e
grep -q "removed from the cluster" "$WORK/u.err" || fail "unseal on n$R: $(cat "$WORK/u.err")"
pass "unseal on n$R refused: $(cat "$WORK/u.err")"

# The two others keep serving while n$R runs (it does not campaign).
for k in 1 2 3 4 5 6 7 8 9 10; do
  A2=$(active_node 15) || fail "no active node with n$R removed"
  [ "$A2" != "$R" ] || fail "removed n$R active"
  ncli "$A2" kv put "rm/w$k" v="$k" >/dev/null || fail "write $k with n$R removed"
  sleep 0.3
done
[ "$(ncli "$A2" kv get rm/k --field v)" = 1 ] || fail "data lost"
pass "n$A2 active, writes go on while removed n$R runs"

stop_node "$R"
start_node "$R"
wait_for 30 is_removed || fail "restarted n$R does not learn it is removed"
pass "restarted n$R learns again: removed_from_cluster true"
