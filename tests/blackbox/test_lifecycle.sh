#!/usr/bin/env bash
# Key lifecycle through the CLI: rotate, key-status, rotate-config with
# automatic rotation, rekey with and without verification, old shares
# refused after a rekey, bad input leaves everything unchanged.
. "$(dirname "$0")/lib.sh"

start_server a 'seal = { upgrade_key_ttl = "2s"; counter_flush_interval = "1s"; };'
init_server a 5 3
unseal_with a 1 2 3
cli a kv put before/rotate v=term1 >/dev/null

# Rotate.
out=$(cli a operator rotate --format json)
[ "$(echo "$out" | json term)" = 2 ] || fail "rotate: $out"
echo "$out" | json install_time | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' || fail "install_time: $out"
cli a operator rotate >/dev/null; cli a operator rotate >/dev/null
cli a kv put after/rotate v=term4 >/dev/null
[ "$(cli a kv get before/rotate --field v)" = term1 ] || fail "term-1 data unreadable after rotations"
[ "$(cli a kv get after/rotate --field v)" = term4 ] || fail "term-4 data"
out=$(cli a operator key-status --format json)
[ "$(echo "$out" | json term)" = 4 ] || fail "key-status term: $out"
[ "$(echo "$out" | grep -o '"term":' | wc -l)" = 5 ] || fail "key-status lists 4 terms: $out"
pass "rotate x3: new writes use term 4, term-1 data readable"

# Upgrade keys exist briefly and are deleted after their TTL (2 s here).
command -v mdb_dump >/dev/null && {
  mdb_dump -s data -p "$WORK/a/data" 2>/dev/null | grep -q "core/upgrade/" || fail "no upgrade key written"
  sleep 4
  mdb_dump -s data -p "$WORK/a/data" 2>/dev/null | grep -q "core/upgrade/" && fail "expired upgrade keys not deleted"
  pass "upgrade keys written with the rotation and deleted at expiry"
}

# Counters survive a restart (persisted in batches).
for i in $(seq 1 5); do cli a kv put c/$i v=1 >/dev/null; done
enc=$(cli a operator key-status --format json | json encryptions)
[ "$enc" -ge 5 ] || fail "encryptions counter $enc"
stop_server a TERM; start_server a; unseal_with a 4 5 1
enc2=$(cli a operator key-status --format json | json encryptions)
[ "$enc2" -ge "$enc" ] || fail "counter went back from $enc to $enc2 across restart"
pass "encryption counters survive restart ($enc -> $enc2)"

# rotate-config.
out=$(cli a operator rotate-config --format json)
[ "$(echo "$out" | json enabled)" = true ] && [ "$(echo "$out" | json max_operations)" = 3865470566 ] \
  || fail "default rotate-config: $out"
expect_err "max-operations" cli a operator rotate-config --max-operations 5
expect_exit 2 cli a operator rotate-config --interval bogus
cli a operator rotate-config --max-operations 100 >/dev/null
term=$(cli a operator key-status --format json | json term)
for i in $(seq 1 25); do cli a kv put auto/$i a=1 b=2 >/dev/null; done
# 25 puts = 25 encryptions; push past 100 with a few more rounds.
for r in 1 2 3; do for i in $(seq 1 30); do cli a kv put auto/$i a=$r >/dev/null; done; done
sleep 2.5
term2=$(cli a operator key-status --format json | json term)
[ "$term2" -gt "$term" ] || fail "no automatic rotation after >100 encryptions (term $term -> $term2)"
grep -q "automatic rotation" "$WORK/a.log" || fail "no log line for automatic rotation"
cli a operator rotate-config --disable --interval 24h --max-operations 3865470566 >/dev/null
out=$(cli a operator rotate-config --format json)
[ "$(echo "$out" | json enabled)" = false ] && [ "$(echo "$out" | json interval_seconds)" = 86400 ] \
  || fail "rotate-config set: $out"
pass "automatic rotation by operation count; config round trip"

