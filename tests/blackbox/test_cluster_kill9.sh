#!/usr/bin/env bash
# No acknowledged write is lost in a cluster whose state machines commit
# LMDB without fsync (raft's log is the durable record, applied entries are
# replayed after the store's applied index; docs/architecture.md,
# "Durability").  Repeated rounds: a writer pipelines puts to the active
# node while nodes are killed with SIGKILL: the leader, a follower, all
# three at once.  A last round plays an OS crash that lost a node's
# unflushed LMDB commits: its data.mdb is put back to an older copy of
# itself, and raft must replay everything after that copy's applied index.
# After every restart, every write acknowledged to the writer is in every
# node's store (mdb_dump), listed by the active node, and readable there.
. "$(dirname "$0")/lib.sh"
POLL_MS=300 ELECTION_MS=500 HEARTBEAT_MS=50 LOG_LEVEL=info
# Small raft snapshots, so that kills also land around snapshots and a
# store that lost its tail may be older than the log reaches back.
SNAP_THRESHOLD=${SNAP_THRESHOLD:-16} SNAP_TRAILING=${SNAP_TRAILING:-4}
. "$(dirname "$0")/cluster_lib.sh"
: "${CUSTOS_PIPE:?set CUSTOS_PIPE to the custos-pipe binary}"
ROUNDS=${KILL9_ROUNDS:-6}

for i in 1 2 3; do start_node "$i"; done
wait_for 20 sh -c "CUSTOS_ADDR=127.0.0.1:$(api_port 1) CUSTOS_CACERT=$WORK/ctls/ca.crt $CUSTOS status --format json | grep -q '\"active_address\":\"127'" \
  || fail "no leader"
init_cluster 1 3 2
for i in 1 2 3; do unseal_node "$i" 1 2; done
active_node 20 >/dev/null || fail "no active node"
: > "$WORK/acked"

# writer ROUND: batches of 50 pipelined puts to the node that took the last
# batch (the next node when nothing was acknowledged); a put counts once its
# "ok" came back.  It stops after the batch in flight when $WORK/stop exists.
writer() {
  local r=$1 seq=0 i=1 j paths got
  while [ ! -e "$WORK/stop" ]; do
    paths=""
    for j in $(seq 1 50); do paths="$paths k9/r$r/p$((seq + j))"; done
    seq=$((seq + 50))
    got=$(CUSTOS_ADDR="127.0.0.1:$(api_port "$i")" CUSTOS_CACERT="$WORK/ctls/ca.crt" CUSTOS_TOKEN="$TOKEN" \
      timeout 10 "$CUSTOS_PIPE" puts $paths 2>/dev/null | awk '$2 == "ok" { print $1 }' | tee -a "$WORK/acked" | wc -l)
    [ "$got" -gt 0 ] || i=$(( i % 3 + 1 ))
  done
}

