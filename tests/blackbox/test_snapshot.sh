#!/usr/bin/env bash
# Snapshots on a standalone server: save / inspect / verify / restore of this
# installation online, a foreign snapshot refused and then forced (sealed,
# the snapshot's t/n and shares), restore onto an uninitialized server
# without a token, a snapshot larger than 4 MiB, corrupt and truncated files
# refused, kill -9 during save and during restore (nothing lost, exactly one
# share set unseals), scheduled and after-key-change snapshots (retain).
. "$(dirname "$0")/lib.sh"

ROUNDS=${SNAPSHOT_ROUNDS:-20}
# (ASan: every process is several times slower; the normal build runs 20)
[ "${CUSTOS_SANITIZE:-0}" = 1 ] && ROUNDS=${SNAPSHOT_ROUNDS:-8}
# wait_for SECONDS cmd...: retries cmd until it succeeds.
wait_for() {
  local limit=$1; shift
  local k
  for k in $(seq 1 $(( limit * 10 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}

start_server a
init_server a 3 2
TOKEN_A=$TOKEN
cp "$WORK/a.keys" "$WORK/akeys"
unseal_with a 1 2
cli a kv put app/db password=before user=u1 >/dev/null
cli a operator rotate >/dev/null
cli a kv put app/rotated v=term2 >/dev/null

# ---- save, inspect, verify
cli a operator snapshot save "$WORK/s1.snap" > "$WORK/out" || fail "save: $(cat "$WORK/out")"
grep -q "Success! Snapshot saved" "$WORK/out" || fail "save output: $(cat "$WORK/out")"
cli a operator snapshot inspect "$WORK/s1.snap" --format json > "$WORK/insp" || fail "inspect"
[ "$(json threshold < "$WORK/insp")" = 2 ] && [ "$(json shares < "$WORK/insp")" = 3 ] \
  && [ "$(json active_term < "$WORK/insp")" = 2 ] && [ "$(json checksum_ok < "$WORK/insp")" = true ] \
  || fail "inspect header: $(cat "$WORK/insp")"
grep -q '"terms":\[{"term":1,.*{"term":2,' "$WORK/insp" || fail "inspect terms: $(cat "$WORK/insp")"
# Values stay barrier-encrypted: no plaintext secret in the file.
! grep -qa "before" "$WORK/s1.snap" || fail "plaintext secret found in the snapshot file"
# inspect works with no server at all.
CUSTOS_ADDR=127.0.0.1:1 "$CUSTOS" operator snapshot inspect "$WORK/s1.snap" > "$WORK/out" || fail "offline inspect"
grep -q "Checksum *ok" "$WORK/out" || fail "inspect text: $(cat "$WORK/out")"
pass "save, then inspect offline: format 1, t=2 n=3, terms 1..2, checksum ok, no plaintext"

CUSTOS_ADDR=127.0.0.1:1 "$CUSTOS" operator snapshot verify "$WORK/s1.snap" "$(key a 1)" "$(key a 3)" \
  > "$WORK/out" || fail "verify with two shares: $(cat "$WORK/out")"
grep -q "root key, MAC and keyring (2 terms) verified" "$WORK/out" || fail "verify output: $(cat "$WORK/out")"
# Shares read like operator unseal: from stdin when not given.
printf '%s\n%s\n' "$(key a 2)" "$(key a 3)" | CUSTOS_ADDR=127.0.0.1:1 "$CUSTOS" operator snapshot verify \
  "$WORK/s1.snap" > "$WORK/out" || fail "verify from stdin"
expect_err "fewer than\|needs 2 shares\|no key given" sh -c "echo '$(key a 1)' | '$CUSTOS' operator snapshot verify '$WORK/s1.snap'"
pass "verify offline: a threshold of shares opens root key, MAC and keyring (arguments or stdin)"

# ---- a second installation (for foreign snapshots and bad shares)
start_server b
init_server b 1 1
TOKEN_B=$TOKEN
unseal_with b 1
TOKEN=$TOKEN_B cli b kv put other/x v=from-b >/dev/null
TOKEN=$TOKEN_B cli b operator snapshot save "$WORK/b.snap" >/dev/null || fail "save b"
expect_err "not part of the snapshot's key set" "$CUSTOS" operator snapshot verify "$WORK/s1.snap" \
  "$(key a 1)" "$(sed -n 1p "$WORK/b.keys")00"
expect_err "key share must be" "$CUSTOS" operator snapshot verify "$WORK/b.snap" "$(key a 1)"
pass "verify refuses shares of another key set with a clear error"

# ---- online restore of this installation
TOKEN=$TOKEN_A
cli a kv put app/db password=after >/dev/null
cli a kv put app/new v=1 >/dev/null
cli a operator rotate >/dev/null
cli a operator snapshot restore "$WORK/s1.snap" > "$WORK/out" || fail "restore s1: $(cat "$WORK/out")"
grep -q "serves the restored data" "$WORK/out" || fail "restore output: $(cat "$WORK/out")"
cli a status > /dev/null || fail "sealed after an online restore of this installation"
[ "$(cli a kv get app/db --field password)" = before ] || fail "app/db not restored"
[ "$(cli a kv get app/rotated --field v)" = term2 ] || fail "app/rotated not readable"
expect_err "no secret at" cli a kv get app/new
[ "$(cli a operator key-status --format json | json term)" = 2 ] || fail "keyring not the snapshot's"
cli a kv put app/after-restore v=ok >/dev/null || fail "write after restore"
cli a operator rotate >/dev/null || fail "rotate after restore"
[ "$(cli a kv get app/after-restore --field v)" = ok ] || fail "read after restore + rotate"
pass "online restore of this installation: old data back, newer data gone, keeps serving with term 2, writes and rotates on"

# ---- foreign snapshot: refused, then forced
expect_err "another installation" cli a operator snapshot restore "$WORK/b.snap"
[ "$(cli a kv get app/db --field password)" = before ] || fail "refused restore changed something"
cli a operator snapshot restore --force "$WORK/b.snap" > "$WORK/out" || fail "forced restore: $(cat "$WORK/out")"
grep -q "The server is sealed: unseal it with 1 of the 1 shares" "$WORK/out" || fail "forced output: $(cat "$WORK/out")"
st=$(cli a status --format json || true)
[ "$(echo "$st" | json sealed)" = true ] && [ "$(echo "$st" | json t)" = 1 ] && [ "$(echo "$st" | json n)" = 1 ] \
  || fail "after a forced restore: $st"
expect_err "must be 32 bytes" cli a operator unseal "$(key a 1)"
cli a operator unseal "$(sed -n 1p "$WORK/b.keys")" >/dev/null || true
cli a status >/dev/null || fail "b's share does not unseal a after the forced restore"
[ "$(TOKEN=$TOKEN_B cli a kv get other/x --field v)" = from-b ] || fail "b's data on a"
expect_err "permission denied\|invalid\|token" cli a kv get other/x
pass "foreign snapshot refused without --force; forced: sealed with t=1 n=1, b's share and token work, a's do not"

# Back to a's data: a's snapshot is foreign now.
TOKEN=$TOKEN_B cli a operator snapshot restore --force "$WORK/s1.snap" >/dev/null || fail "force back"
unseal_with a 1 2
[ "$(cli a kv get app/db --field password)" = before ] || fail "a's data after forcing back"

# ---- restore onto an uninitialized server: no init, no token
start_server c
TOKEN= cli c operator snapshot restore "$WORK/s1.snap" > "$WORK/out" || fail "restore onto uninitialized: $(cat "$WORK/out")"
st=$(TOKEN= cli c status --format json || true)
[ "$(echo "$st" | json initialized)" = true ] && [ "$(echo "$st" | json sealed)" = true ] \
  && [ "$(echo "$st" | json t)" = 2 ] || fail "c after restore: $st"
cp "$WORK/akeys" "$WORK/c.keys"
unseal_with c 2 3
[ "$(cli c kv get app/db --field password)" = before ] || fail "c: app/db"
grep -q "restoring onto an uninitialized server, without a token, for 127.0.0.1" "$WORK/c.log" \
  || fail "uninitialized restore not logged"
# Once initialized, a restore needs a token with sudo.
TOKEN=bogus expect_err "permission denied\|token" cli c operator snapshot restore "$WORK/s1.snap"
pass "restore onto an uninitialized server without a token: sealed with the snapshot's t/n, its shares unseal; logged; initialized servers want a token"

# ---- corrupt and truncated files
cp "$WORK/s1.snap" "$WORK/bad.snap"
size=$(stat -c %s "$WORK/bad.snap")
printf '\xff' | dd of="$WORK/bad.snap" bs=1 seek=$((size / 2)) conv=notrunc 2>/dev/null
expect_err "checksum mismatch" cli a operator snapshot inspect "$WORK/bad.snap"
expect_err "checksum mismatch" cli a operator snapshot restore "$WORK/bad.snap"
head -c $((size - 100)) "$WORK/s1.snap" > "$WORK/trunc.snap"
expect_err "corrupt or truncated\|truncated" cli a operator snapshot inspect "$WORK/trunc.snap"
head -c 20 "$WORK/s1.snap" > "$WORK/tiny.snap"
expect_err "truncated" cli a operator snapshot restore "$WORK/tiny.snap"
echo "hello" > "$WORK/text.snap"
expect_err "not a custos snapshot" cli a operator snapshot inspect "$WORK/text.snap"
[ "$(cli a kv get app/db --field password)" = before ] || fail "a changed by refused files"
pass "corrupt, truncated and foreign-format files refused with a clear error; nothing changed"

# ---- larger than 4 MiB
# (a connection's first frame is capped at 64 KiB: many 60 KB values)
head -c 45000 /dev/urandom | base64 -w0 > "$WORK/big.val"
for i in $(seq 1 90); do cli a kv put "big/$i" v=@"$WORK/big.val" >/dev/null 2>"$WORK/err" || fail "big put $i: $(cat "$WORK/err")"; done
cli a operator snapshot save "$WORK/big.snap" >/dev/null || fail "save big"
bsize=$(stat -c %s "$WORK/big.snap")
[ "$bsize" -gt $((4 * 1024 * 1024)) ] || fail "big snapshot is only $bsize bytes"
start_server d
TOKEN= cli d operator snapshot restore "$WORK/big.snap" >/dev/null || fail "restore big onto d"
cp "$WORK/akeys" "$WORK/d.keys"
unseal_with d 1 2
for i in 1 45 90; do
  [ "$(cli d kv get "big/$i" --field v | sha256sum)" = "$(sha256sum < "$WORK/big.val")" ] || fail "big/$i differs"
done
pass "a $bsize-byte snapshot (> 4 MiB) saves and restores in chunks"

# ---- kill -9 during save and during restore
# Two states of server e: A (a's data and shares) and B (b's), switched by a
# forced restore.  After every kill exactly one share set unseals and the
# data is that state's; a save leaves a complete file or none.
stop_server d
rm -rf "$WORK/d/data"; mkdir -p "$WORK/d/data"
start_server d
TOKEN= cli d operator snapshot restore "$WORK/big.snap" >/dev/null || fail "d: initial restore"
state=A
unseal_state() { # STATE -> 0 when its shares unseal d
  local k1 k2 tok
  if [ "$1" = A ]; then k1=$(key a 1); k2=$(key a 2); else k1=$(sed -n 1p "$WORK/b.keys"); k2=""; fi
  cli d operator unseal "$k1" >/dev/null 2>"$WORK/unseal.err" || true
  grep -q "not part of the current key set" "$WORK/unseal.err" && return 1
  [ -n "$k2" ] && cli d operator unseal "$k2" >/dev/null 2>&1 || true
  cli d status >/dev/null 2>&1
}
refuses() { # STATE -> 0 when d refuses the state's first share
  local k; if [ "$1" = A ]; then k=$(key a 1); else k=$(sed -n 1p "$WORK/b.keys"); fi
  cli d operator unseal "$k" >/dev/null 2>"$WORK/unseal.err" && return 1
  grep -q "not part of the current key set\|must be 3[23] bytes" "$WORK/unseal.err"
}
check_state() { # STATE
  if [ "$1" = A ]; then
    [ "$(TOKEN=$TOKEN_A cli d kv get app/db --field password)" = before ] || return 1
    [ "$(TOKEN=$TOKEN_A cli d kv get big/3 --field v | sha256sum)" = "$(sha256sum < "$WORK/big.val")" ] || return 1
  else
    [ "$(TOKEN=$TOKEN_B cli d kv get other/x --field v)" = from-b ] || return 1
  fi
}
unseal_state A || fail "d does not unseal with a's shares"
saves_ok=0 saves_none=0 switched=0
for round in $(seq 1 "$ROUNDS"); do
  if [ "$state" = A ]; then tok=$TOKEN_A; target="$WORK/b.snap"; else tok=$TOKEN_B; target="$WORK/big.snap"; fi
  rm -f "$WORK/kill.snap"
  (
    TOKEN=$tok cli d operator snapshot save "$WORK/kill.snap" >/dev/null 2>&1 || true
    TOKEN=$tok cli d operator snapshot restore --force "$target" >/dev/null 2>"$WORK/restore.err" || true
  ) &
  wpid=$!; PIDS+=("$wpid")
  if [ $((round % 2)) = 1 ]; then
    sleep "0.$(( RANDOM % 6 ))$(( RANDOM % 10 ))"          # mostly during the save
  else
    for k in $(seq 1 200); do [ -e "$WORK/kill.snap" ] && break; kill -0 "$wpid" 2>/dev/null || break; sleep 0.05; done
    sleep "$(( RANDOM % 3 )).$(( RANDOM % 10 ))"            # during the restore (upload or commit)
  fi
  kill -9 "$PID_d"; wait "$PID_d" 2>/dev/null || true
  wait "$wpid" 2>/dev/null || true
  if [ -e "$WORK/kill.snap" ]; then
    cli d operator snapshot inspect "$WORK/kill.snap" >/dev/null 2>&1 || fail "round $round: save left a bad file"
    saves_ok=$((saves_ok + 1))
  else
    saves_none=$((saves_none + 1))
  fi
  ls "$WORK"/kill.snap.tmp.* >/dev/null 2>&1 && rm -f "$WORK"/kill.snap.tmp.*
  start_server d
  # Exactly one share set is the current one (the other's share is refused).
  ok_a=1; ok_b=1
  refuses A && ok_a=0
  cli d operator unseal --reset >/dev/null 2>&1 || true
  refuses B && ok_b=0
  [ $((ok_a + ok_b)) = 1 ] || fail "round $round: share sets accepted: A=$ok_a B=$ok_b"
  new=B; [ "$ok_a" = 1 ] && new=A
  [ "$new" = A ] && { cli d operator unseal --reset >/dev/null 2>&1 || true; unseal_state A || fail "round $round: a's shares do not unseal"; }
  cli d status >/dev/null 2>&1 || fail "round $round: still sealed"
  check_state "$new" || fail "round $round: state $new unsealed but its data is not intact"
  [ "$new" != "$state" ] && switched=$((switched + 1))
  state=$new
  [ -e "$WORK/d/data/snapshot-upload.tmp" ] && fail "round $round: staging file left after restart"
  echo "round $round: state $state ($(head -c 120 "$WORK/restore.err" 2>/dev/null))"
done
pass "$ROUNDS kill -9 rounds during save/restore: exactly one share set unseals, its data intact ($switched restores landed; $saves_ok complete saves, $saves_none none)"

# ---- scheduled and after-key-change snapshots
mkdir -p "$WORK/snaps"
start_server e "snapshot = { path = \"$WORK/snaps\"; retain = 2; after_key_change = true; };"
init_server e 3 2
TOKEN_E=$TOKEN
sleep 1.5
[ -z "$(ls "$WORK/snaps")" ] || fail "a snapshot was written while sealed: $(ls "$WORK/snaps")"
unseal_with e 1 2
count() { ls "$WORK/snaps" | grep -c '^custos-.*\.snap$' || true; }
wait_for_count() { local k; for k in $(seq 1 100); do [ "$(count)" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_for_count 1 || fail "no snapshot after init + first unseal"
first=$(ls "$WORK/snaps" | head -n1)
for r in 1 2 3; do
  cli e operator rotate >/dev/null
  sleep 1.2
done
wait_for_count 2 || fail "no snapshots after rotations"
newest=$(ls "$WORK/snaps" | grep '\.snap$' | tail -n1)
newest_term() { cli e operator snapshot inspect --format json "$WORK/snaps/$(ls "$WORK/snaps" | grep '\.snap$' | tail -n1)" 2>/dev/null | json active_term; }
for k in $(seq 1 100); do [ "$(newest_term)" = 4 ] && break; sleep 0.1; done
[ "$(newest_term)" = 4 ] || fail "newest scheduled snapshot is not at term 4: $(ls "$WORK/snaps")"
[ "$(count)" = 2 ] || fail "retain = 2 but $(count) files: $(ls "$WORK/snaps")"
[ -e "$WORK/snaps/$first" ] && fail "oldest snapshot not pruned"
ls -a "$WORK/snaps" | grep -q '\.tmp$' && fail "temporary file left: $(ls -a "$WORK/snaps")"
st=$(cli e status --format json)
echo "$st" | grep -q "\"snapshot_last_path\":\"$WORK/snaps/custos-" || fail "status lacks the last snapshot: $st"
pass "after-key-change snapshots: after init (at first unseal) and each rotation, pruned to retain=2, shown in status"
# A rekey commit also writes one.
before=$(ls "$WORK/snaps" | tail -n1)
out=$(cli e operator rekey --init --key-shares 2 --key-threshold 2 --format json)
nonce=$(echo "$out" | json nonce)
cli e operator rekey --nonce "$nonce" "$(key e 1)" >/dev/null
cli e operator rekey --nonce "$nonce" "$(key e 2)" --format json > "$WORK/rekey"
wait_for 10 sh -c "[ \"\$(ls '$WORK/snaps' | tail -n1)\" != '$before' ]" || fail "no snapshot after rekey"
newest="$WORK/snaps/$(ls "$WORK/snaps" | tail -n1)"
[ "$(cli e operator snapshot inspect --format json "$newest" | json shares)" = 2 ] || fail "rekey snapshot not of the new key set"
json_array keys_hex < "$WORK/rekey" > "$WORK/e2.keys"
cli e operator snapshot verify "$newest" "$(sed -n 1p "$WORK/e2.keys")" "$(sed -n 2p "$WORK/e2.keys")" >/dev/null \
  || fail "the new shares do not verify the post-rekey snapshot"
pass "a rekey commit writes a snapshot of the new key set; the new shares verify it"

# Interval snapshots, and a failure shown in status.
stop_server e
sed -i "s|after_key_change = true;|after_key_change = false; interval = \"1s\";|" "$WORK/e/custos.conf"
start_server e
unseal_state_e() { cli e operator unseal "$(sed -n 1p "$WORK/e2.keys")" >/dev/null 2>&1 || true; cli e operator unseal "$(sed -n 2p "$WORK/e2.keys")" >/dev/null 2>&1 || true; }
unseal_state_e
last=$(ls "$WORK/snaps" | tail -n1)
wait_for 10 sh -c "[ \"\$(ls '$WORK/snaps' | tail -n1)\" != '$last' ]" || fail "no interval snapshot"
[ "$(count)" -le 2 ] || fail "interval snapshots not pruned: $(count)"
rm -rf "$WORK/snaps"
wait_for 10 sh -c "CUSTOS_ADDR=127.0.0.1:$PORT_e CUSTOS_CACERT='$WORK/tls/ca.crt' '$CUSTOS' status --format json | grep -q '\"snapshot_last_error\":\"cannot create'" \
  || fail "a failing scheduled snapshot is not reported in status: $(cli e status --format json)"
pass "interval snapshots written and pruned; a failure is shown in status (snapshot_last_error)"
