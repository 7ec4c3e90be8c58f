#!/usr/bin/env bash
# Rewrap and retirement, standalone, through the real CLI:
#  - key-status lists every term with state and exact value counts, and
#    `key-status --verify` (a full scan in the same read transaction) agrees
#    with the kept counts after every step below;
#  - refusals: retiring the active term, a term that still holds values
#    (with the count and a hint), term 0, a term twice; --rate 0, 2^64,
#    above the limit, junk;
#  - REWRAP_ROUNDS (22) rounds of kill -9 at a random instant while a rewrap
#    runs (random rates, a rotation whenever a pass is done, so passes
#    restart mid-way) and a writer overwrites values the rewrap is moving:
#    after each restart the same shares unseal, every bulk value and every
#    acknowledged write reads back (the newer write always wins), the exact
#    count left under older terms never grows, and the pass continues;
#  - RETIRE_ROUNDS (6) kills at random instants during retire-term: the
#    term is either still decrypt-only or retired, never half, and every
#    value reads back;
#  - `rotate --rewrap --retire` ends with every older term retired and
#    every value under the new term;
#  - a snapshot taken mid-pass and restored continues the pass;
#  - a restore that would bring a retired key back is refused (terms named),
#    one whose values do not need it keeps the term retired, --force brings
#    it back with a warning.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || { echo "skip: python3 missing"; exit 77; }
# Until the CLI's command table wires the lifecycle commands (client/cli/lifecycle.c).
case $("$CUSTOS" operator rewrap --status 2>&1 || true) in
  *"unknown subcommand"*) echo "skip: this custos has no 'operator rewrap'"; exit 77 ;;
esac

ROUNDS=${REWRAP_ROUNDS:-22}
RETIRE_ROUNDS=${RETIRE_ROUNDS:-6}
BULK=${REWRAP_BULK:-3000}
HOT=100
KVB="$TESTS_DIR/blackbox/kv_bulk.py"

start_server a 'seal = { counter_flush_interval = "1s"; };'
init_server a 3 2
unseal_with a 1 2

bulk() { python3 "$KVB" "$PORT_a" "$WORK/tls/ca.crt" "$TOKEN" "$@"; }

# ks_json: key-status --verify as JSON in $WORK/ks.json; fails on a mismatch.
ks_json() {
  cli a operator key-status --verify --format json > "$WORK/ks.json" 2> "$WORK/ks.err" \
    || fail "key-status --verify failed: $(cat "$WORK/ks.json" "$WORK/ks.err")"
  grep -q '"counts_match":true' "$WORK/ks.json" || fail "kept counts differ from a full scan: $(cat "$WORK/ks.json")"
}
# ks_get EXPR: a value computed from $WORK/ks.json (python, k = the document).
ks_get() { python3 -c "import json,sys; k=json.load(open('$WORK/ks.json')); print($1)"; }
old_values() { ks_get "sum(t['values'] for t in k['terms'] if t['term'] < k['term'])"; }
one_active() {
  [ "$(ks_get "sum(1 for t in k['terms'] if t['state']=='active')")" = 1 ] || fail "not exactly one active term: $(cat "$WORK/ks.json")"
}
rw_status() { cli a operator rewrap --status --format json > "$WORK/rw.json" 2>/dev/null; }
rw_get() { python3 -c "import json; print(json.load(open('$WORK/rw.json'))['$1'])"; }

check_all() { # WHAT
  local out
  out=$(bulk check bulk "$BULK" 0) || fail "$1: bulk values: $out"
  out=$(bulk journal "$WORK/journal") || fail "$1: acknowledged writes: $out"
  ks_json
  one_active
}

restart_unseal() {
  start_server a
  unseal_with a 1 2
}

# ---- data under term 1: KV, tokens, policies, rotate config --------------------
bulk put bulk "$BULK" 0 > /dev/null || fail "bulk put"
: > "$WORK/journal"
for i in $(seq 0 $((HOT - 1))); do
  p=$(printf 'hot/k%03d' "$i")
  echo "P $p 0" >> "$WORK/journal"
  cli a kv put "$p" v=0 > /dev/null || fail "kv put $p"
  echo "A $p 0" >> "$WORK/journal"
