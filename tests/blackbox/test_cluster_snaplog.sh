#!/usr/bin/env bash
# cluster.snapshot_log_mb: raft snapshots come once the entries since the
# last one hold that many MiB, long before snapshot_threshold entries (here
# 100,000), so large secrets do not pile up in memory and in the raft
# directory.  Every node snapshots on its own; a node restarted afterwards
# starts from its snapshot and still reads every secret.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50 LOG_LEVEL=debug
SNAP_THRESHOLD=100000 SNAP_TRAILING=2
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do write_node_config "$i" "snapshot_log_mb = 1;"; start_node "$i"; done
wait_for 20 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 20) || fail "no active node"

# 60 KB secrets (a new connection's first frame may hold 64 KiB), one raft
# entry each: 1 MiB is reached after about 17.
head -c 45000 /dev/urandom | base64 -w0 > "$WORK/big"
for k in $(seq 1 48); do
  ncli "$A" kv put "big/k$k" v=@"$WORK/big" >/dev/null || fail "put big/k$k"
done
for i in 1 2 3; do
  wait_for 20 grep -q "MiB of raft entries since the last snapshot: snapshot now" "$WORK/n$i.log" \
    || fail "n$i took no snapshot for the bytes (threshold 100000 entries, 48 written)"
  wait_for 20 grep -q "cluster: snapshot taken" "$WORK/n$i.log" || fail "n$i: no snapshot taken"
done
n=$(grep -c "snapshot now" "$WORK/n$A.log")
[ "$n" -ge 2 ] || fail "n$A snapshotted for the bytes $n time(s) for 48 x 60 KB (want 2 or more)"
pass "every node snapshots per MiB of entries ($n times on the active for 48 x 60 KB), not per 100000 entries"

# A follower restarted from its snapshot and the log after it reads all.
F=$(( A % 3 + 1 ))
stop_node "$F"
start_node "$F"
unseal_node "$F" 1 2
wait_for 20 sh -c "[ \"\$(mdb_dump -s data -p '$WORK/n$F/data' | grep -c '^ kv/big/k')\" = 48 ]" \
  || fail "n$F lacks secrets after its restart"
for k in 1 48; do
  [ "$(ncli "$A" kv get "big/k$k" --field v)" = "$(cat "$WORK/big")" ] || fail "big/k$k reads back wrong"
done
pass "n$F restarted from its snapshot holds all 48; the active reads them back intact"
