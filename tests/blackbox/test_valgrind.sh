#!/usr/bin/env bash
# custosd under valgrind memcheck through a ceremony, KV traffic, a rotation,
# a rekey, hostile frames and a clean shutdown: no invalid reads or writes,
# no uninitialised jumps, no definite leaks.  Skipped in sanitizer builds
# (ASan and valgrind do not mix) and when valgrind is missing.
. "$(dirname "$0")/lib.sh"

if [ "${CUSTOS_SANITIZE:-0}" = 1 ] || ! command -v valgrind >/dev/null; then
  echo "skipped (sanitizer build or no valgrind)"; exit 77
fi
REAL_CUSTOSD=$CUSTOSD
cat > "$WORK/custosd-vg" <<VG
#!/bin/sh
exec valgrind --quiet --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite --track-origins=yes --log-file="$WORK/valgrind.%p.log" "$REAL_CUSTOSD" "\$@"
VG
chmod +x "$WORK/custosd-vg"
CUSTOSD="$WORK/custosd-vg"

start_server a
init_server a 3 2
expect_err "not part of" cli a operator unseal 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00
unseal_with a 1 2
for i in $(seq 1 5); do cli a kv put "vg/k$i" v="$i" >/dev/null; done
[ "$(cli a kv get vg/k3 --field v)" = 3 ] || fail "kv under valgrind"
cli a kv list vg >/dev/null
cli a operator rotate >/dev/null
out=$(cli a operator rekey --init --key-shares 2 --key-threshold 2 --format json)
nonce=$(echo "$out" | json nonce)
cli a operator rekey --nonce "$nonce" "$(key a 1)" >/dev/null
cli a operator rekey --nonce "$nonce" "$(key a 2)" >/dev/null
{ printf '\x00\x10\x00\x01'; sleep 0.5; } | timeout 10 openssl s_client -connect "127.0.0.1:$PORT_a" \
  -CAfile "$WORK/tls/ca.crt" -quiet >/dev/null 2>&1 || true
{ printf '\x00\x00\x00\x04\xff\xff\xff\xff'; sleep 0.5; } | timeout 10 openssl s_client -connect "127.0.0.1:$PORT_a" \
  -CAfile "$WORK/tls/ca.crt" -quiet >/dev/null 2>&1 || true
cli a status >/dev/null || fail "server not serving under valgrind"
kill -TERM "$PID_a"
set +e; wait "$PID_a"; rc=$?; set -e
cat "$WORK"/valgrind.*.log >&2 2>/dev/null || true
[ "$rc" = 0 ] || fail "custosd under valgrind exited $rc (99 = memcheck errors)"
pass "valgrind memcheck: no errors, no definite leaks"