done
cli a token create --policy default --format json > /dev/null || fail "token create"
echo '{"rules":[{"path":"app/*","capabilities":["read"]}]}' > "$WORK/p.json"
cli a policy write app "$WORK/p.json" > /dev/null || fail "policy write"
cli a operator rotate-config --max-operations 1000000 > /dev/null || fail "rotate-config"
ks_json
[ "$(ks_get "k['terms'][0]['state']")" = active ] || fail "term 1 not active: $(cat "$WORK/ks.json")"
[ "$(ks_get "k['terms'][0]['values']")" -ge $((BULK + HOT + 3)) ] || fail "term 1 counts too few values: $(cat "$WORK/ks.json")"
cli a operator key-status > "$WORK/ks.txt" || fail "key-status (table)"
grep -q "Activation Time" "$WORK/ks.txt" && grep -q "active" "$WORK/ks.txt" || fail "key-status table: $(cat "$WORK/ks.txt")"
curl -s --max-time 10 --cacert "$WORK/tls/ca.crt" -H "X-Vault-Token: $TOKEN" "https://127.0.0.1:$PORT_a/v1/sys/key-status" > "$WORK/ks.http"
grep -q '"terms":\[{"term":1,"state":"active"' "$WORK/ks.http" && grep -q "\"values\":$(ks_get "k['terms'][0]['values']")" "$WORK/ks.http" \
  || fail "GET /v1/sys/key-status: $(cat "$WORK/ks.http")"
pass "key-status (CLI and GET /v1/sys/key-status): states, times and exact counts; --verify agrees with a full scan"

# ---- refusals ----------------------------------------------------------------------
expect_err "active term" cli a operator retire-term 1
cli a operator rotate > /dev/null || fail "rotate"
cli a operator snapshot save "$WORK/early.snap" > /dev/null || fail "snapshot save (early)"
cp "$WORK/journal" "$WORK/journal.early"
expect_err "still encrypts" cli a operator retire-term 1
grep -q "rewrap" "$WORK/err" || fail "no rewrap hint: $(cat "$WORK/err")"
expect_err "no key for term 99" cli a operator retire-term 99
expect_exit 2 cli a operator retire-term 0
expect_exit 2 cli a operator retire-term x
expect_exit 2 cli a operator rewrap --rate 0
expect_exit 2 cli a operator rewrap --rate 18446744073709551616
expect_exit 2 cli a operator rewrap --rate 18446744073709551615
expect_exit 2 cli a operator rewrap --rate 1000001
expect_exit 2 cli a operator rewrap --rate -5
expect_exit 2 cli a operator rewrap --below-term junk
expect_exit 2 cli a operator rotate --retire
LIMITED=$(cli a token create --policy app --format json | json token)
[ -n "$LIMITED" ] || LIMITED=$(cli a token create --policy app --format json | json client_token)
TOKEN=$LIMITED expect_err "permission denied" cli a operator rewrap
TOKEN=$LIMITED expect_err "permission denied" cli a operator retire-term 1
TOKEN=$LIMITED expect_err "permission denied" cli a operator key-status
rw_status || fail "rewrap --status before any pass"
[ "$(rw_get state)" = none ] || fail "a pass before any was started: $(cat "$WORK/rw.json")"
# What the CLI never sends: a rate of 2^63-1 and term 0 in raw frames.
TOKEN_A=$TOKEN
LISTENER_EXTRA='idle_timeout = "1s";' start_server b
init_server b 1 1
cli b operator unseal "$(key b 1)" > /dev/null
out=$(raw_send b "$(raw_frame "$(raw_request 7 160 "$(pb_uint 2 9223372036854775807)")")")
echo "$out" | grep -q "id=7 code=1 .*rate 9223372036854775807 is out of range" || fail "raw rewrap rate 2^63-1: $out"
out=$(raw_send b "$(raw_frame "$(raw_request 8 162 "$(pb_uint 1 0)")")")
echo "$out" | grep -q "id=8 code=1 .*term 0 is not a data term" || fail "raw retire-term 0: $out"
out=$(raw_send b "$(raw_frame "$(raw_request 9 160 "$(pb_uint 1 4294967295)$(pb_uint 2 1)")")")
echo "$out" | grep -q "id=9 code=0" || fail "raw rewrap below_term 2^32-1: $out"
stop_server b
TOKEN=$TOKEN_A
pass "refusals: active term, term in use (count + hint), unknown term, bad rates and terms (CLI and raw frames)"

