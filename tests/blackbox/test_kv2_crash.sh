#!/usr/bin/env bash
# Crash safety of versioned KV: kill -9 custosd at random instants while
# three writers race on the same few paths with versioned puts, soft
# deletes, destroys and (on a path with max_versions 3) pruning.  After
# every restart: every acknowledged version is readable with exactly the
# value that write sent (or deleted / destroyed as acknowledged; an
# unacknowledged delete or destroy may or may not have happened); no two
# acknowledged writes got the same version; the metadata's current
# version is at least the highest acknowledged one and the pruned path
# keeps exactly its last 3; the per-term value counts equal a full scan
# (the store recounts at every start and says so when they differed).
. "$(dirname "$0")/lib.sh"

ROUNDS=${CRASH_ROUNDS:-12}
start_server a
init_server a 3 2
unseal_with a 1 2
: > "$WORK/acked"; : > "$WORK/ops"
for p in c/a c/b; do cli a kv metadata put --max-versions 1000 "$p" >/dev/null || fail "metadata $p"; done
cli a kv metadata put --max-versions 3 c/pruned >/dev/null || fail "metadata c/pruned"

# worker ROUND W: puts (recorded "path version value" once acknowledged),
# and now and then a delete or destroy of the version it wrote last
# (recorded "try" before it is sent, "done" once acknowledged).
worker() {
  local r=$1 w=$2 i=0 p out v last=""
  while :; do
    i=$((i + 1))
    case $(( (i + w) % 3 )) in 0) p=c/a ;; 1) p=c/b ;; *) p=c/pruned ;; esac
    if [ -n "$last" ] && [ $((i % 5)) = 0 ]; then
      set -- $last
      op=delete; [ $((i % 10)) = 0 ] && op=destroy
      echo "try $op $1 $2" >> "$WORK/ops"
      if [ $op = delete ]; then cli a kv delete --mount kv --versions "$2" "$1" >/dev/null 2>&1
      else cli a kv destroy --versions "$2" "$1" >/dev/null 2>&1; fi && echo "done $op $1 $2" >> "$WORK/ops"
      last=""
      continue
    fi
    out=$(cli a kv put --mount kv "$p" v="$r.$w.$i" --format json 2>/dev/null) || continue
    v=$(echo "$out" | json version)
    echo "$p $v $r.$w.$i" >> "$WORK/acked"
    last="$p $v"
  done
}

check_all() { # ROUND
  local r=$1 p v val got err
  # Unique versions per path among acknowledged writes.
  dup=$(awk '{print $1, $2}' "$WORK/acked" | sort | uniq -d | head -n 3)
  [ -z "$dup" ] || fail "round $r: two acknowledged writes got one version: $dup"
  for p in c/a c/b c/pruned; do
    max=$(awk -v p="$p" '$1 == p && $2 > m { m = $2 } END { print m + 0 }' "$WORK/acked")
    md=$(cli a kv metadata get "$p" --format json) || fail "round $r: metadata of $p"
    cur=$(echo "$md" | json current_version); old=$(echo "$md" | json oldest_version)
    [ "$cur" -ge "$max" ] || fail "round $r: $p current_version $cur < acknowledged $max"
    if [ "$p" = c/pruned ] && [ "$cur" -ge 3 ]; then
      [ "$old" = $((cur - 2)) ] || fail "round $r: c/pruned keeps $old..$cur, not the last 3"
    fi
    echo "$p $old" >> "$WORK/oldest.$r"
  done
  while read -r p v val; do
    old=$(awk -v p="$p" '$1 == p { print $2 }' "$WORK/oldest.$r")
    [ "$v" -lt "$old" ] && continue   # pruned (max_versions 3)
    if got=$(cli a kv get --mount kv --version "$v" "$p" --field v 2>"$WORK/get.err"); then
      [ "$got" = "$val" ] || fail "round $r: $p v$v is '$got', the write sent '$val'"
      grep -q "done .* $p $v\$" "$WORK/ops" && fail "round $r: $p v$v readable after an acknowledged delete/destroy"
    else
      err=$(cat "$WORK/get.err")
      case "$err" in
        *"is deleted"*|*"is destroyed"*)
          grep -q "try .* $p $v\$" "$WORK/ops" || fail "round $r: $p v$v gone without a delete: $err" ;;
        *) fail "round $r: $p v$v unreadable: $err" ;;
      esac
    fi
  done < "$WORK/acked"
  grep -q "did not match the data" "$WORK/a.log" && fail "round $r: value counts differed from the scan"
  return 0
}

for round in $(seq 1 "$ROUNDS"); do
  wpids=()
  for w in 1 2 3; do worker "$round" "$w" > /dev/null 2>&1 & wpids+=($!); PIDS+=($!); done
  sleep "0.$(( RANDOM % 9 + 1 ))$(( RANDOM % 10 ))"
  kill -9 "$PID_a"; wait "$PID_a" 2>/dev/null || true
  for p in "${wpids[@]}"; do kill -9 "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  start_server a
  unseal_with a 1 2
  check_all "$round"
done
n=$(wc -l < "$WORK/acked")
[ "$n" -ge $((ROUNDS * 2)) ] || fail "only $n acknowledged writes in $ROUNDS rounds"
pass "$ROUNDS kill -9 rounds: $n acknowledged versions, each readable as written (or deleted/destroyed as asked), no version twice, pruning exact, counts equal the scan"
