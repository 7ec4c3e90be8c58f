#!/usr/bin/env bash
# A cluster member's store must come from its own raft log.  An mdb_copy
# backup restored into a node next to a fresh raft log carried
# applied_index N, so entries 1..N of the new log were skipped as "already
# applied" (kv put said Success, the value was gone), and an uninitialized
# node could then init over the only store with data.  Now such a node
# refuses to start, saying what to do; so does a store put next to another
# node's raft log.  A store's seal config is never overwritten by an init
# (unit tests test_store/test_seal cover the state machine's side).
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"
command -v mdb_copy >/dev/null || { echo "SKIPPED: mdb_copy (lmdb-utils) not installed" >&2; exit 77; }

for i in 1 2 3; do start_node "$i"; done
has_leader() { [ -n "$(node_status 1 | json active_address)" ]; }
wait_for 15 has_leader || fail "no leader elected"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 10) || fail "no active node"
for k in 1 2 3; do ncli "$A" kv put "bk/k$k" v="$k" >/dev/null || fail "put bk/k$k"; done
mkdir "$WORK/bak"
mdb_copy -c "$WORK/n1/data" "$WORK/bak" || fail "mdb_copy of a running node"
pass "3-node cluster with data; documented backup taken (mdb_copy -c into an empty directory)"

# 1. The backup restored into n1 of a new cluster (fresh raft logs).
for i in 1 2 3; do stop_node "$i"; done
for i in 1 2 3; do mv "$WORK/n$i/data" "$WORK/n$i/data.old"; mkdir "$WORK/n$i/data"; done
cp "$WORK/bak/data.mdb" "$WORK/n1/data/"
set +e
timeout 30 "$CUSTOSD" --config "$WORK/n1/custos.conf" > "$WORK/restore1.log" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "n1 started (exit $rc) on a restored store next to an empty raft log: $(tail -3 "$WORK/restore1.log")"
grep -q "has applied raft entries up to index [0-9]*, but the raft log in .* is empty" "$WORK/restore1.log" \
  || fail "n1's refusal does not explain: $(cat "$WORK/restore1.log")"
grep -q "empty data directory" "$WORK/restore1.log" || fail "n1's refusal does not say what to do"
pass "restored store + fresh raft log refused: $(grep -m1 -o 'storage in .*' "$WORK/restore1.log" | cut -c1-160)..."
[ -n "$(ls "$WORK/n1/data/raft" 2>/dev/null | grep -v custos-log-id || true)" ] \
  && fail "the refused node wrote a raft log"

# 2. The backup put next to another node's existing raft log (n2's).
for i in 1 2 3; do rm -rf "$WORK/n$i/data"; mv "$WORK/n$i/data.old" "$WORK/n$i/data"; done
cp "$WORK/bak/data.mdb" "$WORK/n2/data/data.mdb"
rm -f "$WORK/n2/data/lock.mdb"
set +e
timeout 30 "$CUSTOSD" --config "$WORK/n2/custos.conf" > "$WORK/restore2.log" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "n2 started (exit $rc) with n1's store next to its own raft log"
grep -q "was applied from raft log [0-9a-f]*, but the raft log in .* is [0-9a-f]*" "$WORK/restore2.log" \
  || fail "n2's refusal does not explain: $(cat "$WORK/restore2.log")"
pass "another node's store next to this node's raft log refused"

# 3. What the message says works: n2 with an empty data directory catches
# up from n1 and n3 (their own stores and logs), and every value reads.
rm -rf "$WORK/n2/data"; mkdir "$WORK/n2/data"
for i in 1 3 2; do start_node "$i"; done
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 15) || fail "no active node after the repair"
for k in 1 2 3; do
  for i in 1 2 3; do
    wait_for 10 sh -c "[ \"\$(CUSTOS_ADDR=127.0.0.1:$(api_port "$i") CUSTOS_CACERT=$WORK/ctls/ca.crt CUSTOS_TOKEN=$TOKEN $CUSTOS kv get bk/k$k --field v 2>/dev/null)\" = $k ]" \
      || fail "bk/k$k through n$i after n2 caught up"
  done
done
ncli "$A" kv put bk/after v=4 >/dev/null || fail "write after the repair"
pass "n2 restarted empty caught up from the cluster; every acknowledged value reads through every node"
