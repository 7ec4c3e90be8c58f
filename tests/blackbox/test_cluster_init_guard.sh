#!/usr/bin/env bash
# An init on a cluster never overwrites a member's existing seal config.
# n2 of an uninitialized cluster gets the seal config of another
# installation into its store (as if it held that installation's data);
# `operator init` through the cluster is then refused (ALREADY_INITIALIZED)
# whoever leads, and n2's seal config is unchanged: its shares still count.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"
command -v mdb_dump >/dev/null && command -v mdb_load >/dev/null \
  || { echo "SKIPPED: mdb_dump/mdb_load (lmdb-utils) not installed" >&2; exit 77; }

# Another installation's seal config (a standalone server, initialized).
start_server other
init_server other 3 2
stop_server other
SC_HEX=$(printf 'core/seal-config' | od -An -tx1 | tr -d ' \n')
mdb_dump -s data "$WORK/other/data" > "$WORK/other.dump"
awk -v k=" $SC_HEX" '/^HEADER=END/{h=1; print; next} !h{print; next} $0==k{print; getline; print; f=1} END{print "DATA=END"}' \
  "$WORK/other.dump" > "$WORK/sc.load"
grep -q "^ $SC_HEX\$" "$WORK/sc.load" || fail "no seal config in the other installation's dump"

for i in 1 2 3; do start_node "$i"; done
has_leader() { [ -n "$(node_status 1 | json active_address)" ]; }
wait_for 15 has_leader || fail "no leader elected"
stop_node 2
mdb_load -s data -f "$WORK/sc.load" "$WORK/n2/data" || fail "mdb_load into n2"
mdb_dump -s data "$WORK/n2/data" | grep -A1 "^ $SC_HEX\$" > "$WORK/n2.sc.before"
start_node 2
wait_for 10 is_initialized 2 || fail "n2 does not report its seal config"
wait_for 20 has_leader || fail "no leader after n2's restart"
pass "n2 of an uninitialized cluster holds another installation's seal config"

# Give n2's status report time to reach whoever leads, then init.
sleep 3  # 10 poll intervals: several status reports
for i in 1 3 2; do
  for try in $(seq 1 50); do # a refusal to redirect (no leader yet) changes nothing: retry
    set +e; ncli "$i" operator init --key-shares 3 --key-threshold 2 >"$WORK/init.out" 2>"$WORK/init.err"; rc=$?; set -e
    grep -q "no active node\|no quorum" "$WORK/init.err" || break
    sleep 0.2
  done
  [ "$rc" = 1 ] || fail "init through n$i accepted (exit $rc): $(cat "$WORK/init.out")"
  grep -qi "already initialized" "$WORK/init.err" || fail "init through n$i: $(cat "$WORK/init.err")"
done
pass "init refused through every node: $(cat "$WORK/init.err")"
sleep 1
stop_node 2
mdb_dump -s data "$WORK/n2/data" | grep -A1 "^ $SC_HEX\$" > "$WORK/n2.sc.after"
cmp -s "$WORK/n2.sc.before" "$WORK/n2.sc.after" || fail "n2's seal config was overwritten by an init"
for i in 1 3; do
  [ "$(node_status "$i" | json initialized)" = false ] || fail "n$i got initialized"
done
pass "n2's seal config unchanged; nothing initialized elsewhere"
