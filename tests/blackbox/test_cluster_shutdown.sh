#!/usr/bin/env bash
# Shutdown racing a role change (server/daemon.c, server/ha/ha.c): the
# active is killed (-9) while a client writes, and the node that is elected
# next gets SIGTERM at once: while it is a candidate, catching up (its
# activation barrier in flight, requests held) or just active.  Each time
# the SIGTERM'd node must stop within the grace period with exit status 0,
# every write it acknowledged must be readable after the restart, and no
# sanitizer report may appear in any log (run under -DSANITIZE=ON too).
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50
. "$(dirname "$0")/cluster_lib.sh"

for i in 1 2 3; do start_node "$i"; done
wait_for 15 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
A=$(active_node 15) || fail "no active node"
TOKEN=$(json root_token < "$WORK/cluster.init")
export TOKEN

ROUNDS=3
[ "${CUSTOS_SANITIZE:-0}" = 1 ] && ROUNDS=2
acked=0
for round in $(seq 1 "$ROUNDS"); do
  # A writer against every node (redirects followed by the CLI).
  ( for k in $(seq 1 200); do
      for i in 1 2 3; do
        ncli "$i" kv put "race/$round/$k" v="$k" >/dev/null 2>&1 && echo "$k" >> "$WORK/acked.$round"
      done
    done ) &
  wpid=$!; PIDS+=("$wpid")
  sleep 0.5
  stop_node "$A" KILL
  # The first node that reports itself leader (active or catching up) gets
  # SIGTERM at once.
  victim=""
  for k in $(seq 1 400); do
    for i in 1 2 3; do
      [ "$i" = "$A" ] && continue
      st=$(node_status "$i")
      case "$st" in *"\"active_address\":\"127.0.0.1:$(api_port "$i")\""*) victim=$i;; esac
      [ -n "$victim" ] && break
    done
    [ -n "$victim" ] && break
    sleep 0.02
  done
  [ -n "$victim" ] || fail "round $round: no new leader"
  pid=$(eval echo "\$NPID_$victim")
  kill -TERM "$pid"
  rc=0
  for k in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$pid" 2>/dev/null && fail "round $round: n$victim did not stop within 15 s of SIGTERM"
  wait "$pid" || rc=$?
  eval "NPID_$victim="
  [ "$rc" = 0 ] || fail "round $round: n$victim exited with $rc after SIGTERM (role change racing shutdown)"
  kill "$wpid" 2>/dev/null; wait "$wpid" 2>/dev/null || true
  start_node "$A"; start_node "$victim"
  for i in "$A" "$victim"; do unseal_node "$i" 1 2; done
  A=$(active_node 20) || fail "round $round: no active after the restarts"
  # Every acknowledged write of this round is there.
  if [ -f "$WORK/acked.$round" ]; then
    for k in $(sort -u "$WORK/acked.$round"); do
      [ "$(ncli "$A" kv get "race/$round/$k" --field v 2>/dev/null)" = "$k" ] || fail "round $round: acknowledged write race/$round/$k lost"
      acked=$((acked + 1))
    done
  fi
  echo "round $round: SIGTERM to n$victim as it became leader: exit 0"
done
if grep -l "AddressSanitizer\|runtime error:\|LeakSanitizer" "$WORK"/n*.log 2>/dev/null; then
  fail "a sanitizer report in a node's log"
fi
pass "$ROUNDS rounds: SIGTERM to a node becoming leader (kill -9 of the active during writes): exit 0 in time, $acked acknowledged writes all read back, no sanitizer report"