# ---- kill -9 during rewrap -------------------------------------------------------------
writer() { # ROUND: overwrites hot keys (and new keys), journaled
  local r=$1 i=0 p v
  while :; do
    i=$((i + 1))
    if [ $((i % 3)) = 0 ]; then p="w/$r/$i"; else p=$(printf 'hot/k%03d' $((RANDOM % HOT))); fi
    if [ $((i % 7)) = 3 ]; then # a delete racing the rewrap: it must never come back
      echo "P $p -" >> "$WORK/journal"
      cli a kv delete "$p" > /dev/null 2>&1 && echo "A $p -" >> "$WORK/journal"
      continue
    fi
    v="$r-$i"
    echo "P $p $v" >> "$WORK/journal"
    cli a kv put "$p" v="$v" > /dev/null 2>&1 && echo "A $p $v" >> "$WORK/journal"
  done
}

rotations=0
for round in $(seq 1 "$ROUNDS"); do
  ks_json
  if [ "$(old_values)" = 0 ]; then
    cli a operator rotate > /dev/null || fail "round $round: rotate"
    rotations=$((rotations + 1))
  fi
  rate=$(( (RANDOM % 20 + 1) * 100 ))
  cli a operator rewrap --rate "$rate" > /dev/null 2> "$WORK/err" || fail "round $round: rewrap: $(cat "$WORK/err")"
  writer "$round" > /dev/null 2>&1 &
  wpid=$!; PIDS+=("$wpid")
  sleep "0.$(( RANDOM % 8 + 1 ))"
  rw_status || fail "round $round: rewrap --status"
  before=$(rw_get remaining)
  # While the writer and the rewrap commit: the scan and the kept counts
  # come from one read transaction, so they agree even now.
  cli a operator key-status --verify --format json > "$WORK/ksw.json" 2>&1 || fail "round $round: verify under load: $(cat "$WORK/ksw.json")"
  grep -q '"counts_match":true' "$WORK/ksw.json" || fail "round $round: counts differ under load: $(cat "$WORK/ksw.json")"
  sleep "0.0$(( RANDOM % 10 ))"
  kill -9 "$PID_a"; wait "$PID_a" 2>/dev/null || true
  kill -9 "$wpid" 2>/dev/null || true; wait "$wpid" 2>/dev/null || true
  restart_unseal
  check_all "round $round"
  rw_status || fail "round $round: rewrap --status after restart"
  after=$(rw_get remaining)
  [ "$after" -le "$before" ] || fail "round $round: $after values left under older terms after the restart, $before before the kill"
  # key-status was read first and the pass goes on meanwhile: never more left than it said.
  [ "$after" -le "$(old_values)" ] || fail "round $round: rewrap remaining $after, key-status $(old_values) before it"
done
pass "$ROUNDS kill -9 rounds during rewrap ($rotations rotations): every value and acknowledged write reads back, counts exact, progress kept"

# The whole pass, which under ASan on a loaded box can take longer than
# one CLI call's usual 20 s.
CLI_TIMEOUT=120 cli a operator rewrap --wait --format json > "$WORK/rw.json" 2> "$WORK/err" ||
  fail "rewrap --wait (exit $?): $(cat "$WORK/err")"