pid_of() { eval echo "\${NPID_$1:-}"; }
kill9() { # I...
  local i pid
  # A node already gone died by itself (a crash: its log says why), which
  # is a failure of its own, not a silent exit of this script.
  for i in "$@"; do
    pid=$(pid_of "$i")
    [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || fail "n$i had died before its kill -9 (see n$i.log)"
  done
  for i in "$@"; do
    pid=$(pid_of "$i"); [ -n "$pid" ] && { wait "$pid" 2>/dev/null || true; }
    eval "NPID_$i="
  done
}
restart() { # I...
  local i
  for i in "$@"; do start_node "$i"; done
  for i in "$@"; do unseal_node "$i" 1 2; done
}
leader_node() { # the raft leader (the active node, once it is unsealed)
  active_node 30
}

# Every acknowledged path is a key of node I's store (its state machine
# applied it); waits, since a restarted follower catches up from the log.
# PATH -> storage key "kv/PATH".
node_has_all() { # I
  mdb_dump -s data -p "$WORK/n$1/data" 2>/dev/null | sed -n 's/^ kv\/\(k9\/.*\)$/\1/p' | sort -u > "$WORK/n$1.keys"
  sort -u "$WORK/acked" | comm -23 - "$WORK/n$1.keys" > "$WORK/n$1.missing"
  [ ! -s "$WORK/n$1.missing" ]
}
check_all() { # ROUND
  local i a
  for i in 1 2 3; do
    wait_for 30 node_has_all "$i" \
      || fail "round $1: n$i lost $(wc -l < "$WORK/n$i.missing") acknowledged writes, e.g. $(head -n 3 "$WORK/n$i.missing" | tr '\n' ' ')"
  done
  a=$(leader_node) || fail "round $1: no active node after the restart"
  # The active node lists and reads them (a read decrypts the value).
  local r
  for r in $(seq 1 "$1"); do
    ncli "$a" kv list "k9/r$r/" 2>/dev/null | sort -u > "$WORK/listed.$r" || true
    grep "^k9/r$r/" "$WORK/acked" | sed "s#^k9/r$r/##" | sort -u | comm -23 - "$WORK/listed.$r" > "$WORK/unlisted.$r"
    [ ! -s "$WORK/unlisted.$r" ] || fail "round $1: n$a does not list $(wc -l < "$WORK/unlisted.$r") acknowledged writes of round $r"
  done
  local p
  for p in $(tail -n 5 "$WORK/acked"); do
    [ "$(ncli "$a" kv get "$p" --field v)" = x ] || fail "round $1: n$a cannot read acknowledged $p"
  done
}

# run_writer ROUND SECONDS: the writer runs for a while (WPID).
run_writer() {
  rm -f "$WORK/stop"
  writer "$1" >/dev/null 2>&1 &
  WPID=$!; PIDS+=("$WPID")
  sleep "$2"
}
stop_writer() { touch "$WORK/stop"; wait "$WPID" 2>/dev/null || true; }

for round in $(seq 1 "$ROUNDS"); do
  A=$(leader_node) || fail "round $round: no active node"
  F=$(( A % 3 + 1 ))
  run_writer "$round" "1.$(( RANDOM % 10 ))"
  case $(( round % 3 )) in
    1) victims="$A" ;;           # the leader, writes in flight
    2) victims="$F" ;;           # a follower
    0) victims="1 2 3" ;;        # every node at once
  esac
  kill9 $victims
  stop_writer
  restart $victims
  n=$(sort -u "$WORK/acked" | wc -l)
  [ "$n" -gt 0 ] || fail "round $round: no write was acknowledged at all"
  check_all "$round"
  pass "round $round: kill -9 of n${victims// /,n} while writing: all $n acknowledged writes on every node"
done

# An OS crash: the store of a follower loses its unflushed commits.  Its
# data.mdb goes back to a copy taken earlier (same log, lower applied
# index), and raft replays the entries after that index; or, when its log
# no longer reaches back that far (a short write phase, then a long one),
# restores its snapshot first.
lost_tail() { # ROUND SECONDS [SINGLE_PUTS]
  local round=$1 A F old_keys n lines how k
  A=$(leader_node) || fail "no active node"
  F=$(( A % 3 + 1 ))
  kill9 "$F"
  cp "$WORK/n$F/data/data.mdb" "$WORK/old.mdb"
  old_keys=$(mdb_dump -s data -p "$WORK/n$F/data" | grep -c '^ kv/k9/' || true)
  restart "$F"
  run_writer "$round" "$2"
  stop_writer
  # One entry each: enough of them and raft's log starts past the copy.
  for k in $(seq 1 "${3:-0}"); do
    ncli "$(leader_node)" kv put "k9/r$round/single$k" v=x >/dev/null && echo "k9/r$round/single$k" >> "$WORK/acked"
  done
  n=$(sort -u "$WORK/acked" | wc -l)
  wait_for 30 node_has_all "$F" || fail "n$F did not catch up before the crash"
  kill9 "$F"
  cp "$WORK/old.mdb" "$WORK/n$F/data/data.mdb"
  [ "$(mdb_dump -s data -p "$WORK/n$F/data" | grep -c '^ kv/k9/' || true)" = "$old_keys" ] \
    || fail "the old copy was not put back"
  lines=$(wc -l < "$WORK/n$F.log")
  restart "$F"
  check_all "$round"
  how="the log after its applied index"
  tail -n +"$((lines + 1))" "$WORK/n$F.log" | grep -q "restored a snapshot" && how="its snapshot, then the log"
  pass "round $round: n$F's store lost its tail (back to $old_keys keys): raft replayed $how; all $n acknowledged writes on every node"
}
lost_tail $((ROUNDS + 1)) 1
lost_tail $((ROUNDS + 2)) 2 30
