#!/usr/bin/env bash
# Operator raft commands on a 3-node cluster:
#  - list-peers shows each member's health (reachable, last contact, sealed,
#    keyring term, applied index), as a table and as json; a member killed
#    with -9 shows unreachable with a growing last contact;
#  - step-down on the active is refused while no other member is unsealed
#    ("no member can take over"), and otherwise hands leadership to another
#    member: another node is active, acknowledged data is intact, writes work.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
has_leader() { [ -n "$(node_status 1 | json active_address)" ]; }
wait_for 20 has_leader || fail "no leader elected"
init_cluster 1 3 2
leader_index() {
  local addr; addr=$(node_status 1 | json active_address)
  local i; for i in 1 2 3; do [ "$addr" = "127.0.0.1:$(api_port "$i")" ] && { echo "$i"; return 0; }; done
  return 1
}
L=$(leader_index) || fail "no leader known"
unseal_node "$L" 1 2
[ "$(active_node 15)" = "$L" ] || fail "leader n$L not active after unseal"
for k in 1 2 3; do ncli "$L" kv put "s/k$k" v="$k" >/dev/null || fail "put s/k$k"; done

peers_json() { ncli "$1" operator raft list-peers --format json; }
peer() { # ACTIVE NODE FIELD
  peers_json "$1" | tr '{' '\n' | grep "\"node_id\":\"n$2\"" | json "$3"
}
# The others report "sealed" to the leader within a poll interval or two.
other=$(( L % 3 + 1 ))
reports_sealed() { [ "$(peer "$L" "$other" sealed)" = true ]; }
wait_for 20 reports_sealed || fail "list-peers does not show n$other sealed: $(peers_json "$L")"
pass "list-peers while the others are sealed: $(peers_json "$L")"

expect_err "no member can take over" ncli "$L" operator raft step-down
pass "step-down with no unsealed member refused: $(ncli "$L" operator raft step-down 2>&1 | head -1)"
[ "$(active_node 5)" = "$L" ] || fail "n$L no longer active after a refused step-down"

for i in 1 2 3; do [ "$i" = "$L" ] || unseal_node "$i" 1 2; done
all_unsealed() {
  local i
  for i in 1 2 3; do [ "$(peer "$L" "$i" sealed)" = false ] || return 1; done
  for i in 1 2 3; do [ "$(peer "$L" "$i" reachable)" = true ] || return 1; done
}
wait_for 20 all_unsealed || fail "list-peers: not all unsealed and reachable: $(peers_json "$L")"
[ "$(peer "$L" "$L" leader)" = true ] || fail "list-peers: n$L not the leader"
[ -n "$(peer "$L" "$other" keyring_term)" ] && [ "$(peer "$L" "$other" keyring_term)" != 0 ] \
  || fail "list-peers: no keyring term for n$other"
ncli "$L" operator raft list-peers > "$WORK/peers.txt" || fail "list-peers table"
grep -q "Reachable" "$WORK/peers.txt" && grep -q "unsealed" "$WORK/peers.txt" \
  || fail "list-peers table: $(cat "$WORK/peers.txt")"
pass "list-peers table: $(tr -s ' ' < "$WORK/peers.txt" | tr '\n' '|')"

ncli "$L" operator raft step-down > "$WORK/sd.out" 2>&1 || fail "step-down failed: $(cat "$WORK/sd.out")"
pass "step-down: $(cat "$WORK/sd.out")"
new_active() { local a; a=$(active_node 1) && [ "$a" != "$L" ]; }
wait_for 30 new_active || fail "no other node active after step-down"
A=$(active_node 10) || fail "no active node"
[ "$A" != "$L" ] || fail "n$L still active"
for k in 1 2 3; do [ "$(ncli "$A" kv get "s/k$k" --field v)" = "$k" ] || fail "s/k$k lost after step-down"; done
ncli "$A" kv put s/after v=ok >/dev/null || fail "write after step-down"
[ "$(ncli "$A" kv get s/after --field v)" = ok ] || fail "write after step-down not readable"
pass "after step-down n$A is active, data intact, writes work"

# Kill a standby: the active shows it unreachable, with a growing last contact.
K=$(( A % 3 + 1 ))
stop_node "$K" KILL
unreachable() { [ "$(peer "$A" "$K" reachable)" = false ]; }
wait_for 30 unreachable || fail "killed n$K still reachable: $(peers_json "$A")"
c1=$(peer "$A" "$K" last_contact_ms)
sleep 1.5
c2=$(peer "$A" "$K" last_contact_ms)
[ "$c2" -gt "$c1" ] || fail "last contact of n$K not growing ($c1 then $c2)"
ncli "$A" operator raft list-peers | grep "^n$K " | grep -q unreachable || fail "table does not show n$K unreachable"
pass "killed n$K: unreachable, last contact $c1 ms then $c2 ms"
