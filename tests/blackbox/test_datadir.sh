#!/usr/bin/env bash
# Data directory safety: a second custosd on a directory in use is refused
# at start-up with the holder's PID (two servers on one store wrote an older
# keyring back over a rotation: "no key for term N" for good); the lock goes
# with the process (SIGTERM or kill -9), so a restart is never blocked.
. "$(dirname "$0")/lib.sh"

start_server a
init_server a 3 2
unseal_with a 1 2
cli a kv put dup/a v=1 >/dev/null || fail "put dup/a"
PID_A=$PID_a

# A second server on the same directory, another port.
port2=$(next_port)
sed "s/127.0.0.1:$PORT_a/127.0.0.1:$port2/" "$WORK/a/custos.conf" > "$WORK/second.conf"
set +e
timeout 20 "$CUSTOSD" --config "$WORK/second.conf" > "$WORK/second.log" 2>&1
rc=$?
set -e
[ "$rc" = 1 ] || fail "second custosd on the same data directory: exit $rc (want 1); log: $(cat "$WORK/second.log")"
grep -q "in use by another process (pid $PID_A" "$WORK/second.log" \
  || fail "second custosd's message does not name the holder: $(cat "$WORK/second.log")"
[ "$(cat "$WORK/a/data/custos.lock")" = "$PID_A" ] || fail "lock file does not record the PID: $(cat "$WORK/a/data/custos.lock" 2>&1)"
pass "second custosd refused: $(grep -m1 'in use' "$WORK/second.log")"

# The first one is untouched: rotate and write, stop, restart: everything reads.
cli a operator rotate >/dev/null || fail "rotate"
cli a kv put dup/c v=3 >/dev/null || fail "put dup/c"
stop_server a
start_server a
unseal_with a 1 2
[ "$(cli a kv get dup/c --field v)" = 3 ] || fail "dup/c after restart"
[ "$(cli a kv get dup/a --field v)" = 1 ] || fail "dup/a after restart"
pass "first server kept serving; after rotate + write + restart every value reads"

# kill -9 drops the lock with the process: the restart is not blocked.
stop_server a KILL
start_server a
unseal_with a 1 2
[ "$(cli a kv get dup/c --field v)" = 3 ] || fail "dup/c after kill -9 and restart"
pass "kill -9 releases the lock; restart serves"

# The lock is the store's, not the daemon's: a lock held by any other
# program (an offline tool, a backup script) keeps custosd out too.
stop_server a
if command -v flock >/dev/null; then
  exec 9<>"$WORK/a/data/custos.lock"
  flock -x 9
  set +e; timeout 20 "$CUSTOSD" --config "$WORK/a/custos.conf" > "$WORK/third.log" 2>&1 9>&-; rc=$?; set -e
  flock -u 9; exec 9>&-
  [ "$rc" = 1 ] && grep -q "in use by another process" "$WORK/third.log" \
    || fail "custosd started while another program held the lock (exit $rc): $(cat "$WORK/third.log")"
  pass "a lock held by another program keeps custosd out"
fi