[ "$(rw_get state)" = finished ] || fail "rewrap --wait did not finish: $(cat "$WORK/rw.json")"
check_all "after rewrap --wait"
[ "$(old_values)" = 0 ] || fail "values left under older terms: $(cat "$WORK/ks.json")"
pass "rewrap --wait: nothing left under older terms (tokens, policies, rotate-config, root key included)"

cli a operator snapshot save "$WORK/preretire.snap" > /dev/null || fail "snapshot save (pre-retire)"

# ---- kill -9 during retire ----------------------------------------------------------------
active=$(ks_get "k['term']")
kills=0
for term in $(ks_get "' '.join(str(t['term']) for t in k['terms'] if t['state']=='decrypt-only')"); do
  [ "$kills" -ge "$RETIRE_ROUNDS" ] && break
  cli a operator retire-term "$term" > /dev/null 2>&1 &
  rpid=$!; PIDS+=("$rpid")
  sleep "0.0$(( RANDOM % 4 ))$(( RANDOM % 10 ))"
  kill -9 "$PID_a"; wait "$PID_a" 2>/dev/null || true
  wait "$rpid" 2>/dev/null || true
  kills=$((kills + 1))
  restart_unseal
  check_all "retire kill $kills"
  st=$(ks_get "[t['state'] for t in k['terms'] if t['term']==$term][0]")
  case $st in decrypt-only|retired) ;; *) fail "term $term is $st after a kill during its retirement" ;; esac
done
[ "$kills" -gt 0 ] || fail "no term to retire"
for term in $(ks_get "' '.join(str(t['term']) for t in k['terms'] if t['state']=='decrypt-only')"); do
  cli a operator retire-term "$term" > "$WORK/out" 2> "$WORK/err" || fail "retire-term $term: $(cat "$WORK/err")"
  grep -q "retired on" "$WORK/out" || fail "retire-term output: $(cat "$WORK/out")"
done
check_all "after retiring"
[ "$(ks_get "sum(1 for t in k['terms'] if t['state']=='retired' and t['retirement_time'])")" = $((active - 1)) ] \
  || fail "not every older term retired: $(cat "$WORK/ks.json")"
expect_err "already retired" cli a operator retire-term 1
pass "$kills kill -9 during retire-term: each term decrypt-only or retired, never half; all $((active - 1)) older terms retired"

# ---- snapshots never bring a retired key back silently ------------------------------------
expect_err "bring retired keys back" cli a operator snapshot restore "$WORK/early.snap"
grep -q "term(s) 1" "$WORK/err" || fail "refusal does not name term 1: $(cat "$WORK/err")"
check_all "after the refused restore"
# Taken after the rewrap, before the retirements: no value needs the keys.
cli a operator snapshot restore "$WORK/preretire.snap" > /dev/null 2> "$WORK/err" || fail "restore pre-retire: $(cat "$WORK/err")"
check_all "after restoring the pre-retire snapshot"
[ "$(ks_get "sum(1 for t in k['terms'] if t['state']!='retired' and t['term']!=k['term'])")" = 0 ] \
  || fail "the restore revived retired terms: $(cat "$WORK/ks.json")"
grep -q "stay retired" "$WORK/a.log" || fail "no log line about terms kept retired"
cli a operator snapshot inspect "$WORK/preretire.snap" --format json | grep -q '"state":"decrypt-only"' \
  || fail "snapshot inspect lacks term states"
pass "restore: a snapshot needing retired keys refused (terms named); one that does not is restored with them kept retired"

# ---- a snapshot taken mid-pass, restored: the pass continues ----------------------------
cli a operator rotate > /dev/null || fail "rotate before snapshot"
sleep 1.5 # a finished pass and a rotation: nothing starts by itself
rw_status || fail "status after a rotation"
[ "$(rw_get state)" = finished ] && [ "$(rw_get remaining)" -gt 0 ] \
  || fail "after a finished pass and a rotation: $(cat "$WORK/rw.json")"
