#!/usr/bin/env bash
# Crash safety: kill -9 custosd at random instants during loops of rotate,
# rekey (with and without verification) and KV writes.  After every restart
# the server unseals with exactly one of the two share sets (the old one
# before the swap committed, the new one after), every acknowledged write is
# readable, and key-status is consistent.
. "$(dirname "$0")/lib.sh"

ROUNDS=${CRASH_ROUNDS:-12}
start_server a 'seal = { counter_flush_interval = "1s"; };'
init_server a 3 2
cp "$WORK/a.keys" "$WORK/cur.keys"
: > "$WORK/acked"; : > "$WORK/pending.keys"
echo 1 > "$WORK/min_term"

unseal_set() { # FILE -> 0 if the set's first share is a member and 2 shares unseal
  cli a operator unseal "$(sed -n 1p "$1")" > /dev/null 2> "$WORK/unseal.err" || true
  grep -q "not part of the current key set" "$WORK/unseal.err" && return 1
  cli a operator unseal "$(sed -n 2p "$1")" > /dev/null 2>&1 || true
  cli a status > /dev/null 2>&1
}

worker() { # ROUND
  local r=$1 i=0 out nonce vnonce
  while :; do
    i=$((i + 1))
    case $((i % 6)) in
      0) # rotate; remember the term once acknowledged
        out=$(cli a operator rotate --format json 2>/dev/null) && echo "$out" | json term > "$WORK/min_term" ;;
      3) # rekey, alternating verify / no verify
        local verify=""; [ $(( (i / 6 + r) % 2 )) = 0 ] && verify="--verify"
        out=$(cli a operator rekey --init --key-shares 3 --key-threshold 2 $verify --format json 2>/dev/null) || continue
        nonce=$(echo "$out" | json nonce)
        cli a operator rekey --nonce "$nonce" "$(sed -n 1p "$WORK/cur.keys")" >/dev/null 2>&1 || continue
        # Without verification the swap commits before the new shares reach
        # us: mark that window, so a lost response is recognised as such.
        [ -z "$verify" ] && echo inflight > "$WORK/rekey_state"
        out=$(cli a operator rekey --nonce "$nonce" "$(sed -n 2p "$WORK/cur.keys")" --format json 2>/dev/null) || continue
        echo "$out" | json_array keys_hex > "$WORK/pending.keys"
        if [ -n "$verify" ]; then
          vnonce=$(echo "$out" | json verification_nonce)
          cli a operator rekey --verify --nonce "$vnonce" "$(sed -n 1p "$WORK/pending.keys")" >/dev/null 2>&1 || continue
          cli a operator rekey --verify --nonce "$vnonce" "$(sed -n 3p "$WORK/pending.keys")" >/dev/null 2>&1 || continue
        fi
        mv "$WORK/pending.keys" "$WORK/cur.keys"; : > "$WORK/pending.keys"; echo "$verify" >> "$WORK/rekeys"
        rm -f "$WORK/rekey_state" ;;
      *) # a write, recorded only once acknowledged
        cli a kv put "crash/$r/$i" v="$r-$i" >/dev/null 2>&1 && echo "crash/$r/$i $r-$i" >> "$WORK/acked" ;;
    esac
  done
}

lost_rekeys=0
for round in $(seq 1 "$ROUNDS"); do
  worker "$round" > /dev/null 2>&1 &
  wpid=$!; PIDS+=("$wpid")
  sleep "0.$(( RANDOM % 9 + 1 ))$(( RANDOM % 10 ))"
  kill -9 "$PID_a"; wait "$PID_a" 2>/dev/null || true
  kill -9 "$wpid" 2>/dev/null || true; wait "$wpid" 2>/dev/null || true
  start_server a

  # Exactly one share set works.
  if [ -s "$WORK/pending.keys" ]; then
    other="$WORK/pending.keys"
    cli a operator unseal "$(sed -n 1p "$other")" > /dev/null 2> "$WORK/unseal.err" || true
    if grep -q "not part of the current key set" "$WORK/unseal.err"; then
      unseal_set "$WORK/cur.keys" || fail "round $round: neither share set unseals"
    else
      cli a operator unseal --reset >/dev/null 2>&1 || true
      cli a operator unseal "$(sed -n 1p "$WORK/cur.keys")" > /dev/null 2> "$WORK/unseal.err" || true
      grep -q "not part of the current key set" "$WORK/unseal.err" || fail "round $round: both share sets accepted"
      cli a operator unseal --reset >/dev/null 2>&1 || true
      unseal_set "$WORK/pending.keys" || fail "round $round: new share set does not unseal"
      mv "$WORK/pending.keys" "$WORK/cur.keys"
    fi
    : > "$WORK/pending.keys"
  elif ! unseal_set "$WORK/cur.keys"; then
    # A rekey without verification committed and the new shares were lost
    # with the killed response: the case --verify exists for.
    [ -f "$WORK/rekey_state" ] || fail "round $round: known shares refused and no rekey swap was in flight"
    lost_rekeys=$((lost_rekeys + 1))
    echo "round $round: a non-verified rekey's response was lost; re-initializing" >&2
    stop_server a KILL; rm -rf "$WORK/a/data"; mkdir -p "$WORK/a/data"; start_server a
    init_server a 3 2; cp "$WORK/a.keys" "$WORK/cur.keys"; unseal_set "$WORK/cur.keys"
    : > "$WORK/acked"; echo 1 > "$WORK/min_term"
    continue
  fi
  cli a status > /dev/null || fail "round $round: sealed after unseal"
  rm -f "$WORK/rekey_state"

  # Every acknowledged write is readable.
  while read -r path val; do
    got=$(cli a kv get "$path" --field v 2>&1) || fail "round $round: acknowledged $path lost ($got)"
    [ "$got" = "$val" ] || fail "round $round: $path = '$got', want '$val'"
  done < "$WORK/acked"
  # key-status is consistent: term at least the last acknowledged rotation,
  # every term listed once and ascending.
  ks=$(cli a operator key-status --format json) || fail "round $round: key-status"
  term=$(echo "$ks" | json term)
  [ "$term" -ge "$(cat "$WORK/min_term")" ] || fail "round $round: term $term < acknowledged $(cat "$WORK/min_term")"
  terms=$(echo "$ks" | grep -o '"term":[0-9]*' | tail -n +2 | cut -d: -f2 | tr '\n' ' ')
  [ "$terms" = "$(seq -s ' ' 1 "$term") " ] || fail "round $round: terms listed: $terms (active $term)"
  echo "round $round: term $term, $(wc -l < "$WORK/acked") acknowledged writes intact"
done
rekeys=$(wc -l < "$WORK/rekeys" 2>/dev/null || echo 0)
pass "$ROUNDS kill -9 rounds, $rekeys completed rekeys: one valid share set each time, no acknowledged write lost ($lost_rekeys lost non-verified rekey responses)"