# Rekey without verification: 5/3 -> 3/2.
out=$(cli a operator rekey --init --key-shares 3 --key-threshold 2 --format json)
nonce=$(echo "$out" | json nonce); [ -n "$nonce" ] || fail "rekey init: $out"
expect_err "in progress" cli a operator rekey --init
expect_err "nonce" cli a operator rekey --nonce wrong-nonce "$(key a 1)"
expect_err "not part of the current key set" cli a operator rekey --nonce "$nonce" "$(key a 1 | sed 's/^../ff/')"
cli a operator rekey --nonce "$nonce" "$(key a 1)" >/dev/null
expect_err "already submitted" cli a operator rekey --nonce "$nonce" "$(key a 1)"
[ "$(cli a operator rekey --status --format json | json progress)" = 1 ] || fail "rekey progress"
cli a operator rekey --nonce "$nonce" "$(key a 2)" >/dev/null
cli a operator rekey --nonce "$nonce" "$(key a 4)" --format json > "$WORK/rekey1"
[ "$(json complete < "$WORK/rekey1")" = true ] || fail "rekey not complete: $(cat "$WORK/rekey1")"
cp "$WORK/a.keys" "$WORK/old.keys"
json_array keys_hex < "$WORK/rekey1" > "$WORK/a.keys"
[ "$(wc -l < "$WORK/a.keys")" = 3 ] || fail "rekey returned $(wc -l < "$WORK/a.keys") keys"
cli a operator seal >/dev/null
expect_err "not part of the current key set" cli a operator unseal "$(sed -n 1p "$WORK/old.keys")"
unseal_with a 3 1
[ "$(cli a kv get before/rotate --field v)" = term1 ] || fail "data after rekey"
pass "rekey 5/3 -> 3/2: old shares refused at submission, new shares unseal"

# Rekey with verification: until verified, the old (current) shares stay valid.
out=$(cli a operator rekey --init --key-shares 2 --key-threshold 2 --verify --format json)
nonce=$(echo "$out" | json nonce)
cli a operator rekey --nonce "$nonce" "$(key a 2)" >/dev/null
cli a operator rekey --nonce "$nonce" "$(key a 3)" --format json > "$WORK/rekey2"
[ "$(json verification_required < "$WORK/rekey2")" = true ] || fail "verification not required: $(cat "$WORK/rekey2")"
vnonce=$(json verification_nonce < "$WORK/rekey2")
json_array keys_hex < "$WORK/rekey2" > "$WORK/new.keys"
# Restart before verification: the current shares still unseal, the new ones do not.
stop_server a TERM; start_server a
expect_err "not part of the current key set" cli a operator unseal "$(sed -n 1p "$WORK/new.keys")"
unseal_with a 1 2
out=$(cli a operator rekey --init --key-shares 2 --key-threshold 2 --verify --format json)
nonce=$(echo "$out" | json nonce)
cli a operator rekey --nonce "$nonce" "$(key a 2)" >/dev/null
cli a operator rekey --nonce "$nonce" "$(key a 3)" --format json > "$WORK/rekey2"
vnonce=$(json verification_nonce < "$WORK/rekey2")
json_array keys_hex < "$WORK/rekey2" > "$WORK/new.keys"
expect_err "nonce" cli a operator rekey --verify --nonce "$nonce" "$(sed -n 1p "$WORK/new.keys")"
expect_err "not part of" cli a operator rekey --verify --nonce "$vnonce" "$(key a 1)"
cli a operator rekey --verify --nonce "$vnonce" "$(sed -n 1p "$WORK/new.keys")" >/dev/null
cli a operator rekey --verify --nonce "$vnonce" "$(sed -n 2p "$WORK/new.keys")" --format json > "$WORK/ver"
[ "$(json complete < "$WORK/ver")" = true ] || fail "verification not complete: $(cat "$WORK/ver")"
cp "$WORK/new.keys" "$WORK/a.keys"
cli a operator seal >/dev/null
expect_err "not part of the current key set" cli a operator unseal "$(sed -n 1p "$WORK/old.keys")"
unseal_with a 2 1
pass "rekey with verification: takes effect only after the new shares come back"

# Cancel, and errors with nothing changed.
out=$(cli a operator rekey --init --format json); nonce=$(echo "$out" | json nonce)
cli a operator rekey --cancel >/dev/null
[ "$(cli a operator rekey --status --format json | json started)" = false ] || fail "cancel"
expect_err "no rekey" cli a operator rekey --nonce "$nonce" "$(key a 1)"
expect_err "no rekey" cli a operator rekey --cancel
expect_exit 2 cli a operator rekey --init --key-shares 3 --key-threshold 5
cli a operator seal >/dev/null
expect_err "sealed" cli a operator rotate
unseal_with a 1 2
[ "$(cli a kv get after/rotate --field v)" = term4 ] || fail "data after error cases"
pass "cancel, wrong nonce, bad params, rotate while sealed: clear errors, nothing changed"