ks_json
[ "$(old_values)" = "$(rw_get remaining)" ] || fail "a pass started by itself after the rotation"
cli a operator rewrap --rate 200 > /dev/null || fail "slow rewrap"
sleep 1
cli a operator snapshot save "$WORK/mid.snap" > /dev/null || fail "snapshot save"
if command -v script > /dev/null; then # on a terminal: the progress bar
  CUSTOS_ADDR="127.0.0.1:$PORT_a" CUSTOS_CACERT="$WORK/tls/ca.crt" CUSTOS_TOKEN="$TOKEN" \
    timeout 60 script -qec "$CUSTOS operator rewrap --rate 100000 --wait" /dev/null > "$WORK/tty.out" 2>&1 \
    || fail "rewrap --wait on a terminal: $(cat "$WORK/tty.out")"
  grep -q 'rewrap \[[#.]*\] *[0-9]*%' "$WORK/tty.out" && grep -q "Success! Rewrap complete" "$WORK/tty.out" \
    || fail "no progress bar on a terminal: $(cat -v "$WORK/tty.out")"
else
  cli a operator rewrap --rate 100000 --wait > /dev/null 2>&1 || fail "rewrap --wait after snapshot"
fi
cli a operator snapshot restore "$WORK/mid.snap" > /dev/null 2> "$WORK/err" || fail "restore: $(cat "$WORK/err")"
rw_status || fail "status after restore"
[ "$(rw_get state)" != finished ] || fail "restored mid-pass cursor reads finished: $(cat "$WORK/rw.json")"
cli a operator rewrap --status --wait > /dev/null 2> "$WORK/err" || fail "restored pass did not finish: $(cat "$WORK/err")"
check_all "after restoring a mid-pass snapshot"
[ "$(old_values)" = 0 ] || fail "values left after the restored pass: $(cat "$WORK/ks.json")"
pass "a snapshot restored mid-pass: the driver continues the restored cursor to the end"

# ---- rotate --rewrap --retire ----------------------------------------------------------
before_active=$(ks_get "k['term']")
cli a operator rotate --rewrap --retire --rate 20000 > "$WORK/out" 2> "$WORK/err" \
  || fail "rotate --rewrap --retire: $(cat "$WORK/err")"
grep -q "Success! Term $((before_active + 1)) is active" "$WORK/out" || fail "rotate --rewrap --retire output: $(cat "$WORK/out")"
check_all "after rotate --rewrap --retire"
[ "$(ks_get "k['term']")" = $((before_active + 1)) ] || fail "active term not $((before_active + 1))"
[ "$(ks_get "sum(1 for t in k['terms'] if t['state']!='retired' and t['term']!=k['term'])")" = 0 ] \
  || fail "older terms left unretired: $(cat "$WORK/ks.json")"
[ "$(old_values)" = 0 ] || fail "values under older terms: $(cat "$WORK/ks.json")"
grep -q "rewrap" "$WORK/err" || fail "no progress shown: $(cat "$WORK/err")"
pass "rotate --rewrap --retire: one term left, every value under it"

# ---- the keys really are gone from storage ------------------------------------------------
stop_server a
restart_unseal
check_all "after a clean restart"
pass "after a restart: the same terms retired, every value readable"

# ---- a forced restore brings the keys back, and says so -----------------------------------
cli a operator snapshot restore --force "$WORK/early.snap" > /dev/null 2> "$WORK/err" || fail "forced restore: $(cat "$WORK/err")"
grep -q "brings back the keys of" "$WORK/a.log" || fail "no warning about revived keys"
out=$(bulk check bulk "$BULK" 0) || fail "bulk after the forced restore: $out"
out=$(bulk journal "$WORK/journal.early") || fail "writes after the forced restore: $out"
cli a operator key-status --verify --format json > "$WORK/ks.json" || fail "key-status after forced restore"
[ "$(ks_get "[t['state'] for t in k['terms'] if t['term']==1][0]")" = decrypt-only ] || fail "term 1 not back: $(cat "$WORK/ks.json")"
pass "restore --force of a snapshot from before the retirements: keys back (warned), values readable"
