#!/usr/bin/env bash
# The wire's string and size rules, through hand-built frames and the CLI:
# strings with an embedded NUL or invalid UTF-8 are refused at decode time
# (nothing is truncated and stored), the one path limit (508 bytes) holds at
# every layer and before authorization, a secret has at most 1024 fields,
# the audit log keeps every field of a large put, and two key changes
# pipelined on one connection take effect in order.
. "$(dirname "$0")/lib.sh"

command -v openssl >/dev/null || fail "openssl missing"
command -v xxd >/dev/null || fail "xxd missing"
# A short idle timeout ends each raw connection once its answers are out.
LISTENER_EXTRA='idle_timeout = "1s";' start_server a "audit = { file = \"$WORK/audit.log\"; };"
init_server a 1 1
cli a operator unseal "$(key a 1)" >/dev/null

BAD_REQUEST=1 EMPTY=12 ROTATE=15

# put_hex PATH_HEX FIELD_KEY_HEX VALUE_TEXT: a kv_put frame body.
put_body() {
  raw_request 1 20 "$(pb_bytes 1 "$1")$(pb_bytes 2 "$(pb_bytes 1 "$2")$(pb_str 2 "$3")")"
}
expect_refused() { # WHAT RESPONSE-LINE [MESSAGE-SUBSTRING]
  case "$2" in
    "id=0 code=$BAD_REQUEST "*) ;;
    *) fail "$1: expected id=0 BAD_REQUEST, got: ${2:-nothing}" ;;
  esac
  [ -z "${3:-}" ] || echo "$2" | grep -qi -- "$3" || fail "$1: expected '$3' in: $2"
}

# ---- strings with an embedded NUL
cli a kv put nul/a v=original >/dev/null
out=$(raw_send a "$(raw_frame "$(put_body "$(pb_hex nul/a)00$(pb_hex b)" "$(pb_hex v)" evil)")")
expect_refused "NUL in a path" "$out" "NUL"
[ "$(cli a kv get nul/a --field v)" = original ] || fail "a put to nul/a<NUL>b overwrote nul/a"
out=$(raw_send a "$(raw_frame "$(put_body "$(pb_hex nul/f)" "$(pb_hex k)00$(pb_hex hidden)" x)")")
expect_refused "NUL in a field name" "$out" "NUL"
expect_err "no secret at nul/f" cli a kv get nul/f
pass "NUL in a path or field name: refused, nothing overwritten"

doc='{"rules":[{"path":"a/*","capabilities":["read"]}]}'
out=$(raw_send a "$(raw_frame "$(raw_request 1 44 "$(pb_str 1 nuldoc)$(pb_bytes 2 "$(pb_hex "$doc")00$(pb_hex junk)")")")")
expect_refused "NUL in a policy document" "$out" "NUL"
expect_err "no policy named nuldoc" cli a policy read nuldoc
out=$(raw_send a "$(raw_frame "$(raw_request 1 44 "$(pb_bytes 1 "$(pb_hex nulname)00$(pb_hex x)")$(pb_str 2 "$doc")")")")
expect_refused "NUL in a policy name" "$out" "NUL"
expect_err "no policy named nulname" cli a policy read nulname
out=$(raw_send a "$(raw_frame "$(raw_request 1 40 "$(pb_bytes 1 "$(pb_hex default)00$(pb_hex x)")")")")
expect_refused "NUL in a repeated string (token policies)" "$out" "NUL"
pass "NUL in a policy document, a policy name, a token's policy list: refused"

# ---- invalid UTF-8 in a string
out=$(raw_send a "$(raw_frame "$(put_body "$(pb_hex utf8/a)" "$(pb_hex k)ff" x)")")
expect_refused "invalid UTF-8 in a field name" "$out" "UTF-8"
expect_err "no secret at utf8/a" cli a kv get utf8/a
out=$(raw_send a "$(raw_frame "$(put_body "$(pb_hex utf8/b)" "$(pb_hex k)c0af" x)")")
expect_refused "overlong UTF-8" "$out" "UTF-8"
# Valid multi-byte UTF-8 in a field name is fine.
out=$(raw_send a "$(raw_frame "$(put_body "$(pb_hex utf8/c)" "$(pb_hex k)c3a9" x)")")
case "$out" in "id=1 code=0 result=$EMPTY "*) ;; *) fail "valid UTF-8 field name refused: $out" ;; esac
pass "invalid UTF-8 refused, valid UTF-8 accepted"

# ---- which refusals get id = 0 and a close (docs/protocol.md), which an id
out=$(raw_send a "00000000")
expect_refused "zero-length frame" "$out" "no operation"
out=$(raw_send a "$(raw_frame "$(pb_uint 1 7)$(pb_bytes 99 "")")")
expect_refused "unknown op field" "$out" "no operation"
# A refusal after decoding carries the id, and the connection stays open:
# the status request behind it is answered too.
out=$(raw_send a "$(raw_frame "$(raw_request 7 21 "$(pb_str 1 a//b)")")" \
                 "$(raw_frame "$(raw_request 8 10 "")")")
echo "$out" | grep -q "^id=7 code=$BAD_REQUEST .*empty segment" || fail "bad path: $out"
echo "$out" | grep -q "^id=8 code=0 result=10 " || fail "connection closed after a bad path: $out"
pass "zero-length frame, unknown op: id 0 and close; a bad path: its id, connection kept"

