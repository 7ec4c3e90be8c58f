#!/usr/bin/env bash
# Cluster mode of the revoke-vs-renew race (security review, issue 10): on
# the active of a 3-node cluster, self-renews pipelined behind a revoke must
# not bring the token back, and the standbys (which apply the same raft
# entries) must agree that it is gone.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=${ELECTION_MS:-500} HEARTBEAT_MS=${HEARTBEAT_MS:-50}
. "$(dirname "$0")/cluster_lib.sh"

: "${CUSTOS_TOKEN_RACE:?set CUSTOS_TOKEN_RACE to the token_race test client}"

for i in 1 2 3; do start_node "$i"; done
has_leader() { [ -n "$(node_status 1 | json active_address)" ]; }
wait_for 30 has_leader || fail "no leader elected"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 10) || fail "no active node after unseal"
ROOT=$TOKEN

out=$(timeout 200 "$CUSTOS_TOKEN_RACE" "127.0.0.1:$(api_port "$A")" "$WORK/ctls/ca.crt" "$ROOT" 50 8 2>&1) \
  || fail "revoked tokens came back on the active: $out"
echo "$out" | grep -q "^survivors: 0 of 50$" || fail "token_race: $out"
pass "cluster (active n$A): $(echo "$out" | tr '\n' ';')"

# Every node applied the same entries: no token entry is left anywhere.
# (A follower learns that the last entry is committed with the next
# heartbeat: wait until every member reports the same applied index.)
caught_up() {
  ncli "$A" operator raft list-peers --format json | grep -o '"applied_index":[0-9]*' | sort -u | wc -l \
    | grep -qx 1
}
wait_for 20 caught_up || fail "members did not catch up: $(ncli "$A" operator raft list-peers)"
for i in 1 2 3; do [ "$i" = "$A" ] || stop_node "$i" TERM; done
stop_node "$A" TERM
if command -v mdb_dump >/dev/null; then
  for i in 1 2 3; do
    n=$(mdb_dump -s data -p "$WORK/n$i/data" 2>/dev/null | grep -c '^ core/token/' || true)
    [ "$n" = 1 ] || fail "n$i holds $n token entries, expected only the root token's"
  done
  pass "every member holds only the root token's entry"
fi
