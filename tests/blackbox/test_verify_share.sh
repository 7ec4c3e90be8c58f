#!/usr/bin/env bash
# operator verify-share: a holder checks a share without a token and without
# a ceremony.  Good share (argument, stdin, age file with --identity), bad
# share (tampered, all NUL), a share of another installation, a share of
# the wrong length; sealed and unsealed; no progress added to the unseal
# ceremony; after a rekey the old shares are refused and the new ones
# accepted; audited with the share HMACed; rate-limited per client address
# (LIMIT, its own message), logged with the address.
. "$(dirname "$0")/lib.sh"

# Until the CLI's command table lands (CLI_LANDED) this CLI may not have the
# command wired yet: say so loudly and skip rather than fail.
gate=$(CUSTOS_ADDR=127.0.0.1:1 "$CUSTOS" operator verify-share --status 2>&1 || true)
if echo "$gate" | grep -q "unknown subcommand"; then
  echo "SKIPPED: this custos CLI has no operator verify-share yet" >&2; exit 77
fi

command -v xxd >/dev/null || { echo "skip: xxd missing"; exit 77; }

AUDIT="audit = { file = \"$WORK/audit.log\"; };"
start_server a "seal = { verify_share_per_minute = 1000; };" "$AUDIT"
start_server b
init_server b 3 2
init_server a 5 3
ROOT=$TOKEN

cli a operator verify-share "$(key a 1)" > "$WORK/vs.out" || fail "good share refused: $(cat "$WORK/vs.out")"
grep -q "part of the current key set" "$WORK/vs.out" || fail "good share: $(cat "$WORK/vs.out")"
[ "$(cli a operator verify-share --format json "$(key a 2)" | json valid)" = true ] || fail "json valid"
# Every share of the set, from stdin too.
for i in 3 4 5; do key a "$i" | cli a operator verify-share >/dev/null || fail "share $i (stdin) refused"; done
st=$(cli a status --format json || true)
[ "$(echo "$st" | json sealed)" = true ] && [ "$(echo "$st" | json progress)" = 0 ] \
  || fail "verify-share changed the seal state: $st"
pass "sealed: every share verifies (argument, stdin), no unseal progress added"

cli a operator unseal "$(key a 1)" >/dev/null || true
N=$(cli a status --format json | json nonce || true)
cli a operator verify-share "$(key a 2)" >/dev/null || fail "verify during an unseal"
st=$(cli a status --format json || true)
[ "$(echo "$st" | json progress)" = 1 ] && [ "$(echo "$st" | json nonce)" = "$N" ] \
  || fail "verify-share touched the unseal ceremony: $st"
pass "during an unseal ceremony: progress and nonce untouched"

# Foreign, tampered, NUL, wrong length.
expect_err "NOT part of the current key set" cli a operator verify-share "$(key b 1)"
[ "$(cli a operator verify-share --format json "$(key b 1)" || true)" = '{"valid":false}' ] \
  || fail "json for a foreign share"
k=$(key a 3); t=$(printf '%s' "$k" | cut -c1-10)$( [ "$(printf '%s' "$k" | cut -c11)" = 0 ] && echo 1 || echo 0)$(printf '%s' "$k" | cut -c12-)
expect_err "NOT part" cli a operator verify-share "$t"
expect_err "NOT part" cli a operator verify-share "$(printf '00%.0s' $(seq 1 33))"
expect_err "must be 33 bytes, got 32" cli a operator verify-share "$(key a 3 | cut -c1-64)"
expect_err "must be 33 bytes, got 34" cli a operator verify-share "$(key a 3)00"
[ "$(cli a status --format json | json progress)" = 1 ] || fail "refused checks touched progress"
pass "another installation's share, a tampered one, all-NUL, wrong length: refused, nothing changed"