# ---- a NUL hidden in a JSON member name of a policy document
printf '{"rules\\u0000x":[{"path":"a/*","capabilities":["read"]}]}' > "$WORK/nulkey.json"
expect_err "is not allowed" cli a policy write nulkey "$WORK/nulkey.json"
printf '{"rules":[{"path\\u0000x":"b/*","path":"a/*","capabilities":["read"]}]}' > "$WORK/nulkey2.json"
expect_err "is not allowed" cli a policy write nulkey2 "$WORK/nulkey2.json"
expect_err "no policy named nulkey" cli a policy read nulkey
pass "JSON member names with \\u0000 refused"

# ---- one path limit: 508 bytes (kv/ + 508 = 511, LMDB's largest key)
p508=p/$(printf '%0506d' 0)
p509=${p508}1
cli a kv put "$p508" v=edge >/dev/null || fail "a 508-byte path was refused"
[ "$(cli a kv get "$p508" --field v)" = edge ] || fail "508-byte path did not round-trip"
cli a kv list "$p508" >/dev/null || fail "list of a 508-byte prefix"
cli a kv list p --format json | grep -q "\"$(printf '%0506d' 0)\"" || fail "the 508-byte secret is not listed"
for verb in "put $p509 v=x" "get $p509" "delete $p509" "list $p509"; do
  expect_err "longer than 508 bytes" cli a kv $verb
done
cli a kv delete "$p508" >/dev/null || fail "delete of a 508-byte path"
# Checked before authorization: the same answer without a token.
TOKEN="" expect_err "longer than 508 bytes" cli a kv get "$p509"
TOKEN="" expect_err "permission denied" cli a kv get "$p508"
pass "paths: 508 bytes stored, read, listed, deleted; 509 refused by every verb, before authorization"

n128=$(printf 'n%0127d' 0)
cli a policy write "$n128" "$WORK/nulkey.json" 2>/dev/null && fail "bad doc accepted"
printf '%s' "$doc" > "$WORK/ok.json"
cli a policy write "$n128" "$WORK/ok.json" >/dev/null || fail "a 128-byte policy name was refused"
cli a policy read "$n128" >/dev/null || fail "read of a 128-byte policy name"
expect_err "1..128" cli a policy write "${n128}x" "$WORK/ok.json"
TOKEN="" expect_err "1..128" cli a policy read "${n128}x"
pass "policy names: 128 bytes accepted, 129 refused before authorization"

# ---- at most 1024 fields per secret, duplicates refused
# fields_hex N: N KvPair fields f1..fN, value "v" (every length < 128).
fields_hex() {
  seq 1 "$1" | sed 's/./3&/g' | awk '{ k = "66" $0; kl = length(k) / 2;
    pair = sprintf("0a%02x%s120176", kl, k); printf "12%02x%s", length(pair) / 2, pair }'
}
big_put() { raw_request 1 20 "$(pb_str 1 "$1")$(fields_hex "$2")"; }
out=$(raw_send a "$(raw_frame "$(big_put many/over 1025)")")
case "$out" in *"code=$BAD_REQUEST "*"at most 1024 fields"*) ;; *) fail "1025 fields: $out" ;; esac
expect_err "no secret at many/over" cli a kv get many/over
out=$(raw_send a "$(raw_frame "$(big_put many/cap 1024)")")
case "$out" in "id=1 code=0 result=$EMPTY "*) ;; *) fail "1024 fields refused: $out" ;; esac
[ "$(cli a kv get many/cap --field f1024)" = v ] || fail "field 1024 not stored"
# Duplicates (the CLI refuses them itself, so raw): the last of 1024 repeats the first.
out=$(raw_send a "$(raw_frame "$(raw_request 1 20 "$(pb_str 1 many/dup)$(fields_hex 1023)$(fields_hex 1)")")")
case "$out" in *"code=$BAD_REQUEST "*"field f1 is given twice"*) ;; *) fail "duplicate field: $out" ;; esac
expect_err "no secret at many/dup" cli a kv get many/dup
pass "1025 fields refused, 1024 accepted, duplicates refused"

# ---- the audit log keeps every field of a large put (and get)
args=(); for i in $(seq 1 70); do args+=("f$i=value-$i"); done
cli a kv put audit/wide "${args[@]}" >/dev/null
cli a kv get audit/wide >/dev/null
h=$(cli a audit hash value-70)
grep '"type":"request".*"operation":"kv-put"' "$WORK/audit.log" | grep -q "\"field\":\"f70\",\"value\":\"$h\"" \
  || fail "field 70 of a put is not in the audit log"
grep '"type":"response".*"operation":"kv-get"' "$WORK/audit.log" | grep -q "\"field\":\"f70\",\"value\":\"$h\"" \
  || fail "field 70 of a get is not in the audit log"
pass "audit: field 70 of a 70-field put and get is on record"

# ---- two key changes pipelined on one connection: requests of a connection
# take effect in order (docs/protocol.md), so the second waits for the first
# to be committed and both succeed (it used to get RETRY).  RETRY itself is
# covered by test_cluster_retry.sh.
out=$(raw_send a "$(raw_frame "$(raw_request 1 30 "")")" "$(raw_frame "$(raw_request 2 30 "")")")
echo "$out" | grep -q "^id=1 code=0 result=$ROTATE " || fail "first rotate: $out"
echo "$out" | grep -q "^id=2 code=0 result=$ROTATE " || fail "second rotate did not wait for the first: $out"
pass "two pipelined key changes on one connection both succeed, in order"

kill -0 "$PID_a" || fail "server died"
