#!/usr/bin/env bash
# Cluster membership: operator raft list-peers (ids, addresses, voter,
# leader, applied index); a new node started with an empty data directory
# and a `join` address is not added by asking: an operator approves it with
# operator raft add-peer (sudo on sys/raft), then it receives the data and
# unseals with the cluster's shares; operator raft remove-peer removes it.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50 SNAP_THRESHOLD=16 SNAP_TRAILING=4
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
wait_for 10 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
for k in $(seq 1 40); do ncli 1 kv put "m/$k" v="$k" >/dev/null || fail "put m/$k"; done

out=$(ncli 2 operator raft list-peers --format json) || fail "list-peers: $out"
for i in 1 2 3; do echo "$out" | grep -q "\"node_id\":\"n$i\"" || fail "list-peers lacks n$i: $out"; done
[ "$(echo "$out" | grep -o '"leader":true' | wc -l)" = 1 ] || fail "exactly one leader expected: $out"
[ "$(echo "$out" | grep -o '"voter":true' | wc -l)" = 3 ] || fail "three voters expected: $out"
echo "$out" | grep -q "\"api_address\":\"127.0.0.1:$(api_port 2)\"" || fail "api address of n2: $out"
ncli 1 operator raft list-peers | grep -q "Applied Index" || fail "list-peers table"
pass "list-peers: 3 voters, one leader, addresses and applied indexes"

# A 4th node with an empty data directory and a `join` address asks to be
# added, and is NOT added until an operator approves it with add-peer.
NODES=4 write_node_config 4 "join = \"127.0.0.1:$(raft_port 2)\";"
NODES=4 start_node 4
wait_for 20 grep -q "join request from node n4 (127.0.0.1:$(raft_port 4)) not acted on: an operator must approve it with: custos operator raft add-peer n4 127.0.0.1:$(raft_port 4)" \
    "$WORK/n1.log" "$WORK/n2.log" "$WORK/n3.log" || fail "the join request of n4 was not logged"
wait_for 20 grep -q "not a member yet" "$WORK/n4.log" || fail "n4 did not log that it waits for approval"
sleep 1
! ncli 1 operator raft list-peers --format json | grep -q '"node_id":"n4"' || fail "n4 was added without an operator"
! is_initialized 4 || fail "n4 received data without an operator's approval"
pass "a join request alone adds nobody; the members log the add-peer command to approve it"

noauth() { TOKEN= ncli "$@"; }
expect_err "permission denied" noauth 1 operator raft add-peer n4 "127.0.0.1:$(raft_port 4)"
expect_err "already a member" ncli 1 operator raft add-peer n2 "127.0.0.1:$(raft_port 2)"
expect_err "address" ncli 1 operator raft add-peer n4 "not-an-address"
out=$(ncli 1 operator raft add-peer n4 "127.0.0.1:$(raft_port 4)") || fail "add-peer n4: $out"
echo "$out" | grep -q "Added peer n4" || fail "add-peer output: $out"
grep -q "adding node n4 at 127.0.0.1:$(raft_port 4) (approved by an operator)" "$WORK"/n[123].log || fail "add not logged"
wait_for 20 is_initialized 4 || fail "n4 never received the cluster's data"
unseal_node 4 1 2
wait_for 10 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt CUSTOS_TOKEN=$TOKEN $CUSTOS operator raft list-peers --format json | grep -o '\"voter\":true' | wc -l | grep -qx 4" \
  || fail "n4 did not become a voter: $(ncli 1 operator raft list-peers --format json)"
[ "$(NODES=4 ncli 4 kv get m/40 --field v)" = 40 ] || fail "read through n4"
pass "operator add-peer (sudo on sys/raft): n4 joined as a voter, got the data, unsealed"

A=$(NODES=4 active_node 10)
[ "$A" != 4 ] || { ncli 1 operator raft list-peers >/dev/null; }
ncli 1 operator raft remove-peer n4 >/dev/null || fail "remove-peer n4"
wait_for 10 sh -c "! CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt CUSTOS_TOKEN=$TOKEN $CUSTOS operator raft list-peers --format json | grep -q '\"node_id\":\"n4\"'" \
  || fail "n4 still listed"
expect_err "no peer" ncli 1 operator raft remove-peer nope
pass "remove-peer n4: no longer in the configuration"

# Graceful stop of a member (SIGTERM): raft closes, the process exits 0.
pid=$NPID_3
kill -TERM "$pid"
for k in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
kill -0 "$pid" 2>/dev/null && fail "n3 did not stop on SIGTERM"
set +e; wait "$pid"; st=$?; set -e
[ "$st" = 0 ] || fail "n3 exited with $st on SIGTERM"
NPID_3=
pass "SIGTERM: a member shuts down cleanly (exit 0)"

# A minority cannot accept writes: with n2 and n3 gone, n1 alone refuses.
stop_node 2 KILL
sleep 1.5
# Refused either as RETRY (exit 3: no leader, nothing done) or, while n1
# still believes it leads, as an unconfirmed write (exit 1).
set +e; ncli 1 kv put minority/x v=1 >/dev/null 2>"$WORK/err"; st=$?; set -e
[ "$st" = 3 ] || [ "$st" = 1 ] || fail "minority put: exit $st ($(cat "$WORK/err"))"
start_node 2
start_node 3
unseal_node 2 1 2
unseal_node 3 1 2
A=$(active_node 10) || fail "no active after the majority came back"
expect_err "no secret" ncli "$A" kv get minority/x
pass "a minority (1 of 3) refuses writes; nothing it was sent appears after the majority returns"