# An age file and an identity, as `operator unseal --identity` takes.
if command -v age >/dev/null && command -v age-keygen >/dev/null; then
  age-keygen -o "$WORK/h.txt" 2>/dev/null
  key a 4 | age -a -r "$(age-keygen -y "$WORK/h.txt")" > "$WORK/share4.age"
  cli a operator verify-share --identity "$WORK/h.txt" "$WORK/share4.age" >/dev/null \
    || fail "age file refused"
  age-keygen -o "$WORK/other.txt" 2>/dev/null
  expect_err "no age identity matches" cli a operator verify-share --identity "$WORK/other.txt" "$WORK/share4.age"
  pass "an age-encrypted share with --identity verifies; a wrong identity is refused locally"
fi

# Unsealed works too; after a rekey only the new shares belong.
unseal_with a 2 3
TOKEN=$ROOT
cli a operator verify-share "$(key a 5)" >/dev/null || fail "verify while unsealed"
R=$(cli a operator rekey --init --key-shares 3 --key-threshold 2 --format json | json nonce)
for i in 1 2; do cli a operator rekey --nonce "$R" "$(key a $i)" --format json > "$WORK/rekey.out" || true; done
cli a operator rekey --nonce "$R" "$(key a 3)" --format json > "$WORK/rekey.out" || fail "rekey"
json_array keys_hex < "$WORK/rekey.out" > "$WORK/new.keys"
[ "$(wc -l < "$WORK/new.keys")" = 3 ] || fail "rekey gave no new keys: $(cat "$WORK/rekey.out")"
TOKEN= expect_err "NOT part" cli a operator verify-share "$(key a 1)"
for i in 1 2 3; do TOKEN= cli a operator verify-share "$(sed -n "${i}p" "$WORK/new.keys")" >/dev/null || fail "new share $i"; done
pass "unsealed; after a rekey the old shares are refused and every new one verifies"

# Audited, the share HMACed (never in the clear); an unsealed node logs a
# keyed hash an auditor can match.
grep -q '"operation":"verify-share"' "$WORK/audit.log" || fail "verify-share not audited"
if grep -q "$(key a 5)" "$WORK/audit.log"; then fail "a share is in the audit log in the clear"; fi
h=$(key a 5 | xxd -r -p | TOKEN=$ROOT cli a audit hash -)
grep -q "\"operation\":\"verify-share\".*\"field\":\"unseal_key\",\"value\":\"$h\"" "$WORK/audit.log" \
  || fail "the verify-share record does not carry the share's HMAC ($h)"
grep -q "verify-share from 127.0.0.1:[0-9]*: the share is NOT part" "$WORK/a.log" || fail "refusal not logged with the address"
pass "audited: the share HMACed, never in the clear; the log names the client address"

# Rate limit: 3 a minute per address on server c (one token per 20 s, so
# a slow machine cannot refill it between calls); the 4th call is refused
# with its own error and wire class LIMIT (11), and logged.
LISTENER_EXTRA='idle_timeout = "1s";' start_server c "seal = { verify_share_per_minute = 3; };"
init_server c 3 2
for i in 1 2 3; do cli c operator verify-share "$(key c $i)" >/dev/null || fail "call $i refused"; done
expect_err "rate limit reached for 127.0.0.1: 3 per minute; retry in [0-9]* s" \
  cli c operator verify-share "$(key c 1)"
grep -q "verify-share from 127.0.0.1:[0-9]* refused: rate limit" "$WORK/c.log" || fail "rate limit not logged"
if command -v openssl >/dev/null; then
  out=$(TOKEN= raw_send c "$(raw_frame "$(TOKEN= raw_request 7 140 "$(pb_bytes 1 "$(key c 2)")")")" || true)
  echo "$out" | grep -q "id=7 code=11 .*rate limit reached" || fail "raw: $out"
fi
# Other operations of the same client are not limited; another server
# (another limiter) answers.
[ "$(cli c status --format json | json initialized)" = true ] || fail "status after the rate limit"
cli a operator verify-share "$(sed -n 1p "$WORK/new.keys")" >/dev/null || fail "server a"
pass "rate limit: refused with its own message and wire class LIMIT, logged; other requests unaffected"
