#!/usr/bin/env bash
# The post-authentication frame limit (issue 10, finding 17): frames above
# the pre-authentication limit (64 KiB) are accepted only while the
# connection's token is valid and may write something; a read-only token,
# or one that expired or was revoked since it was accepted on the
# connection, gets TOO_LARGE for such a frame.  Before, any token that was
# accepted once raised the limit to 4 MiB for the connection's lifetime.
# Frames are crafted by hand (protobuf) and sent over `openssl s_client`,
# so two requests share one TLS connection.
. "$(dirname "$0")/lib.sh"

start_server a
init_server a 1 1
ROOT=$TOKEN
unseal_with a 1
echo '{"rules":[{"path":"c/*","capabilities":["read","write"]}]}' | cli a policy write wr - >/dev/null
echo '{"rules":[{"path":"c/*","capabilities":["read","list"]}]}' | cli a policy write ro - >/dev/null

# varint N: protobuf varint as printf escapes.
varint() {
  local n=$1 out=""
  while [ "$n" -ge 128 ]; do out+=$(printf '\\x%02x' $(( (n & 127) | 128 ))); n=$(( n >> 7 )); done
  out+=$(printf '\\x%02x' "$n")
  printf '%s' "$out"
}
# ld TAG_ESCAPES FILE: a length-delimited field holding FILE's bytes.
ld() { printf "$1$(varint "$(stat -c %s "$2")")"; cat "$2"; }
# frame BODYFILE: the 4-byte big-endian length, then the body.
frame() {
  local n; n=$(stat -c %s "$1")
  printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)))"
  cat "$1"
}
# make_frames TOKEN PATH SIZE: $WORK/f1 (token lookup-self) and $WORK/f2
# (kv put PATH v=<SIZE bytes>), both carrying TOKEN.
make_frames() {
  local t=$1 path=$2 size=$3
  printf '%s' "$t" > "$WORK/tok"
  { printf '\x08\x01'; ld '\x12' "$WORK/tok"; printf '\xca\x02\x00'; } > "$WORK/b1"
  head -c "$size" /dev/zero | tr '\0' A > "$WORK/val"
  printf 'v' > "$WORK/key"
  printf '%s' "$path" > "$WORK/path"
  { ld '\x0a' "$WORK/key"; ld '\x12' "$WORK/val"; } > "$WORK/pair"
  { ld '\x0a' "$WORK/path"; ld '\x12' "$WORK/pair"; } > "$WORK/put"
  { printf '\x08\x02'; ld '\x12' "$WORK/tok"; ld '\xa2\x01' "$WORK/put"; } > "$WORK/b2"
  frame "$WORK/b1" > "$WORK/f1"
  frame "$WORK/b2" > "$WORK/f2"
}
# wait_until SECONDS cmd...: retries cmd until it succeeds.
wait_until() {
  local limit=$1 k; shift
  for k in $(seq 1 $(( limit * 10 ))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
# size_above FILE N: FILE holds more than N bytes.
size_above() { [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -gt "$2" ]; }
# send_two BETWEEN: on one connection, f1; once its response is in, the
# command BETWEEN (in this shell); then f2 until its response is in.  The
# server's bytes go to $WORK/resp.
send_two() {
  rm -f "$WORK/fifo" "$WORK/resp"
  mkfifo "$WORK/fifo"
  timeout 60 openssl s_client -quiet -no_ign_eof -connect "127.0.0.1:$PORT_a" \
    -CAfile "$WORK/tls/ca.crt" < "$WORK/fifo" > "$WORK/resp" 2>"$WORK/s_client.err" &
  local sp=$!
  PIDS+=("$sp")
  exec 3>"$WORK/fifo"
  cat "$WORK/f1" >&3
  wait_until 20 size_above "$WORK/resp" 0 || fail "no response to the first request"
  cp "$WORK/resp" "$WORK/resp1"
  eval "$1" >/dev/null 2>&1 || true
  local n; n=$(stat -c %s "$WORK/resp")
  cat "$WORK/f2" >&3 2>/dev/null || true
  wait_until 20 size_above "$WORK/resp" "$n" || fail "no response to the second request"
  exec 3>&-
  wait "$sp" 2>/dev/null || true
}
too_large() { grep -aq "exceeds the limit of 65536 bytes" "$WORK/resp"; }
# The first request (token lookup-self) was accepted.
first_ok() { ! grep -aqi "denied\|expired\|invalid" "$WORK/resp1"; }
stored_size() { TOKEN=$ROOT cli a kv get "$1" --field v 2>/dev/null | tr -d '\n' | wc -c; }

W=$(cli a token create --policy wr --format json | json token)
R=$(cli a token create --policy ro --format json | json token)
V=$(cli a token create --policy wr --format json | json token)
[ -n "$W" ] && [ -n "$R" ] && [ -n "$V" ] || fail "token create"

make_frames "$W" c/w 100000
send_two true
first_ok || fail "token W refused"
too_large && fail "a writing token was refused a 100 kB frame"
[ "$(stored_size c/w)" = 100000 ] || fail "the 100 kB value of a writing token was not stored"
pass "a token that may write sends a 100 kB frame after it was accepted"

make_frames "$R" c/r 100000
send_two true
too_large || fail "a read-only token raised the frame limit: $(tr -c '[:print:]' . < "$WORK/resp" | head -c 300)"
pass "a read-only token keeps the pre-authentication limit (TOO_LARGE)"

expired() { ! TOKEN=$E cli a token lookup >/dev/null 2>&1; }
E=$(cli a token create --policy wr --ttl 3s --format json | json token)
[ -n "$E" ] || fail "token create"
make_frames "$E" c/e 100000
send_two "wait_until 20 expired"
first_ok || fail "test premise: token E was refused before it expired"
expired || fail "test premise: token E did not expire"
too_large || fail "an expired token kept the larger limit: $(tr -c '[:print:]' . < "$WORK/resp" | head -c 300)"
pass "a token that expired since it was accepted loses the larger limit"

make_frames "$V" c/v 100000
send_two "TOKEN=$ROOT cli a token revoke $V"
first_ok || fail "test premise: token V was refused before the revoke"
TOKEN=$V cli a token lookup >/dev/null 2>&1 && fail "test premise: token V not revoked"
too_large || fail "a revoked token kept the larger limit: $(tr -c '[:print:]' . < "$WORK/resp" | head -c 300)"
pass "a token revoked since it was accepted loses the larger limit"

# Small requests of every token are unaffected.
[ "$(TOKEN=$R cli a kv get c/w --field v | tr -d '\n' | wc -c)" = 100000 ] || fail "read-only token cannot read"
kill -0 "$PID_a" || fail "custosd died"
pass "small requests unaffected, server alive"
