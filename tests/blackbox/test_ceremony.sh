#!/usr/bin/env bash
# The unseal ceremony end to end: init 5/3, unseal with 3 of 5 in several
# orders, progress and reset, wrong and foreign shares, restart -> sealed ->
# unseal -> data intact.
. "$(dirname "$0")/lib.sh"

start_server a
out=$(cli a status --format json || true)
[ "$(echo "$out" | json initialized)" = false ] || fail "fresh server claims to be initialized: $out"
expect_exit 2 cli a status
# Before init: unseal and KV are refused with "not initialized".
expect_err "not initialized" cli a operator unseal 00
init_server a 5 3
expect_err "already initialized" cli a operator init
expect_exit 2 cli a status
out=$(cli a status --format json || true)
[ "$(echo "$out" | json t)" = 3 ] && [ "$(echo "$out" | json n)" = 5 ] || fail "bad t/n: $out"
pass "init 5/3"

# Several orders of 3 of 5, sealing in between.
for order in "1 2 3" "5 3 1" "2 4 5" "4 1 3"; do
  set -- $order
  out=$(cli a operator unseal "$(key a "$1")" --format json || true)
  [ "$(echo "$out" | json progress)" = 1 ] || fail "progress after one share: $out"
  nonce=$(echo "$out" | json nonce); [ -n "$nonce" ] || fail "no nonce: $out"
  out=$(cli a operator unseal "$(key a "$2")" --format json || true)
  [ "$(echo "$out" | json progress)" = 2 ] || fail "progress after two shares: $out"
  [ "$(echo "$out" | json nonce)" = "$nonce" ] || fail "nonce changed within an attempt"
  cli a operator unseal "$(key a "$3")" --format json > "$WORK/out" || fail "third share did not unseal ($order)"
  [ "$(json sealed < "$WORK/out")" = false ] || fail "still sealed after $order"
  cli a operator seal >/dev/null || fail "seal failed"
  expect_exit 2 cli a status
done
pass "unseal with 3 of 5 in several orders"

# A base64 share works too, and a share read from stdin.
b64=$(json_array unseal_keys_b64 < "$WORK/a.init" | sed -n 4p)
cli a operator unseal "$b64" >/dev/null || true
echo "$(key a 2)" | cli a operator unseal >/dev/null || true
out=$(cli a status --format json || true)
[ "$(echo "$out" | json progress)" = 2 ] || fail "b64 + stdin shares not counted: $out"
# A repeated share is ignored.
cli a operator unseal "$(key a 2)" >/dev/null || true
[ "$(cli a status --format json | json progress)" = 2 ] || fail "repeated share counted"
# Reset.
cli a operator unseal --reset >/dev/null || true
[ "$(cli a status --format json | json progress)" = 0 ] || fail "reset did not clear progress"
pass "base64, stdin, repeated share ignored, reset"

# Wrong shares: tampered, garbage, wrong length; refused at once, progress kept.
cli a operator unseal "$(key a 1)" >/dev/null || true
k=$(key a 3); tampered="${k:0:10}$( [ "${k:10:1}" = 0 ] && echo 1 || echo 0)${k:11}"
expect_err "not part of the current key set" cli a operator unseal "$tampered"
expect_err "" cli a operator unseal "not-a-key!!"
expect_err "must be 33 bytes" cli a operator unseal "00112233"
[ "$(cli a status --format json | json progress)" = 1 ] || fail "a refused share changed progress"
pass "tampered, garbage and short shares refused at submission"

# Shares of another installation are refused.
start_server b
TOKEN_A=$TOKEN
init_server b 3 2
TOKEN=$TOKEN_A
expect_err "not part of the current key set" cli a operator unseal "$(key b 1)"
expect_err "not part of the current key set" cli a operator unseal "$(key b 2)"
cli a operator unseal --reset >/dev/null || true
pass "foreign shares refused"

# Data survives a restart; the node comes back sealed.
unseal_with a 1 2 3
cli a kv put app/db user=admin password=hunter2 >/dev/null || fail "kv put"
stop_server a TERM
grep -q "shutting down" "$WORK/a.log" || fail "no shutdown log line"
start_server a
expect_exit 2 cli a status
expect_err "sealed" cli a kv get app/db
unseal_with a 5 4 2
[ "$(cli a kv get app/db --field password)" = hunter2 ] || fail "data lost across restart"
pass "restart: sealed, unseal, data intact"

# Same after kill -9.
cli a kv put app/after-kill v=1 >/dev/null
stop_server a KILL
start_server a
unseal_with a 1 3 5
[ "$(cli a kv get app/after-kill --field v)" = 1 ] || fail "acknowledged write lost after kill -9"
pass "kill -9: acknowledged write kept"

# No secret in the log.
for s in hunter2 "$TOKEN" $(cat "$WORK/a.keys"); do
  grep -qF -- "$s" "$WORK/a.log" && fail "a secret appears in the log"
done
pass "no secret in the server log"
